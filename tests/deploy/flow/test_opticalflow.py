"""Optical flow from frames (OpenCV DIS / Farnebäck) and whole videos to .flo files.

Frames here are made from an analytic texture (a sum of sinusoids) evaluated at shifted
coordinates, so a translation is exact to sub-pixel precision and the true flow is known.
The full synthetic-video check (rendered shapes, MP4 compression) is in
tests/synth/test_video.py; this file stays torch-free like the deploy package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stseg_deploy.errors import StsegInputError
from stseg_deploy.flow.opticalflow import (
    FlowEstimator,
    check_opencv,
    compute_flow,
    flow_from_video,
    iter_flows,
    opencv_distributions,
)
from stseg_deploy.io.flowio import read_flow
from stseg_deploy.io.videoio import FrameSource, VideoWriter

SIZE = (96, 160)
# Margin left out of error measures: near the border part of the next frame is new content.
BORDER = 8


def _texture(x: np.ndarray, y: np.ndarray, seed: int = 0) -> np.ndarray:
    """Smooth multi-scale RGB texture at real-valued pixel coordinates: (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    grey = np.full(x.shape, 128.0)
    for _ in range(16):
        angle, phase = rng.uniform(0, 2 * np.pi, 2)
        freq = 2 * np.pi / np.exp(rng.uniform(np.log(6), np.log(40)))
        grey += 22 * np.sin(freq * (x * np.cos(angle) + y * np.sin(angle)) + phase)
    rgb = np.stack([grey, 0.8 * grey + 20, 0.6 * grey + 40], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _shifted(t: float, velocity: tuple[float, float], size: tuple[int, int] = SIZE, seed: int = 0) -> np.ndarray:
    """Frame t of a texture moving at velocity (u, v) px/frame."""
    y, x = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float64)
    return _texture(x - velocity[0] * t, y - velocity[1] * t, seed)


def _interior_epe(flow: np.ndarray, truth: tuple[float, float]) -> float:
    err = np.hypot(flow[0] - truth[0], flow[1] - truth[1])
    return float(err[BORDER:-BORDER, BORDER:-BORDER].mean())


@pytest.mark.parametrize("method", ["deepflow", "dis", "dis-fine", "farneback", "deepflow-dis"])
def test_global_translation(method: str) -> None:
    velocity = (2.5, -1.5)
    flow = compute_flow(_shifted(0, velocity), _shifted(1, velocity), method=method)
    assert flow.shape == (2, *SIZE) and flow.dtype == np.float32
    # Measured: DeepFlow 0.006 px, DIS 0.04 px, dis-fine 0.008 px, Farneback 0.02 px mean endpoint error; 0.15 px leaves room for
    # other OpenCV builds while still failing on any sign, axis or scale mistake (>= 1 px).
    assert _interior_epe(flow, velocity) < 0.15


def test_two_motions_object_and_background() -> None:
    """A square with its own texture moves by (-3, 2) over a background panning by (1.5, 0.5)."""
    background, obj = (1.5, 0.5), (-3.0, 2.0)
    y, x = np.mgrid[0 : SIZE[0], 0 : SIZE[1]].astype(np.float64)
    frames, masks = [], []
    for t in (0, 1):
        frame = _shifted(t, background)
        left, top = 60 + obj[0] * t, 30 + obj[1] * t
        inside = (x >= left) & (x < left + 36) & (y >= top) & (y < top + 36)
        frame[inside] = _texture(x - left, y - top, seed=1)[inside]
        frames.append(frame)
        masks.append(inside)
    estimator = FlowEstimator("dis")
    flow = estimator(frames[0], frames[1])
    inner = np.zeros(SIZE, dtype=bool)
    inner[30 + 6 : 30 + 30, 60 + 6 : 60 + 30] = True  # the square at t=0, 6 px in from its edges
    outer = np.ones(SIZE, dtype=bool)
    outer[30 - 10 : 30 + 48, 60 - 12 : 60 + 46] = False  # away from the square at t=0 and t=1
    outer[:BORDER] = outer[-BORDER:] = outer[:, :BORDER] = outer[:, -BORDER:] = False
    epe_in = np.hypot(flow[0] - obj[0], flow[1] - obj[1])[inner].mean()
    epe_out = np.hypot(flow[0] - background[0], flow[1] - background[1])[outer].mean()
    # Measured 0.15 px inside, 0.09 px outside (OpenCV 5.0); the motions are 4.9 px apart, so
    # these bounds (about 3x) still prove each region follows its own motion.
    assert epe_in < 0.5 and epe_out < 0.25


def test_dis_fine_matches_patches_at_full_resolution() -> None:
    """dis-fine is DIS medium searched one pyramid level further down, so it is a different,
    finer solver (not an alias): on a sub-pixel translation it is several times closer."""
    velocity = (2.5, -1.5)
    frames = (_shifted(0, velocity), _shifted(1, velocity))
    fine = FlowEstimator("dis-fine")
    assert fine.options == {"preset": "medium", "finest_scale": 0}
    # Measured 0.008 px (dis-fine) against 0.044 px (dis).
    assert _interior_epe(fine(*frames), velocity) * 3 < _interior_epe(compute_flow(*frames, method="dis"), velocity)


def test_deepflow_dis_is_the_mean_of_its_two_engines() -> None:
    """Between the same frames, deepflow-dis is exactly the mean of deepflow and dis-fine."""
    background, obj = (1.5, 0.5), (-3.0, 2.0)
    y, x = np.mgrid[0 : SIZE[0], 0 : SIZE[1]].astype(np.float64)
    frames = []
    for t in (0, 1):
        frame = _shifted(t, background)
        inside = (x >= 60 + obj[0] * t) & (x < 96 + obj[0] * t) & (y >= 30 + obj[1] * t) & (y < 66 + obj[1] * t)
        frame[inside] = _texture(x - 60 - obj[0] * t, y - 30 - obj[1] * t, seed=1)[inside]
        frames.append(frame)
    both = FlowEstimator("deepflow-dis", size=(48, 80))
    assert both.options == {"dis_preset": "medium", "dis_finest_scale": 0}
    deep = compute_flow(*frames, method="deepflow", size=(48, 80))
    dis = compute_flow(*frames, method="dis-fine", size=(48, 80))
    assert not np.allclose(deep, dis, atol=0.05)  # the two engines differ here, so the mean is not either
    np.testing.assert_allclose(both(*frames), 0.5 * (deep + dis), rtol=0, atol=1e-5)
    with pytest.raises(ValueError, match="deepflow-dis takes none"):
        FlowEstimator("deepflow-dis", preset="fast")


def test_opencv_check_names_the_wheels_and_the_fix() -> None:
    # This environment itself must hold exactly one OpenCV wheel, the contrib one.
    assert opencv_distributions() == ["opencv-contrib-python-headless"]
    check_opencv()
    with pytest.raises(StsegInputError, match=r"several OpenCV wheels are installed \(opencv-python-headless, opencv-contrib-python-headless\).*pip uninstall -y"):
        check_opencv(["opencv-python-headless", "opencv-contrib-python-headless"], has_contrib=True)
    with pytest.raises(StsegInputError, match="DeepFlow needs OpenCV's contrib modules.*opencv-python-headless lacks.*--flow-method dis-fine"):
        check_opencv(["opencv-python-headless"], has_contrib=False)


def test_resize_gives_flow_in_the_resized_grid() -> None:
    velocity = (4.0, 2.0)
    flow = compute_flow(_shifted(0, velocity), _shifted(1, velocity), size=(48, 80))
    assert flow.shape == (2, 48, 80)
    # Half the size, half the pixels moved. Measured 0.02 px.
    err = np.hypot(flow[0] - 2.0, flow[1] - 1.0)[4:-4, 4:-4].mean()
    assert err < 0.2


def test_grey_frames_are_accepted() -> None:
    velocity = (1.0, 1.0)
    grey = [_shifted(t, velocity)[..., 0] for t in (0, 1)]
    assert _interior_epe(compute_flow(*grey), velocity) < 0.15


def test_bad_arguments_are_clear_errors() -> None:
    frame = _shifted(0, (0, 0))
    with pytest.raises(ValueError, match="unknown optical-flow method 'raft'"):
        FlowEstimator("raft")
    with pytest.raises(ValueError, match="unknown DIS preset"):
        FlowEstimator("dis", preset="slowest")
    with pytest.raises(ValueError, match="unknown DIS options"):
        FlowEstimator("dis", winsize=3)
    with pytest.raises(ValueError, match="deepflow takes none"):
        FlowEstimator("deepflow", preset="fast")
    with pytest.raises(ValueError, match="dis-fine takes none"):
        FlowEstimator("dis-fine", preset="fast")
    with pytest.raises(ValueError, match="unknown Farneback options"):
        FlowEstimator("farneback", preset="fast")
    with pytest.raises(ValueError, match="at least 16x16"):
        FlowEstimator("dis", size=(8, 8))
    with pytest.raises(ValueError, match="uint8"):
        compute_flow(frame.astype(np.float32), frame)
    with pytest.raises(ValueError, match="differ in size"):
        compute_flow(frame, frame[:-2])
    assert FlowEstimator("FarneBack", winsize=21).options["winsize"] == 21


def _write_frames(folder: Path, n: int, velocity: tuple[float, float]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t in range(n):
        Image.fromarray(_shifted(t, velocity)).save(folder / f"img{t}.png")


@pytest.mark.parametrize("step", [1, 2])
def test_flow_from_frame_folder(tmp_path: Path, step: int) -> None:
    velocity = (1.5, -1.0)
    _write_frames(tmp_path / "seq", 5, velocity)
    seen: list[int] = []
    paths = flow_from_video(tmp_path / "seq", tmp_path / "flow", step=step, on_frame=seen.append)
    # Flow for frame t goes t -> t+step and is named after frame t: F - step files.
    assert [p.name for p in paths] == [f"{t:05d}.flo" for t in range(5 - step)]
    assert sorted(p.name for p in (tmp_path / "flow").iterdir()) == [p.name for p in paths] + ["stseg-flow.json"]
    assert seen == [0, 1, 2, 3, 4]
    for path in paths:
        flow = read_flow(path)
        # Measured 0.04 px (step 1) and 0.01 px (step 2).
        assert _interior_epe(flow, (velocity[0] * step, velocity[1] * step)) < 0.2


def test_flow_from_mp4_with_resize(tmp_path: Path) -> None:
    velocity = (2.0, 1.0)
    video = tmp_path / "clip.mp4"
    with VideoWriter(video) as writer:
        for t in range(4):
            writer.write(_shifted(t, velocity))
    paths = flow_from_video(video, tmp_path / "flow", method="farneback", size=(48, 80))
    assert len(paths) == 3
    for path in paths:
        flow = read_flow(path)
        assert flow.shape == (2, 48, 80)
        # MPEG-4 artefacts and the half-size grid: measured 0.02 px (DIS 0.05 px).
        assert np.hypot(flow[0] - 1.0, flow[1] - 0.5)[4:-4, 4:-4].mean() < 0.25


class _CountingSource(FrameSource):
    """A frame source that records how many frames have been handed out."""

    def __init__(self, n: int) -> None:
        self.path = Path("counting")
        self.name, self.fps, self.size = "counting", 25.0, SIZE
        self.n, self.delivered = n, 0

    def __len__(self) -> int:
        return self.n

    def __iter__(self):
        for t in range(self.n):
            self.delivered += 1
            yield t, _shifted(t, (1.0, 0.0))


@pytest.mark.parametrize("step", [1, 3])
def test_flows_are_streamed_not_read_ahead(step: int) -> None:
    source = _CountingSource(7)
    for t, flow in iter_flows(source, step=step):
        # Flow t needs frame t + step and nothing later: no read-ahead, so at most step + 1
        # frames were ever needed at once.
        assert source.delivered == t + step + 1
        assert flow.shape == (2, *SIZE)
    assert source.delivered == 7


def test_too_few_frames_and_bad_step(tmp_path: Path) -> None:
    _write_frames(tmp_path / "short", 2, (1.0, 0.0))
    with pytest.raises(StsegInputError, match=r"short: only 2 frame\(s\)"):
        flow_from_video(tmp_path / "short", tmp_path / "flow", step=2)
    for step in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="step"):
            flow_from_video(tmp_path / "short", tmp_path / "flow", step=step)
    with pytest.raises(FileNotFoundError, match="missing"):
        flow_from_video(tmp_path / "missing", tmp_path / "flow")


def test_rerun_replaces_an_earlier_flow_output_whole(tmp_path: Path) -> None:
    _write_frames(tmp_path / "long", 6, (1.0, 0.5))
    _write_frames(tmp_path / "short", 3, (-1.0, 0.0))
    flow_from_video(tmp_path / "long", tmp_path / "flow")
    paths = flow_from_video(tmp_path / "short", tmp_path / "flow")
    # Before, the long video's 00002..00004.flo stayed beside the short one's two flows.
    assert sorted(p.name for p in (tmp_path / "flow").iterdir()) == ["00000.flo", "00001.flo", "stseg-flow.json"]
    assert [p.name for p in paths] == ["00000.flo", "00001.flo"]
    assert read_flow(paths[0])[0].mean() == pytest.approx(-1.0, abs=0.3)


def test_flow_folder_with_other_files_is_refused(tmp_path: Path) -> None:
    from stseg_deploy.io.outdir import StsegOutputError

    _write_frames(tmp_path / "seq", 4, (1.0, 0.0))
    (tmp_path / "raft").mkdir()
    (tmp_path / "raft" / "00000.flo").write_bytes(b"someone else's flow")
    with pytest.raises(StsegOutputError, match="raft: holds files that stseg-flow did not write"):
        flow_from_video(tmp_path / "seq", tmp_path / "raft")
    assert (tmp_path / "raft" / "00000.flo").read_bytes() == b"someone else's flow"
    with pytest.raises(StsegOutputError, match="would hold the input"):  # flows over the frames
        flow_from_video(tmp_path / "seq", tmp_path / "seq")
    assert len(list((tmp_path / "seq").iterdir())) == 4
