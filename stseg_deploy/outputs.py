"""Writing a segmented sequence: labels.npy, per-frame palette PNGs, optional proba/features.

Layout of ``OUT/SEQ/``:
- ``labels.npy``: (F, h, w) uint8 at model resolution, linked labels;
- ``<frame>.png``: indexed label maps (DAVIS palette) at the flow's original size;
- ``proba/<frame>.npy``: (L, h, w) float32 renamed probabilities (``save_proba``);
- ``features/<frame>.npy``: (C, h, w) float16 last-layer features (``save_features``);
- ``sequence.json``: frame names, sizes, model metadata, cut size, link method, timings;
- with ``overlay``: ``flow/<frame>.png`` (Middlebury colour wheel), ``overlay/<frame>.png``
  and ``overlay.mp4``: the video's frames (or, for flow input, the flow colours) with the
  segments blended in, one fixed colour per label.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .atomic import atomic_write, write_npy
from .linker import LinkedFrame
from .masks import write_label_png, write_png
from .pipeline import Segmenter, SequenceStats
from .prefetch import BackgroundWriter
from .preprocess import resize_labels
from .sources import Sequence

LABELS_FILE = "labels.npy"
SEQUENCE_FILE = "sequence.json"


def segment_to_folder(
    segmenter: Segmenter,
    sequence: Sequence,
    out_dir: str | Path,
    save_proba: bool = False,
    save_features: bool = False,
    on_frame: Callable[[LinkedFrame], None] | None = None,
    overlay: bool = False,
) -> SequenceStats:
    """Segment ``sequence`` and write its outputs under ``out_dir / sequence.name``.

    An earlier run's outputs in that folder are removed first (see
    :func:`clear_sequence_output`). Memory stays flat: labels go to a memory-mapped
    temporary ``.npy`` that is renamed into
    place once complete, frames are written by a background thread as they are linked
    (``on_frame`` is called from that thread, once a frame's files are written).
    """
    seq_dir = Path(out_dir) / sequence.name
    seq_dir.mkdir(parents=True, exist_ok=True)
    clear_sequence_output(seq_dir)
    if save_proba:
        (seq_dir / "proba").mkdir(exist_ok=True)
    if save_features:
        (seq_dir / "features").mkdir(exist_ok=True)
    names = sequence.frame_names
    flow_pngs = None
    if overlay:
        from .flowviz import flow_to_rgb

        (seq_dir / "flow").mkdir(exist_ok=True)

        def flow_pngs(index: int, flow: np.ndarray) -> None:
            writer.submit(lambda: _save_png(seq_dir / "flow" / f"{names[index]}.png", flow_to_rgb(flow)))

    stats = SequenceStats()
    started = time.perf_counter()
    tmp_labels = seq_dir / f".{LABELS_FILE}.partial"
    volume = np.lib.format.open_memmap(
        tmp_labels, mode="w+", dtype=np.uint8, shape=(len(names), *segmenter.image_size)
    )
    writer = BackgroundWriter()
    def write(frame: LinkedFrame) -> None:
        t0 = time.perf_counter()
        name = names[frame.index]
        write_label_png(seq_dir / f"{name}.png", resize_labels(frame.labels, stats.original_size))
        if frame.proba is not None:
            write_npy(seq_dir / "proba" / f"{name}.npy", frame.proba.astype(np.float32))
        if frame.features is not None:
            # float16 halves the largest output; features are descriptors, not probabilities.
            write_npy(seq_dir / "features" / f"{name}.npy", frame.features.astype(np.float16))
        stats.write += time.perf_counter() - t0
        if on_frame is not None:
            on_frame(frame)

    try:
        try:
            frames = segmenter.frames(
                sequence, keep_proba=save_proba, keep_features=save_features, stats=stats, on_flow=flow_pngs
            )
            for frame in frames:
                volume[frame.index] = frame.labels
                writer.submit(lambda frame=frame: write(frame))
        finally:
            writer.close()
        volume.flush()
        del volume
        os.replace(tmp_labels, seq_dir / LABELS_FILE)
    except BaseException:
        tmp_labels.unlink(missing_ok=True)
        clear_sequence_output(seq_dir)
        with contextlib.suppress(OSError):
            seq_dir.rmdir()  # only if nothing but our outputs was there
        raise
    if overlay:
        t0 = time.perf_counter()
        write_overlays(seq_dir, sequence, names)
        stats.write += time.perf_counter() - t0
    stats.total = time.perf_counter() - started
    info = segmenter.model.info
    record = {
        "sequence": sequence.name,
        "frames": names,
        "flows": [str(p) for p in sequence.flows],
        "masks": [None if m is None else str(m) for m in sequence.masks],
        "original_size": list(stats.original_size),
        "model_size": list(segmenter.image_size),
        "n_labels": info.n_labels,
        "cut_size": segmenter.cut_size,
        "link": segmenter.link,
        "model": {**asdict(info), "image_size": list(info.image_size)},
        "engine": segmenter.model.engine,
        "device": segmenter.model.device,
        "seconds": {k: round(v, 4) for k, v in asdict(stats).items() if isinstance(v, float)},
    }
    with atomic_write(seq_dir / SEQUENCE_FILE, "w") as handle:
        json.dump(record, handle, indent=2)
    return stats


def clear_sequence_output(seq_dir: Path) -> None:
    """Remove what an earlier run wrote in ``seq_dir``, so a rerun never mixes with it.

    sequence.json goes first: while it is missing the folder reads as incomplete, which is
    what a failed rerun leaves. Only stseg-infer's own outputs are touched.
    """
    import shutil

    for name in (SEQUENCE_FILE, LABELS_FILE, "overlay.mp4", "contact_sheet.png"):
        (seq_dir / name).unlink(missing_ok=True)
    for sub in ("proba", "features", "flow", "overlay"):
        if (seq_dir / sub).is_dir():
            shutil.rmtree(seq_dir / sub)
    for png in seq_dir.glob("*.png"):
        png.unlink()


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    write_png(path, Image.fromarray(rgb))


def write_overlays(seq_dir: Path, sequence, names: list[str], alpha: float = 0.5) -> None:
    """``overlay/<frame>.png`` and ``overlay.mp4``: segments blended over the video frames,
    or over the flow colour images when the input was flow files (no frames to show)."""
    from .overlay import blend_labels
    from .videoio import DEFAULT_FPS, VideoWriter

    labels = np.load(seq_dir / LABELS_FILE, mmap_mode="r")
    (seq_dir / "overlay").mkdir(exist_ok=True)
    if sequence.frames is not None:
        fps = sequence.frames.fps
        backgrounds = (frame for t, frame in sequence.frames if t < len(names))
    else:
        from PIL import Image

        fps = DEFAULT_FPS
        backgrounds = (np.asarray(Image.open(seq_dir / "flow" / f"{name}.png").convert("RGB")) for name in names)
    writer = BackgroundWriter()
    try:
        with VideoWriter(seq_dir / "overlay.mp4", fps=fps) as video:
            for t, image in enumerate(backgrounds):
                blended = blend_labels(image, resize_labels(np.asarray(labels[t]), image.shape[:2]), alpha=alpha)
                writer.submit(lambda t=t, blended=blended: _save_png(seq_dir / "overlay" / f"{names[t]}.png", blended))
                video.write(blended)
    finally:
        writer.close()


def read_sequence_output(seq_dir: str | Path) -> tuple[np.ndarray, dict]:
    """labels (F, h, w) uint8 and the sequence.json record of a folder written above."""
    seq_dir = Path(seq_dir)
    meta_path = seq_dir / SEQUENCE_FILE
    labels_path = seq_dir / LABELS_FILE
    for path in (meta_path, labels_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; is {seq_dir} an stseg-infer output folder?")
    try:
        record = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{meta_path}: corrupt JSON ({exc})") from exc
    labels = np.load(labels_path, allow_pickle=False)
    if labels.ndim != 3 or labels.shape[0] != len(record["frames"]):
        raise ValueError(
            f"{labels_path}: shape {labels.shape} does not match the {len(record['frames'])} frames of {meta_path}"
        )
    return labels, record
