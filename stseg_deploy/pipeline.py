"""The sequence pipeline: flows (files, or computed from a video as it is read) → windows →
model → link → one label map per flow frame.

Windows are streamed in batches, so memory depends on the batch size, not the video length.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

import numpy as np

from stseg_kernels import argmax_labels

from .errors import StsegInputError
from .io.background import prefetch
from .output.sinks import FrameSink, MemorySink, drive
from .preprocess import MAX_IMAGE_SIDE, WINDOW, resize_flow
from .runtime import SegmentationModel
from .settings import InferenceSettings
from .sources import SequenceSource
from .stages.carry import TemporalCarry
from .stages.foreground import ForegroundDecider
from .stages.linker import LinkedFrame, StreamLinker
from .stages.motionsplit import MotionSplitter
from .stages.refine import refine_labels
from .stages.tta import run_flipped


@dataclass
class SequenceStats:
    """One sequence's run: ``n_frames`` flow frames segmented, ``windows`` model windows,
    ``original_size`` (H, W) the outputs are written at (the frames' size when known, else
    the flows'), and seconds: ``read`` (reading, resizing, and the sinks' flow() hooks),
    ``model`` (with test-time flip: both passes and the averaging), ``link``, ``carry``
    (the temporal carry), ``refine`` (the guided refinement), ``foreground`` (the foreground
    decision), ``write`` and ``total``.
    Every float field becomes a key of ``"seconds"`` in sequence.json."""

    n_frames: int = 0
    windows: int = 0
    read: float = 0.0
    model: float = 0.0
    link: float = 0.0
    carry: float = 0.0
    refine: float = 0.0
    foreground: float = 0.0
    write: float = 0.0
    total: float = 0.0
    original_size: tuple[int, int] = (0, 0)


class Segmenter:
    """Segments flow sequences with an exported model.

    Args:
        model: from :func:`stseg_deploy.runtime.load_model`.
        settings: the stages around the model (default :class:`InferenceSettings()`, the
            package's defaults): the test-time flip, the motion split (outputs then have
            L + extra labels), linking (method and cut size), the temporal carry, the
            refinement (a sequence without frames is an error under "guided", unrefined
            under "auto") and the foreground decision (each linked frame then carries
            ``objects``). See :mod:`stseg_deploy.stages`.
        batch_size: windows per model call.
        image_size: (H, W) model input size; default the size stored in the model.
    """

    def __init__(
        self,
        model: SegmentationModel,
        settings: InferenceSettings | None = None,
        batch_size: int = 8,
        image_size: tuple[int, int] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if settings is not None and not isinstance(settings, InferenceSettings):
            raise TypeError(f"settings must be an InferenceSettings, got {type(settings).__name__}")
        self.settings = settings if settings is not None else InferenceSettings()
        self.model = model
        self.batch_size = batch_size
        self.image_size = tuple(image_size) if image_size is not None else tuple(model.info.image_size)
        if len(self.image_size) != 2 or min(self.image_size) < 1 or max(self.image_size) > MAX_IMAGE_SIDE:
            raise ValueError(f"image_size must be two sides from 1 to {MAX_IMAGE_SIDE} pixels, got {self.image_size}")

    @property
    def n_labels(self) -> int:
        """Labels of the outputs: the model's L, plus the motion split's spare segments."""
        split = self.settings.split
        return self.model.info.n_labels + (split.extra if split.on else 0)

    def refinement(self, sequence: SequenceSource) -> str:
        """The refinement this segmenter applies to ``sequence``: "guided" or "none".

        Raises StsegInputError, naming the sequence, when "guided" was asked for and the
        sequence has no frames to guide it ("auto" then falls back to "none")."""
        asked = self.settings.refine.mode
        if asked == "none":
            return "none"
        if getattr(sequence, "has_frames", False):
            return "guided"
        if asked == "guided":
            raise StsegInputError(
                f"sequence {sequence.name!r}: --refine guided needs the video's frames, and none are known "
                "(give a video or a frame folder, a DataSplit with an Image column, or --frames DIR; "
                "or --refine none)"
            )
        return "none"

    def settings_for(self, sequence: SequenceSource) -> InferenceSettings:
        """The settings ``sequence``'s output is made with: the refinement resolved for it."""
        return self.settings.applied(self.refinement(sequence))

    def _resized_flows(self, sequence, stats: SequenceStats, on_flow=None, with_images: bool = False) -> Iterator[np.ndarray]:
        """The sequence's flows one by one at model size: (2, h, w) float32, in pixels of the
        model's grid. Sets ``stats.original_size`` from the first flow, refuses a flow whose
        size differs from the first, and calls ``on_flow(index, flow, image)`` with each
        flow at its own size before resizing."""
        size = None
        index = 0
        t0 = time.perf_counter()
        for where, flow, image in sequence.read_flows(with_images=with_images):
            if size is None:
                size = flow.shape[1:]
                # Outputs go on the frames' grid when the flow was computed at another size.
                frame_size = sequence.frame_size or size
                stats.original_size = (int(frame_size[0]), int(frame_size[1]))
            elif flow.shape[1:] != size:
                raise StsegInputError(
                    f"{where}: flow size {flow.shape[2]}x{flow.shape[1]} differs from the sequence's "
                    f"first frame {size[1]}x{size[0]} (width x height)"
                )
            if on_flow is not None:
                on_flow(index, flow, image)
            resized = resize_flow(flow, self.image_size, self.model.info.resize)
            stats.read += time.perf_counter() - t0
            yield resized
            index += 1
            t0 = time.perf_counter()

    def _window_batches(self, sequence, stats: SequenceStats, on_flow=None, with_images: bool = False) -> Iterator[np.ndarray]:
        """Model inputs: (b, 2, WINDOW, h, w) float32 batches, b <= batch_size, window k
        holding flows k, k + 1, k + 2. One buffer serves every batch: each is consumed by
        the model before the next is filled."""
        h, w = self.image_size
        batch = np.empty((self.batch_size, 2, WINDOW, h, w), dtype=np.float32)
        recent: list[np.ndarray] = []
        filled = 0
        # Read and resize ahead of the model, a batch and a window's worth at most.
        for flow in prefetch(self._resized_flows(sequence, stats, on_flow, with_images), depth=self.batch_size + WINDOW):
            recent.append(flow)
            if len(recent) > WINDOW:
                recent.pop(0)
            if len(recent) == WINDOW:
                for t in range(WINDOW):
                    batch[filled, :, t] = recent[t]
                filled += 1
                if filled == self.batch_size:
                    yield batch
                    filled = 0
        if filled:
            yield batch[:filled]

    def linked_frames(
        self,
        sequence: SequenceSource,
        keep_proba: bool = False,
        keep_features: bool = False,
        stats: SequenceStats | None = None,
        on_flow: Callable[[int, np.ndarray, np.ndarray | None], None] | None = None,
        with_images: bool = False,
    ) -> Iterator[LinkedFrame]:
        """Linked frames of a sequence in order: labels (h, w) uint8 at model size, plus
        renamed probabilities (L, h, w) and features (C, h, w) when asked.

        ``sequence``: a :class:`~stseg_deploy.sources.Sequence` or ``VideoSequence``.
        ``on_flow(index, flow, image)`` sees each flow at its original size, (2, H, W) pixels,
        and with ``with_images`` (or when refining) its frame (H, W, 3) uint8 RGB (None for
        flow files without frames), from the read-ahead thread. When the sequence is
        refined (:meth:`refinement`), each frame also carries ``refined`` (H, W) uint8, its
        labels at the frame's size.
        """
        stats = stats if stats is not None else SequenceStats()
        n_frames = sequence.n_frames
        if n_frames < WINDOW:
            raise StsegInputError(
                f"sequence {sequence.name!r}: {n_frames} flow frame(s); at least {WINDOW} are needed"
            )
        refining = self.refinement(sequence) == "guided"
        if refining:
            sequence.check_frames()
        stats.n_frames = n_frames
        stats.windows = n_frames - WINDOW + 1
        stages = self.settings
        linker = StreamLinker(
            self.n_labels, stats.windows, stages.link.cut_size, stages.link.mode, stages.link.link_span, stages.link.link_vote,
            stages.link.link_reclaim,
        )
        # Refinement and the carry work on each linked frame's probabilities, so they go
        # through linking.
        carrying = stages.carry.on
        linked_proba = keep_proba or refining or carrying
        carry = TemporalCarry(self.n_labels, stats.windows, stages.link.cut_size, stages.carry) if carrying else None
        waiting: dict[int, LinkedFrame] = {}  # frames the carry holds back (its lookahead)
        own_flows: dict[int, np.ndarray] = {}  # each frame's flow at model size, for the decider
        guides = _Guides(on_flow) if refining else None
        decider = ForegroundDecider(self.n_labels, n_frames, stages.link.cut_size, stages.foreground) if stages.foreground.on else None
        splitter = MotionSplitter(stages.split, move_prior=self.model.info.resize != "plain") if stages.split.on else None
        batches = self._window_batches(
            sequence, stats, on_flow if guides is None else guides.keep, with_images or refining
        )
        last_window: np.ndarray | None = None  # (1, 2, WINDOW, h, w), kept for the vote
        for batch in batches:
            t0 = time.perf_counter()
            if stages.tta.on:
                proba, labels, features = run_flipped(self.model, batch, features=keep_features)
            elif linked_proba or keep_features or splitter is not None:
                out = self.model.run(batch, features=keep_features)
                proba, features = (out if keep_features else (out, None))
                labels = None if splitter is not None else argmax_labels(proba)  # the split's come below
            else:
                # The model's own argmax: no L float maps per pixel leave the runtime.
                proba, features, labels = None, None, self.model.labels(batch)
            if splitter is not None:
                proba = splitter(proba, batch)
                labels = argmax_labels(proba)
            t1 = time.perf_counter()
            stats.model += t1 - t0
            linked = linker.push(labels, proba if linked_proba else None, features)
            stats.link += time.perf_counter() - t1
            # The windows whose flows the frames given out now need, for the foreground and
            # the carry: the batch's, and with the vote also the last of the batch before (its
            # middle frame comes out one window late).
            first = linker.next_window - len(batch)
            flows, flows_first = batch, first
            if linker.vote and (decider is not None or carry is not None):
                if last_window is not None:
                    flows, flows_first = np.concatenate([last_window, batch]), first - 1
                last_window = batch[-1:].copy()
            if decider is not None:
                # Read now: the carry may give a frame out batches later.
                own_flows.update((f.index, _own_flow(flows, flows_first, f.index, stats.windows).copy()) for f in linked)
            if carry is not None:
                t2 = time.perf_counter()
                done = []
                for frame in linked:
                    waiting[frame.index] = frame
                    flow = _flow_into(flows, flows_first, frame.index)
                    pushed, frame.proba = frame.proba, None  # the carry keeps its own blend while the frame waits
                    for index, proba, labels in carry.push(frame.index, pushed, flow):
                        ready = waiting.pop(index)
                        ready.proba, ready.labels = (proba if keep_proba or refining else None), labels
                        done.append(ready)
                linked = done
                stats.carry += time.perf_counter() - t2
            for frame in linked:
                if refining:
                    t2 = time.perf_counter()
                    frame.refined = refine_labels(frame.proba, guides.take(frame.index), stages.refine)
                    if not keep_proba:
                        frame.proba = None
                    stats.refine += time.perf_counter() - t2
                if decider is None:
                    yield frame
                    continue
                t2 = time.perf_counter()
                done = decider.push(frame, own_flows.pop(frame.index))
                stats.foreground += time.perf_counter() - t2
                yield from done
        if linker.next_window != stats.windows:
            raise StsegInputError(
                f"sequence {sequence.name!r}: {linker.next_window + WINDOW - 1} flow frames were read, "
                f"{n_frames} expected (was a file or the video truncated while reading?)"
            )

    def run(
        self,
        sequence: SequenceSource,
        sinks: FrameSink | list[FrameSink],
        keep_proba: bool = False,
        keep_features: bool = False,
    ) -> SequenceStats:
        """Segment ``sequence`` into ``sinks``: the one loop every output goes through.

        Each sink is opened, sees every flow as read and every linked frame in order, then is
        closed; when anything fails, every sink opened is aborted instead and the error
        raised (see :mod:`stseg_deploy.output.sinks`). ``keep_proba`` / ``keep_features``: frames
        carry renamed probabilities (L, h, w) / features (C, h, w). Returns the timings.
        """
        sinks = [sinks] if isinstance(sinks, FrameSink) else list(sinks)
        stats = SequenceStats()
        started = time.perf_counter()

        def on_flow(index: int, flow: np.ndarray, image: np.ndarray | None) -> None:
            for sink in sinks:
                sink.flow(index, flow, image)

        frames = self.linked_frames(
            sequence, keep_proba=keep_proba, keep_features=keep_features, stats=stats,
            on_flow=on_flow,
            # Sinks see the frames a run reads anyway: a video's (decoded for its flow), or
            # frame files read to refine; frame files are not read for a sink alone.
            with_images=sequence.video is not None and any(sink.wants_images for sink in sinks),
        )
        # drive() closes the generator on any error too: that stops and joins the read-ahead
        # thread, which must not be left inside OpenCV when the interpreter exits (exit 134).
        drive(sinks, sequence, stats, frames)
        stats.total = time.perf_counter() - started
        return stats

    def segment(self, sequence: SequenceSource) -> np.ndarray:
        """All label maps of a sequence: (F, h, w) uint8 at model size, the linked labels
        (holds them in memory; use :func:`stseg_deploy.output.folder.segment_to_folder` or a sink of
        your own for long videos). No refinement or foreground decision is run: neither would
        change these labels;
        :meth:`run` with a :class:`~stseg_deploy.output.sinks.MemorySink` gives the refined maps."""
        plain = copy.copy(self)
        plain.settings = replace(
            self.settings, refine=replace(self.settings.refine, mode="none"), foreground=replace(self.settings.foreground, mode="none")
        )
        sink = MemorySink()
        plain.run(sequence, sink)
        return sink.labels


def _own_flow(batch: np.ndarray, first: int, index: int, n_windows: int) -> np.ndarray:
    """The flow (2, h, w) at model size of frame ``index`` (frame → frame + 1), read from
    ``batch`` (b, 2, WINDOW, h, w), whose window k starts at flow ``first + k``: the window
    that completes the frame (its middle, or the first or last window's end) is in it."""
    window = min(max(index - 1, 0), n_windows - 1)
    if not 0 <= window - first < len(batch):  # negative indices would read another frame's flow
        raise ValueError(f"frame {index}'s window {window} is not in the batch of windows {first}..{first + len(batch) - 1}")
    return batch[window - first, :, index - window]


def _flow_into(batch: np.ndarray, first: int, index: int) -> np.ndarray | None:
    """The flow (2, h, w) at model size from frame ``index - 1`` to frame ``index``, read
    from ``batch`` (b, 2, WINDOW, h, w), whose window k starts at flow ``first + k`` (None for
    frame 0). The frames a batch gives out need only flows the batch holds (with the vote, the
    batch and the window before it)."""
    if index == 0:
        return None
    k = min(index - 1 - first, len(batch) - 1)
    return batch[k, :, index - 1 - first - k]


class _Guides:
    """The frames read for refinement, kept by flow index from the read-ahead thread until
    their linked frame is refined (a batch and a window's worth at most, plus the carry's
    lookahead and, with the vote, one more window)."""

    def __init__(self, on_flow: Callable[[int, np.ndarray, np.ndarray | None], None] | None) -> None:
        self._on_flow = on_flow
        self._images: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()

    def keep(self, index: int, flow: np.ndarray, image: np.ndarray | None) -> None:
        if image is None:
            raise StsegInputError(f"flow frame {index}: no frame was read to guide the refinement")
        with self._lock:
            self._images[index] = image
        if self._on_flow is not None:
            self._on_flow(index, flow, image)

    def take(self, index: int) -> np.ndarray:
        with self._lock:
            return self._images.pop(index)
