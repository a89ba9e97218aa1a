"""Tests for stseg_deploy.output.sinks and Segmenter.run: the one loop and where its frames go."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import FakeModel
from fakes import write_sequence as _write_sequence
from PIL import Image

from stseg_deploy.flow.recipe import FlowRecipe
from stseg_deploy.output.sinks import FrameSink, MemorySink, OverlaySink
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.settings import InferenceSettings
from stseg_deploy.sources import open_video_sequence, sequences_from_folders
from stseg_deploy.viz.overlay import blend_labels


class Recorder(FrameSink):
    """Writes down the calls it gets; fails on a chosen frame."""

    def __init__(self, fail_at: int | None = None) -> None:
        self.calls: list[str] = []
        self.fail_at = fail_at

    def open(self, sequence, stats) -> None:  # noqa: ARG002
        self.calls.append("open")

    def flow(self, index, flow, image) -> None:  # noqa: ARG002
        self.calls.append(f"flow {index}")

    def write(self, frame) -> None:
        if frame.index == self.fail_at:
            raise OSError("disk full")
        self.calls.append(f"write {frame.index}")

    def close(self) -> None:
        self.calls.append("close")

    def abort(self) -> None:
        self.calls.append("abort")


def test_run_feeds_every_sink_in_order_and_memory_sink_matches_frames(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "seq", 7)
    seq = sequences_from_folders([tmp_path / "seq"])[0]
    segmenter = Segmenter(FakeModel(), InferenceSettings.from_options(cut_size=3), batch_size=2)
    memory, recorder = MemorySink(), Recorder()
    stats = segmenter.run(seq, [memory, recorder], keep_proba=True)
    expected = list(Segmenter(FakeModel(), InferenceSettings.from_options(cut_size=3), batch_size=2).linked_frames(seq, keep_proba=True))
    np.testing.assert_array_equal(memory.labels, np.stack([f.labels for f in expected]))
    np.testing.assert_allclose(memory.proba, np.stack([f.proba for f in expected]))
    assert recorder.calls[0] == "open" and recorder.calls[-1] == "close"
    writes = [c for c in recorder.calls if c.startswith("write")]
    assert writes == [f"write {t}" for t in range(7)]
    assert sorted(c for c in recorder.calls if c.startswith("flow")) == sorted(f"flow {t}" for t in range(7))
    assert stats.n_frames == 7 and stats.total > 0


def test_a_failing_sink_aborts_every_opened_sink(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "seq", 6)
    seq = sequences_from_folders([tmp_path / "seq"])[0]
    first, failing = Recorder(), Recorder(fail_at=3)
    with pytest.raises(OSError, match="disk full"):
        Segmenter(FakeModel()).run(seq, [first, failing])
    assert first.calls[-1] == "abort" and "close" not in first.calls
    assert failing.calls[-1] == "abort" and "write 3" not in failing.calls


def test_overlay_of_a_video_blends_the_frames_read_for_the_flow(tmp_path: Path, monkeypatch) -> None:
    """Each overlay PNG is the frame with its labels blended in, from the frames decoded for
    the flow: a frame folder is decoded once (it is counted by listing), not again for the
    overlay (a video file: twice, a count pass and the flow)."""
    rng = np.random.default_rng(0)
    frames_dir = tmp_path / "clip"
    frames_dir.mkdir()
    shift = np.zeros((32, 40, 3), np.uint8)
    texture = (rng.random((32, 60, 3)) * 255).astype(np.uint8)
    for t in range(6):
        shift[:] = texture[:, t * 2 : t * 2 + 40]
        Image.fromarray(shift).save(frames_dir / f"{t:05d}.png")
    from stseg_deploy.io import videoio

    decoded = []
    real_iter = videoio.ImageFolderSource.__iter__

    def counting(self):
        decoded.append(1)
        return real_iter(self)

    monkeypatch.setattr(videoio.ImageFolderSource, "__iter__", counting)
    seq = open_video_sequence(frames_dir, FlowRecipe("dis", scale=1.0))
    memory = MemorySink()
    out = tmp_path / "out"
    out.mkdir()
    Segmenter(FakeModel(), batch_size=2).run(seq, [memory, OverlaySink(out, seq.frame_names, fps=10)])
    assert len(decoded) == 1
    for t, name in enumerate(seq.frame_names):
        frame = np.asarray(Image.open(frames_dir / f"{name}.png").convert("RGB"))
        # A video has its frames: by default the overlay shows the refined label maps.
        assert memory.refined is not None and memory.refined[t].shape == frame.shape[:2]
        # The foreground is decided by default: only the moving objects are tinted.
        background = ~memory.objects[t][memory.refined[t]]
        expected = blend_labels(frame, memory.refined[t], untinted=background)
        np.testing.assert_array_equal(expected[background], frame[background])
        np.testing.assert_array_equal(np.asarray(Image.open(out / "overlay" / f"{name}.png")), expected)
        assert (out / "flow" / f"{name}.png").is_file()
    assert (out / "overlay.mp4").stat().st_size > 0


def test_frame_masks_are_the_refined_labels_when_there_are_some() -> None:
    from stseg_deploy.output.sinks import frame_masks
    from stseg_deploy.stages.linker import LinkedFrame

    labels = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    refined = np.arange(24, dtype=np.uint8).reshape(4, 6) % 4
    plain = LinkedFrame(0, labels, None, None)
    np.testing.assert_array_equal(frame_masks(plain, (4, 6)), labels.repeat(2, axis=0).repeat(3, axis=1))
    both = LinkedFrame(0, labels, None, None, refined=refined)
    np.testing.assert_array_equal(frame_masks(both, (4, 6)), refined)  # the overlay's and the PNGs' maps
    np.testing.assert_array_equal(frame_masks(both, (8, 12)), refined.repeat(2, axis=0).repeat(2, axis=1))
