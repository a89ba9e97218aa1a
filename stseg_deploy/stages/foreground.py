"""Which segments are the moving objects, without ground truth (``--foreground motion``).

The network and the motion split give each frame up to L segments, and nothing in them says
which are the background: the camera's motion, the static scene, water, sky. This stage
decides, from the method's own material, the flow:

1. **The frame's dominant motion.** One quadratic motion (the split's 12-term model, on
   coordinates in [-1, 1]) is fitted to the whole frame's flow at model size by iteratively
   reweighted least squares, L1 then Tukey's biweight with its scale from the residuals'
   median absolute value (classical dominant-motion estimation). Its residual ``r`` (|u − û| + |v − v̂|,
   pixels) is small wherever the background is, whatever the camera does.
2. **Each segment's motion contrast**: the median of ``r`` over the segment's pixels, in units
   of the frame's residual scale ``max(1.4826 · median(r), floor)``. Measured against the
   frame's own scale, so that water or foliage, which no parametric motion explains, does
   not make every segment an object; the floor (the motion split's: 0.1 × the frame's mean
   flow magnitude, at least 0.1 pixel) keeps a still frame's noise from doing so.
3. **Each segment's share of the frame's border** (its pixels on the outermost rows and
   columns over all border pixels): the background surrounds the objects.
4. **Per linking chunk** (labels are consistent only inside one): both are averaged over the
   chunk's frames where the segment is present, and a segment is an object when its contrast
   is above ``min_contrast``, at least ``share`` × the chunk's highest contrast among
   segments off the border, and its border share is below ``max_border``. The decision holds
   for every frame of the chunk: a part of an object that pauses for a frame stays one.

The table that chose these settings (the development split at real 480p, the 21 training
sequences, the multi-object proxies) is in docs/foreground.md.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from stseg_kernels import MotionGrid, frame_chunks

from .base import StageSettings, option
from .linker import LinkedFrame
from .motionsplit import fit_motion

# The residual's floor, as the motion split's defaults (SplitSettings.min_gain and
# min_residual): a share of the frame's mean flow magnitude, and pixels at model size.
FLOOR_GAIN = 0.1
FLOOR_PIXELS = 0.1
# The fit: L1 first (motionsplit.fit_motion, nine fits: least squares, then eight reweighted),
# then Tukey's biweight (constant 4.685: 95% efficiency under Gaussian noise, scale from the
# median absolute residual). Started from least squares, the biweight settled between two
# motions once a second one held a quarter of the frame (its cutoff then spans both); the L1
# fits first bring it to the majority's motion.
L1_FITS = 9
TUKEY_ITERATIONS = 6
TUKEY_C = 4.685
MAD_TO_SIGMA = 1.4826


@dataclass(frozen=True, kw_only=True)
class ForegroundSettings(StageSettings):
    """Settings of the foreground decision (see the module docstring).

    ``mode``: "motion" (decided per linking chunk from the flow) or "none" (not decided);
    ``min_contrast``: a segment's median residual under the frame's dominant motion, in units
    of the frame's residual scale, above which it may be an object; ``share``: and at least
    this share of the chunk's highest contrast; ``max_border``: a segment holding this share
    of the frame's border or more is background.
    """

    MODE_KEY = "foreground"
    PARAMS_KEY = "foreground_settings"
    MODES = ("none", "motion")

    mode: str = option("foreground", "motion")
    min_contrast: float = option(None, 1.0)
    share: float = option(None, 0.35)
    max_border: float = option(None, 0.1)

    def check(self) -> None:
        if not self.min_contrast >= 0:
            raise ValueError(f"foreground min_contrast must be >= 0, got {self.min_contrast}")
        if not 0 <= self.share <= 1:
            raise ValueError(f"foreground share must be in [0, 1], got {self.share}")
        if not 0 < self.max_border <= 1:
            raise ValueError(f"foreground max_border must be in (0, 1], got {self.max_border}")



def dominant_residual(flow: np.ndarray) -> np.ndarray:
    """The residual of the frame's dominant motion: flow (2, h, w) float32, pixels → (h, w)
    float64, |u − û| + |v − v̂| under one quadratic motion fitted robustly to every pixel."""
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow must have shape (2, h, w), got {flow.shape}")
    h, w = flow.shape[1:]
    grid = MotionGrid(flow[:, None])
    pixels = np.arange(h * w)
    _, residual = fit_motion(grid, pixels, iterations=L1_FITS)
    for _ in range(TUKEY_ITERATIONS):
        cutoff = TUKEY_C * max(MAD_TO_SIGMA * float(np.median(residual)), 1e-6)
        # A small floor keeps the system solvable when every residual is an outlier.
        weights = np.where(residual < cutoff, (1 - (residual / cutoff) ** 2) ** 2, 0.0) + 1e-6
        _, residual = fit_motion(grid, pixels, iterations=1, weights=weights)
    return residual.reshape(h, w)


def segment_evidence(labels: np.ndarray, flow: np.ndarray, n_labels: int) -> tuple[np.ndarray, np.ndarray]:
    """Each segment's motion contrast and border share in one frame.

    labels: (h, w) uint8 in [0, n_labels); flow: (2, h, w) float32, pixels, the frame's own
    flow on the same grid. Returns contrast (L,) and border (L,) float64, NaN for labels
    absent from the frame.
    """
    if labels.shape != flow.shape[1:]:
        raise ValueError(f"labels {labels.shape} and flow {flow.shape[1:]} must be on one grid")
    residual = dominant_residual(flow)
    floor = max(FLOOR_GAIN * float(np.abs(flow).sum(axis=0).mean()), FLOOR_PIXELS)
    scale = max(MAD_TO_SIGMA * float(np.median(residual)), floor)
    flat = labels.ravel().astype(np.int64)
    order = np.argsort(flat, kind="stable")
    bounds = np.searchsorted(flat[order], np.arange(n_labels + 1))
    contrast = np.full(n_labels, np.nan)
    values = residual.ravel()[order]
    for label in range(n_labels):
        if bounds[label + 1] > bounds[label]:
            contrast[label] = float(np.median(values[bounds[label] : bounds[label + 1]])) / scale
    edge = np.concatenate([labels[0], labels[-1], labels[1:-1, 0], labels[1:-1, -1]]).astype(np.int64)
    border = np.bincount(edge, minlength=n_labels)[:n_labels] / edge.size
    border = np.where(np.isnan(contrast), np.nan, border)
    return contrast, border


def choose_objects(contrast: np.ndarray, border: np.ndarray, settings: ForegroundSettings) -> np.ndarray:
    """(L,) bool, the segments that are objects, from their contrast and border share (L,),
    NaN where absent (never an object)."""
    present = ~np.isnan(contrast)
    candidate = present & (np.nan_to_num(border, nan=1.0) < settings.max_border)
    candidate &= np.nan_to_num(contrast, nan=0.0) > settings.min_contrast
    if not candidate.any():
        return candidate
    highest = float(np.max(contrast[candidate]))
    return candidate & (np.nan_to_num(contrast, nan=0.0) >= settings.share * highest)


def decide_block(contrast: np.ndarray, border: np.ndarray, settings: ForegroundSettings) -> np.ndarray:
    """One decision for a block of frames: contrast and border (T, L) per frame
    (:func:`segment_evidence`, NaN where a label is absent), averaged over the frames where
    each label is present, then :func:`choose_objects`. Returns (L,) bool."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a label absent from the whole block: NaN, as meant
        return choose_objects(np.nanmean(contrast, axis=0), np.nanmean(border, axis=0), settings)


# The most frames held for one decision: a linking chunk longer than this (a large --cut-size,
# or none) is decided in consecutive blocks of it, so memory stays bounded on long videos
# (labels are consistent inside the chunk, so any block of it may be decided on its own).
# The default chunks (10 windows: 10 to 12 frames) are decided whole.
MAX_HELD_FRAMES = 32


def decision_blocks(n_frames: int, cut_size: int | None) -> np.ndarray:
    """(n_frames,) int64, the block each frame is decided in: the linking chunks
    (:func:`stseg_kernels.frame_chunks`), each cut into consecutive blocks of at most
    :data:`MAX_HELD_FRAMES` frames; non-decreasing from 0."""
    chunks = frame_chunks(n_frames, cut_size)
    blocks = np.zeros(n_frames, dtype=np.int64)
    block, start = 0, 0
    for t in range(1, n_frames):
        if chunks[t] != chunks[t - 1] or t - start == MAX_HELD_FRAMES:
            block, start = block + 1, t
        blocks[t] = block
    return blocks


class ForegroundDecider:
    """Decides one sequence's objects chunk by chunk, its linked frames pushed in order.

    Args:
        n_labels: L, the segments per frame (the model's plus the split's spares).
        n_frames: the sequence's frames.
        cut_size: the linker's chunk size in windows (None: one chunk, the whole sequence).
        settings: :class:`ForegroundSettings`.

    :meth:`push` holds a chunk's frames (at most :data:`MAX_HELD_FRAMES`: a longer chunk is
    decided in blocks, :func:`decision_blocks`) until its last one arrives, then returns them
    with ``objects`` set: (L,) bool, the segments that are moving objects.
    """

    def __init__(self, n_labels: int, n_frames: int, cut_size: int | None, settings: ForegroundSettings) -> None:
        self.n_labels = n_labels
        self.settings = settings
        self._chunks = decision_blocks(n_frames, cut_size)
        self._held: list[LinkedFrame] = []
        self._evidence: list[tuple[np.ndarray, np.ndarray]] = []

    def push(self, frame: LinkedFrame, flow: np.ndarray) -> list[LinkedFrame]:
        """frame: the next linked frame (labels (h, w) at model size); flow: its own flow
        (2, h, w), frame t → t + 1, at model size. Returns the frames of a completed chunk."""
        self._held.append(frame)
        self._evidence.append(segment_evidence(frame.labels, flow, self.n_labels))
        index = frame.index
        if index + 1 < len(self._chunks) and self._chunks[index + 1] == self._chunks[index]:
            return []
        objects = decide_block(
            np.stack([c for c, _ in self._evidence]), np.stack([b for _, b in self._evidence]), self.settings
        )
        held, self._held, self._evidence = self._held, [], []
        for done in held:
            done.objects = objects.copy()
        return held
