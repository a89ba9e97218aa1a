"""Where a segmented sequence goes: sinks that :meth:`Segmenter.run` writes linked frames to.

The pipeline owns the loop (read → model → link); a sink only receives, in this order:
``open(sequence, stats)`` once; ``flow(index, flow, image)`` for each flow as read, on the
read-ahead thread (the flow at its original size, and the video frame it starts from, or
None for flow files); ``write(frame)`` for each linked frame, in order, on the calling
thread; then ``close()``, or ``abort()`` instead when anything failed. So the predictor
(:class:`~stseg_deploy.pipeline.Segmenter`) stays apart from the code that writes files.

- :class:`MemorySink`: label maps (and probabilities) in memory, for the Python API.
- :class:`FolderSink`: ``labels.npy``, palette PNGs at the frames' size, ``foreground/``
  and ``objects/`` (when the foreground was decided), ``proba/``, ``features/`` (the record, ``sequence.json``, is written by
  :func:`stseg_deploy.output.folder.segment_to_folder`, which owns the output unit).
- :class:`OverlaySink`: ``flow/`` colour images, ``overlay/`` PNGs and ``overlay.mp4``,
  blended as frames arrive, from the frames read for the flow (a video is not decoded again).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..io.atomic import write_npy
from ..io.background import BackgroundWriter
from ..io.masks import write_label_png, write_mask_png, write_object_png, write_png
from ..io.npystream import NpyFrameWriter
from ..preprocess import resize_labels
from ..stages.linker import LinkedFrame
from .layout import (
    FEATURES_DIR,
    FLOW_DIR,
    FOREGROUND_DIR,
    LABELS_FILE,
    OBJECTS_DIR,
    OVERLAY_DIR,
    OVERLAY_VIDEO,
    PROBA_DIR,
    object_id_maps,
)


def frame_masks(frame: LinkedFrame, size: tuple[int, int]) -> np.ndarray:
    """A linked frame's label map at ``size`` (H, W), uint8: its refined labels when it has
    them (resized, nearest, only if at another size), else its labels upsampled, nearest."""
    return resize_labels(frame.labels if frame.refined is None else frame.refined, size)


class FrameSink:
    """Base of the sinks: every step does nothing unless a sink overrides it.

    ``wants_images``: the run should keep each video frame for :meth:`flow`.
    """

    wants_images = False

    def open(self, sequence, stats) -> None:  # noqa: ARG002
        """Before the first flow is read. ``stats``: the run's SequenceStats (its
        ``original_size`` is known from the first ``flow`` on)."""

    def flow(self, index: int, flow: np.ndarray, image: np.ndarray | None) -> None:  # noqa: ARG002
        """Flow ``index`` as read: (2, H, W) float32 pixels, and its video frame (H, W, 3) uint8
        RGB or None. Called from the read-ahead thread."""

    def write(self, frame: LinkedFrame) -> None:  # noqa: ARG002
        """One linked frame, in frame order."""

    def close(self) -> None:
        """After the last frame: finish every file."""

    def abort(self) -> None:
        """Instead of close() when the run failed: stop, keep nothing half-written."""


def drive(sinks: list[FrameSink], sequence, stats, frames) -> None:
    """Feed linked ``frames`` (an iterable, pulled only after every sink is open) to
    ``sinks``: each is opened, sees every frame in order, then is closed; when anything
    fails, every sink opened is aborted instead and the error raised. ``frames`` is closed
    (if it is a generator) on any error too."""
    opened: list[FrameSink] = []
    try:
        for sink in sinks:
            sink.open(sequence, stats)
            opened.append(sink)
        with contextlib.closing(frames) if hasattr(frames, "close") else contextlib.nullcontext():
            for frame in frames:
                for sink in sinks:
                    sink.write(frame)
        # Popped only once closed: a sink whose close() raises is aborted below.
        while opened:
            opened[0].close()
            opened.pop(0)
    except BaseException:
        for sink in opened:
            sink.abort()
        raise


class CallbackSink(FrameSink):
    """Calls ``on_frame(done, total)`` after each linked frame: progress for the Python API."""

    def __init__(self, on_frame) -> None:
        self.on_frame = on_frame

    def open(self, sequence, stats) -> None:  # noqa: ARG002
        self._total = sequence.n_frames
        self._done = 0

    def write(self, frame: LinkedFrame) -> None:  # noqa: ARG002
        self._done += 1
        self.on_frame(self._done, self._total)


class MemorySink(FrameSink):
    """Collects ``labels`` (F, h, w) uint8 at model size and, when the run keeps them,
    ``proba`` (F, L, h, w) float32; when the run refines, ``refined`` (F, H, W) uint8, the
    label maps at the frames' size; when it decides the foreground, ``objects`` (F, L) bool,
    which labels are moving objects in each frame."""

    def __init__(self) -> None:
        self.labels: np.ndarray | None = None
        self.proba: np.ndarray | None = None
        self.refined: np.ndarray | None = None
        self.objects: np.ndarray | None = None

    def open(self, sequence, stats) -> None:  # noqa: ARG002
        self.labels = None
        self.proba = None
        self.refined = None
        self.objects = None
        self._n_frames = sequence.n_frames

    def write(self, frame: LinkedFrame) -> None:
        if self.labels is None:
            self.labels = np.empty((self._n_frames, *frame.labels.shape), dtype=np.uint8)
        self.labels[frame.index] = frame.labels
        if frame.proba is not None:
            if self.proba is None:
                self.proba = np.empty((self._n_frames, *frame.proba.shape), dtype=np.float32)
            self.proba[frame.index] = frame.proba
        if frame.refined is not None:
            if self.refined is None:
                self.refined = np.empty((self._n_frames, *frame.refined.shape), dtype=np.uint8)
            self.refined[frame.index] = frame.refined
        if frame.objects is not None:
            if self.objects is None:
                self.objects = np.zeros((self._n_frames, len(frame.objects)), dtype=bool)
            self.objects[frame.index] = frame.objects


class FolderSink(FrameSink):
    """Per-frame files in ``folder`` (an empty folder): labels stream into ``labels.npy``
    frame by frame at ``model_size`` (h, w), so memory stays flat; PNGs (resized to the
    frames' size), probabilities and features are written by a background thread.
    ``foreground``: the run decides which segments are objects, so each frame also gets its
    0/255 mask in ``foreground/`` and its object-id map in ``objects/``, its label PNG draws
    the background black, and ``objects`` collects each frame's object labels (for
    sequence.json). ``on_frame(frame)`` is called from the writer thread once a frame's files
    are written."""

    def __init__(
        self,
        folder: Path,
        names: list[str],
        model_size: tuple[int, int],
        save_proba: bool = False,
        save_features: bool = False,
        on_frame: Callable[[LinkedFrame], None] | None = None,
        foreground: bool = False,
    ) -> None:
        self.folder = Path(folder)
        self.names = names
        self.model_size = tuple(model_size)
        self.save_proba = save_proba
        self.save_features = save_features
        self.on_frame = on_frame
        self.foreground = foreground
        self.objects: list[list[int] | None] = [None] * len(names)

    def open(self, sequence, stats) -> None:  # noqa: ARG002
        if self.foreground:
            (self.folder / FOREGROUND_DIR).mkdir()
            (self.folder / OBJECTS_DIR).mkdir()
        if self.save_proba:
            (self.folder / PROBA_DIR).mkdir()
        if self.save_features:
            (self.folder / FEATURES_DIR).mkdir()
        self.stats = stats
        self._writer = BackgroundWriter()
        self._volume = NpyFrameWriter(self.folder / LABELS_FILE, len(self.names), self.model_size, np.uint8)

    def write(self, frame: LinkedFrame) -> None:
        if self.foreground:
            if frame.objects is None:
                raise ValueError(f"frame {self.names[frame.index]}: no foreground decided, yet the output is to hold one")
            self.objects[frame.index] = [int(label) for label in np.flatnonzero(frame.objects)]
        self._volume.write(frame.index, frame.labels)
        self._writer.submit(lambda: self._write_files(frame))

    def _write_files(self, frame: LinkedFrame) -> None:
        t0 = time.perf_counter()
        name = self.names[frame.index]
        maps = frame_masks(frame, self.stats.original_size)
        objects = frame.objects if self.foreground else None
        write_label_png(self.folder / f"{name}.png", maps, objects)
        if objects is not None:
            ids = object_id_maps(maps[None], objects[None])[0]
            write_mask_png(self.folder / FOREGROUND_DIR / f"{name}.png", ids > 0)
            write_object_png(self.folder / OBJECTS_DIR / f"{name}.png", ids)
        if frame.proba is not None:
            write_npy(self.folder / PROBA_DIR / f"{name}.npy", frame.proba.astype(np.float32))
        if frame.features is not None:
            # float16 halves the largest output; features are descriptors, not probabilities.
            write_npy(self.folder / FEATURES_DIR / f"{name}.npy", frame.features.astype(np.float16))
        self.stats.write += time.perf_counter() - t0
        if self.on_frame is not None:
            self.on_frame(frame)

    def close(self) -> None:
        self._writer.close()
        self._volume.close()

    def abort(self) -> None:
        self._writer.abort()
        self._volume.abort()


class OverlaySink(FrameSink):
    """``flow/<frame>.png`` (the flow's colour images), ``overlay/<frame>.png`` and
    ``overlay.mp4``: the segments (the refined label maps when the run refines) blended, one
    fixed colour per label (only the moving objects' when the foreground was decided), over the frames the run read (a video's, or a flow-file input's
    frames when it refines with them), else over the flow colours. Each frame is blended as
    soon as its labels arrive, from the image kept when its flow was read."""

    wants_images = True

    def __init__(self, folder: Path, names: list[str], fps: float, alpha: float = 0.5) -> None:
        self.folder = Path(folder)
        self.names = names
        self.fps = fps
        self.alpha = alpha

    def open(self, sequence, stats) -> None:
        from ..io.videoio import VideoWriter

        self.stats = stats
        (self.folder / FLOW_DIR).mkdir()
        (self.folder / OVERLAY_DIR).mkdir()
        self._backgrounds: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()
        self._writer = BackgroundWriter()
        self._stack = contextlib.ExitStack()
        self._video = self._stack.enter_context(VideoWriter(self.folder / OVERLAY_VIDEO, fps=self.fps))

    def flow(self, index: int, flow: np.ndarray, image: np.ndarray | None) -> None:
        from ..viz.flowcolour import flow_to_rgb

        colours = flow_to_rgb(flow)
        self._writer.submit(lambda: _save_png(self.folder / FLOW_DIR / f"{self.names[index]}.png", colours))
        with self._lock:
            self._backgrounds[index] = colours if image is None else image

    def write(self, frame: LinkedFrame) -> None:
        from ..viz.overlay import blend_labels

        t0 = time.perf_counter()
        with self._lock:
            image = self._backgrounds.pop(frame.index)
        maps = frame_masks(frame, image.shape[:2])
        # With a foreground decided, only the moving objects are tinted.
        untinted = None if frame.objects is None else ~frame.objects[maps]
        blended = blend_labels(image, maps, alpha=self.alpha, untinted=untinted)
        self._writer.submit(lambda: _save_png(self.folder / OVERLAY_DIR / f"{self.names[frame.index]}.png", blended))
        self._video.write(blended)
        self.stats.write += time.perf_counter() - t0

    def close(self) -> None:
        self._writer.close()
        self._stack.close()

    def abort(self) -> None:
        self._writer.abort()
        failed = RuntimeError("the run failed")
        self._stack.__exit__(type(failed), failed, None)  # the video writer discards its temp file


def _save_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    write_png(path, Image.fromarray(rgb))
