"""How fast the pipeline around the model runs: the fastest any GPU can be fed.

``bench_model_free`` runs stseg-infer's whole pipeline (read .flo at the original size,
resize, windows, argmax of given probabilities, link, upsample, PNG, labels.npy) with a
stand-in that returns fixed probabilities instead of a network, beside a plain
single-threaded loop over the same files (read → resize → upsample → PNG), and reports
frames per second of both, their ratio and the peak memory for each video length.
``bench_pipeline`` times the pipeline with a real model against the model alone.
``bench_end_to_end`` times frames in, label PNGs out (the flow computed in the stream, the
defaults) against the flow alone on the same frames.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from stseg_deploy.metadata import ModelInfo
from stseg_deploy.preprocess import DEFAULT_RESIZE, WINDOW, resize_flow, resize_labels
from stseg_kernels import argmax_labels

from ..export_wrapper import example_input
from .measure import BenchRow, median_seconds, peak_memory

BASELINE = "plain loop (read, resize, upsample, PNG)"
MODEL_FREE = "pipeline (model-free)"


class GivenProbabilities:
    """A :class:`~stseg_deploy.runtime.SegmentationModel` without a network: every call
    returns the same probabilities (b, L, 3, h, w), smooth blobs of L segments, so the
    pipeline links and writes plausible label maps while the model costs nothing."""

    engine = "none"
    device = "cpu"

    def __init__(self, n_labels: int, size: tuple[int, int], batch: int, seed: int = 0) -> None:
        h, w = size
        self.info = ModelInfo(n_labels, WINDOW, (h, w), "Quadratic", "frame", 0, "bench", 0, None, DEFAULT_RESIZE)
        rng = np.random.default_rng(seed)
        coarse = rng.normal(size=(batch, n_labels, WINDOW, max(2, h // 16), max(2, w // 16))).astype(np.float32)
        logits = coarse.repeat(16, axis=3).repeat(16, axis=4)[..., :h, :w]
        logits = np.pad(logits, [(0, 0)] * 3 + [(0, h - logits.shape[3]), (0, w - logits.shape[4])], mode="edge")
        exp = np.exp(3.0 * logits)
        self.proba = np.ascontiguousarray(exp / exp.sum(axis=1, keepdims=True), dtype=np.float32)

    def run(self, flow: np.ndarray, features: bool = False) -> np.ndarray:  # noqa: ARG002
        return self.proba[: len(flow)]

    def labels(self, flow: np.ndarray) -> np.ndarray:
        # The argmax a model without an in-graph one leaves to the pipeline: timed.
        return argmax_labels(self.proba[: len(flow)])


def write_flow_files(folder: Path, frames: int, size: tuple[int, int]) -> list[Path]:
    """``frames`` .flo files at ``size`` (H, W), hard links to three distinct flows: a long
    video costs the disk three files, and every run reads through the same page cache."""
    from stseg_deploy.io.flowio import write_flow

    folder.mkdir(parents=True, exist_ok=True)
    flows = example_input(1, size[0], size[1]).numpy()[0].transpose(1, 0, 2, 3)
    paths = []
    for t in range(frames):
        path = folder / f"{t:05d}.flo"
        if t < len(flows):
            write_flow(path, flows[t])
        else:
            os.link(paths[t % len(flows)], path)
        paths.append(path)
    return paths


def plain_loop(files: list[Path], labels: np.ndarray, size: tuple[int, int], out: Path) -> None:
    """The baseline: one thread, file by file, read → resize → upsample → PNG.
    labels: (n, h, w) uint8 label maps at model size, used in turn."""
    from stseg_deploy.io.flowio import read_flow
    from stseg_deploy.io.masks import write_label_png

    out.mkdir(parents=True, exist_ok=True)
    for t, path in enumerate(files):
        flow = read_flow(path)
        resize_flow(flow, size)
        write_label_png(out / f"{path.stem}.png", resize_labels(labels[t % len(labels)], flow.shape[1:]))


def bench_model_free(
    frames: list[int], original_size: tuple[int, int] = (480, 854), size: tuple[int, int] = (128, 224),
    n_labels: int = 4, batch: int = 8, repeats: int = 3,
) -> list[BenchRow]:
    """For each video length in ``frames``: the plain loop and the model-free pipeline (no
    test-time flip, no refinement, no motion split) over the same files, both timed (median of ``repeats`` after a warm-up) in this process.
    Rows: engine names the mode and length; windows_per_s is frames per second."""
    from stseg_deploy.output.folder import segment_to_folder
    from stseg_deploy.pipeline import Segmenter
    from stseg_deploy.settings import InferenceSettings
    from stseg_deploy.sources import sequences_from_folders

    model = GivenProbabilities(n_labels, size, batch)
    labels = model.labels(model.proba)[:, 1]  # (batch, h, w): the maps the baseline writes
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in frames:
            folder = Path(tmp) / f"flows{n}" / "seq"
            files = write_flow_files(folder, n, original_size)
            # Without the stages: their cost is timed with a model, in bench_pipeline.
            # As before the settings object: the foreground decision at its default (on).
            settings = InferenceSettings.from_options(cut_size=10, tta="none", refine="none", motion_split="none")
            segmenter = Segmenter(model, settings, batch_size=batch, image_size=size)
            (sequence,) = sequences_from_folders([folder])
            with peak_memory("cpu") as base_peak:
                base_s = median_seconds(lambda: plain_loop(files, labels, size, Path(tmp) / "plain"), repeats, 1, lambda: None)
            with peak_memory("cpu") as pipe_peak:
                pipe_s = median_seconds(lambda: segment_to_folder(segmenter, sequence, Path(tmp) / "out", model_sha256="bench"), repeats, 1, lambda: None)
            for name, seconds, peak in ((BASELINE, base_s, base_peak), (MODEL_FREE, pipe_s, pipe_peak)):
                rows.append(BenchRow(
                    f"{name}, {n} frames", "cpu", "-", size[0], size[1], n_labels, batch,
                    round(n / seconds, 1), round(seconds / n * 1e3, 3), round(peak[0], 1),
                ))
    return rows


def bench_labels_output(onnx_path: Path, size: tuple[int, int], batch: int, provider: str, threads: int | None, repeats: int = 5) -> list[BenchRow]:
    """What the in-graph argmax saves: per batch, probabilities fetched and reduced by numpy
    (what the pipeline did before), by the argmax kernel, or the 'labels' output alone."""
    from stseg_deploy.runtime import OnnxModel

    session = OnnxModel(onnx_path, provider=provider, threads=threads)
    if not session.has_labels:
        raise ValueError(f"{onnx_path}: no 'labels' output (exported before it existed); export it again")
    h, w = size
    windows = example_input(batch, h, w).numpy()
    ways = {
        "onnxruntime proba + numpy argmax": lambda: session.run(windows).argmax(axis=1).astype(np.uint8),
        "onnxruntime proba + argmax kernel": lambda: argmax_labels(session.run(windows)),
        "onnxruntime labels output": lambda: session.labels(windows),
    }
    rows = []
    for name, fn in ways.items():
        seconds = median_seconds(fn, repeats, 2, lambda: None)
        rows.append(BenchRow(name, session.device, "fp32", h, w, session.info.n_labels, batch,
                             round(batch / seconds, 2), round(seconds / batch * 1e3, 3), 0.0))
    return rows


# The pipeline with every stage off; each row of STAGES names only the options it turns on.
STAGES_OFF = {"tta": "none", "refine": "none", "motion_split": "none", "carry": "none", "foreground": "none", "link_reclaim": False}
_DEFAULTS_ON = {"tta": "flip", "refine": "guided", "motion_split": "motion", "foreground": "motion"}
STAGES: dict[str, dict[str, object]] = {
    "pipeline": {},
    "pipeline + flip": {"tta": "flip"},
    "pipeline + guided": {"refine": "guided"},
    "pipeline + split": {"motion_split": "motion"},
    "pipeline + carry": {"carry": "forward"},
    "pipeline + carry both": {"carry": "both"},
    "pipeline + reclaim": {"link_reclaim": True},
    "pipeline + foreground": {"foreground": "motion"},
    "pipeline + flip + guided": {"tta": "flip", "refine": "guided"},
    "pipeline + flip + guided + split": {"tta": "flip", "refine": "guided", "motion_split": "motion"},
    "pipeline + flip + guided + split + foreground (the defaults)": _DEFAULTS_ON,
    "pipeline + flip + guided + split + carry + foreground": {**_DEFAULTS_ON, "carry": "forward"},
}


def write_frame_files(folder: Path, names: list[str], size: tuple[int, int], seed: int = 0) -> list[Path]:
    """One JPEG frame per name at ``size`` (H, W): smooth colour blobs, the guides a guided
    refinement filters with (its cost does not depend on the content)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    paths = []
    for name in names:
        frame = cv2.resize(rng.integers(0, 256, (max(2, h // 32), max(2, w // 32), 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
        paths.append(folder / f"{name}.jpg")
        if not cv2.imwrite(str(paths[-1]), frame):
            raise OSError(f"{paths[-1]}: could not write")
    return paths


def bench_pipeline(
    onnx_path: Path, size: tuple[int, int], batch: int, provider: str, threads: int | None,
    frames: int = 24, original_size: tuple[int, int] = (480, 854), repeats: int = 3,
) -> list[BenchRow]:
    """The whole pipeline (read .flo at original size, resize, model, link, write PNGs and
    labels.npy) with each of its stages (:data:`STAGES`: the test-time flip, the guided
    refinement, with frames at the original size, the motion split, the temporal carry, the
    foreground decision and the reclaim of labels in linking),
    against the model alone on the same
    windows. Returns one row per stage, then the model's."""
    from dataclasses import replace

    from stseg_deploy.io.flowio import read_flow
    from stseg_deploy.output.folder import model_file_sha256, segment_to_folder
    from stseg_deploy.pipeline import Segmenter
    from stseg_deploy.preprocess import flow_windows
    from stseg_deploy.runtime import OnnxModel
    from stseg_deploy.settings import InferenceSettings
    from stseg_deploy.sources import sequences_from_folders

    session = OnnxModel(onnx_path, provider=provider, threads=threads)
    device = session.device
    h, w = size
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "flows" / "seq"
        files = write_flow_files(folder, frames, original_size)
        sequence = sequences_from_folders([folder])[0]
        images = write_frame_files(Path(tmp) / "frames", sequence.frame_names, original_size)
        sequence = replace(sequence, images=tuple(images), frame_size=original_size)
        windows = flow_windows(np.stack([resize_flow(read_flow(p), size) for p in files]))

        def model_only() -> None:
            for start in range(0, len(windows), batch):
                session.labels(windows[start : start + batch])

        with peak_memory("cpu") as peak_model:
            model_s = median_seconds(model_only, repeats, 1, lambda: None)
        for name, options in STAGES.items():
            settings = InferenceSettings.from_options(cut_size=10, **{**STAGES_OFF, **options})
            segmenter = Segmenter(session, settings, batch_size=batch, image_size=size)
            model_sha256 = model_file_sha256(segmenter)  # once, as stseg-infer does: not timed
            with peak_memory("cpu") as peak_pipe:
                pipe_s = median_seconds(
                    lambda: segment_to_folder(segmenter, sequence, Path(tmp) / "out", model_sha256=model_sha256),
                    repeats, 1, lambda: None,
                )
            rows.append(BenchRow(name, device, "fp32", h, w, session.info.n_labels, batch, round(len(windows) / pipe_s, 3),
                                 round(pipe_s / frames * 1e3, 3), round(peak_pipe[0], 1)))
    n = len(windows)
    rows.append(BenchRow("onnxruntime(model only)", device, "fp32", h, w, session.info.n_labels, batch, round(n / model_s, 3),
                         round(model_s / frames * 1e3, 3), round(peak_model[0], 1)))
    return rows


END_TO_END = "end to end (frames -> label PNGs, the defaults)"
FLOW_ALONE = "flow alone (frames -> flows)"


def write_moving_frames(folder: Path, frames: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """``frames`` JPEGs at ``size`` (H, W): a textured ground panning left and a brighter square
    moving right, so the flow engine has real motion to find (its cost depends a little on it)."""
    import cv2

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    h, w = size
    ground = cv2.resize(rng.integers(0, 256, (max(2, h // 16), max(2, (w + 4 * frames) // 16), 3), dtype=np.uint8),
                        (w + 4 * frames, h), interpolation=cv2.INTER_CUBIC)
    side = max(4, h // 5)
    paths = []
    for t in range(frames):
        frame = np.ascontiguousarray(ground[:, 2 * t : 2 * t + w])
        top, left = h // 3, min(w - side, w // 5 + 6 * t)
        frame[top : top + side, left : left + side] = np.clip(frame[top : top + side, left : left + side].astype(int) + 80, 0, 255)
        paths.append(folder / f"{t:05d}.jpg")
        if not cv2.imwrite(str(paths[-1]), frame):
            raise OSError(f"{paths[-1]}: could not write")
    return paths


def bench_end_to_end(
    onnx_path: Path, provider: str, threads: int | None, batch: int = 8,
    frames: int = 24, original_size: tuple[int, int] = (480, 854), repeats: int = 2,
) -> list[BenchRow]:
    """stseg-infer on a folder of frames with the defaults (the model's flow recipe computed in
    the stream, every stage, label PNGs at the frames' size) against the flow alone on the same
    frames, one process. Returns the two rows, ms per segmented frame."""
    from stseg_deploy.flow.opticalflow import iter_flows
    from stseg_deploy.flow.recipe import resolve_recipe
    from stseg_deploy.io.videoio import open_frame_source
    from stseg_deploy.output.folder import model_file_sha256, segment_to_folder
    from stseg_deploy.pipeline import Segmenter
    from stseg_deploy.runtime import OnnxModel
    from stseg_deploy.settings import InferenceSettings
    from stseg_deploy.sources import sequences_from_inputs

    session = OnnxModel(onnx_path, provider=provider, threads=threads)
    recipe = resolve_recipe(session.info.flow)  # what stseg-infer computes for this model by default
    h, w = session.info.image_size
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "frames" / "clip"
        write_moving_frames(folder, frames, original_size)
        size = recipe.size_for(original_size)

        def flow_alone() -> None:
            for _ in iter_flows(open_frame_source(folder), recipe.method, size, recipe.step):
                pass

        flow_s = median_seconds(flow_alone, repeats, 1, lambda: None)
        (sequence,) = sequences_from_inputs([folder], recipe)
        segmenter = Segmenter(session, InferenceSettings(), batch_size=batch)
        model_sha256 = model_file_sha256(segmenter)
        with peak_memory("cpu") as peak:
            full_s = median_seconds(
                lambda: segment_to_folder(segmenter, sequence, Path(tmp) / "out", model_sha256=model_sha256), repeats, 1, lambda: None,
            )
    n = frames - recipe.step
    return [
        BenchRow(FLOW_ALONE, session.device, "fp32", h, w, session.info.n_labels, batch, round(n / flow_s, 3), round(flow_s / n * 1e3, 3), 0.0),
        BenchRow(END_TO_END, session.device, "fp32", h, w, session.info.n_labels, batch, round(n / full_s, 3), round(full_s / n * 1e3, 3), round(peak[0], 1)),
    ]
