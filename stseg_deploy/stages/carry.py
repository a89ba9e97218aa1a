"""Temporal carry: each linked frame's segment probabilities are carried to the next frame
along the flow and blended with the next frame's own, so that a segment found where an
object moves holds for a while where it stops (or moves like the background), which flow
alone cannot show.

For linked frames t = 0, 1, … at model size, with p_t the linked probabilities (L, h, w)
and F_{t-1} the flow from frame t-1 to t (model pixels)::

    q_0 = p_0
    q_t = (1 - g·c·weight) · p_t + g·c·weight · push(q_{t-1}, F_{t-1})

``push`` moves each pixel of q_{t-1} along its own flow, shared bilinearly among the pixels
it lands between, and c (in [0, 1]) is how much landed on each pixel: where the motion
uncovers something, nothing is carried. g is 1 only on the pixels of a carried segment that
the frame has mostly dropped (it kept less than half its area) which the frame gives to its
largest segment, else 0: a segment the network keeps moves as the network says, without lag,
and only a vanishing one is held, over what the frame takes for background (an object that
stops moves like the background, so the network gives it the background's segment, not
another object's). A segment the network drops for k
frames keeps weight^k of its probability, so it outvotes the segment that took the pixels
while weight^k > 1/2: weight 0.8 holds it 3 frames, 0.9 six. The labels become the argmax
of q_t.

Linking renames labels within chunks of ``--cut-size`` windows only: at a chunk's first
frame the labels start afresh, so the carried segments are first matched one to one to the
new chunk's (the assignment that maximises the pixels on which the warped argmax and the
new labels agree).

Mode "both" adds a backward pass over the forward blends q: frame t waits for frames
t+1 … t+K (K = ``lookahead``) and gets::

    b_{t+K} = q_{t+K}
    b_s = (1 - g·c·weight) · q_s + g·c·weight · pull(b_{s+1}, F_s),   s = t+K-1 … t

``pull`` reads frame s+1 at x + F_s(x), where frame s's pixel x goes: here the flow is the
one of the pixels being written, so reading along it is right. The forward pass cannot see
an object that is still when a run begins; the backward one holds it from the frames where it
moves next. Output then lags the input by K frames, and K frames wait in memory.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import cv2
import numpy as np

from stseg_kernels import argmax_labels, assign_max, frame_chunks

from .base import StageSettings, option

# Where pushed pixels collide, each counts exp(FRONT_PER_PX · d), d (pixels, capped at
# MAX_FRONT_PX) how far its motion is from the frame's median: 3 px apart outweighs the
# background 400 to 1.
FRONT_PER_PX = 2.0
MAX_FRONT_PX = 50.0

# A carried segment is held where the frame kept less than this share of its area; segments
# smaller than MIN_HOLD_AREA of the frame are never held (a few stray pixels come and go).
HOLD_SHARE = 0.5
MIN_HOLD_AREA = 0.002

# Each frame waits for this many at most (the backward pass costs lookahead pulls a frame, and
# holds that many frames): past 6 the pausing videos gain nothing (docs/inference.md).
MAX_LOOKAHEAD = 32


@dataclass(frozen=True, kw_only=True)
class CarrySettings(StageSettings):
    """``mode``: "forward" (each linked frame's probabilities are carried to the next along
    the flow and blended with its own), "both" (then also back from up to ``lookahead``
    frames ahead) or "none"; ``weight``: the share of the carried probabilities in each
    frame's blend, in [0, 1); ``lookahead``: frames the backward pass reads ahead (mode
    "both" only; recorded only there)."""

    MODE_KEY = "carry"
    PARAMS_KEY = "temporal_carry"
    MODES = ("none", "forward", "both")

    mode: str = option("carry", "none")
    # On the pausing videos (docs/inference.md): J_objects 0.611 at 0.6, 0.624 at 0.8 (what no
    # carry gives), 0.657 at 0.9; objects there pause 3 to 6 frames, which 0.9 holds.
    weight: float = option("carry_weight", 0.9)
    # Pausing videos, replayed offline: J_objects 0.663 at 1, 0.672 at 3, 0.672 at 4, 0.673 at
    # 6, 0.669 without a limit (forward alone 0.654); 4 waits for less.
    lookahead: int = option("carry_lookahead", 4)

    def check(self) -> None:
        if not 0.0 <= self.weight < 1.0:
            raise ValueError(f"carry weight must be in [0, 1), got {self.weight}")
        if isinstance(self.lookahead, bool) or not isinstance(self.lookahead, (int, np.integer)) or not 1 <= self.lookahead <= MAX_LOOKAHEAD:
            raise ValueError(f"carry lookahead must be an integer in [1, {MAX_LOOKAHEAD}], got {self.lookahead!r}")
        if self.mode != "both" and self.lookahead != type(self)._default_lookahead():
            raise ValueError(f"carry lookahead applies to carry 'both' only (carry is {self.mode!r})")

    @classmethod
    def _default_lookahead(cls) -> int:
        return cls.option_defaults()["carry_lookahead"]

    def params(self) -> dict[str, object]:
        params = super().params()
        if self.mode != "both":
            del params["lookahead"]
        return params


def splat_forward(proba: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``proba`` (L, h, w) float32 on frame t-1's grid, pushed to frame t along ``flow``
    (2, h, w) float32, pixels, the motion from t-1 to t: each pixel y lands at y + flow(y)
    and is shared bilinearly among the four pixels around it.

    Where several pixels land on one, the one whose motion differs most from the frame's
    median motion wins (weights ``exp(FRONT_PER_PX · d)``, d the L1 difference in pixels):
    what moves against the scene is usually in front of it, so an object arriving over the
    background covers it rather than blending with it.

    Returns (carried (L, h, w) float32, coverage (h, w) float32 in [0, 1]): the landed
    probabilities normalised per pixel, and how much landed there (1: at least one whole
    pixel's worth). Where nothing landed (disoccluded pixels, or the frame's edge the
    motion uncovered) coverage is 0 and carried is 0.

    Pushing, not pulling: read at frame t's pixel, the flow of frame t-1 is the motion of
    whatever was there before, so pulling samples the background ahead of a moving object
    and the object behind it; each pixel's own flow says where it goes.
    """
    n_labels, h, w = proba.shape
    rows, cols = np.mgrid[0:h, 0:w]
    to_r = rows + flow[1].astype(np.float64)
    to_c = cols + flow[0].astype(np.float64)
    r0, c0 = np.floor(to_r).astype(np.int64), np.floor(to_c).astype(np.int64)
    fr, fc = to_r - r0, to_c - c0
    values = proba.reshape(n_labels, -1).astype(np.float64)
    apart = np.abs(flow - np.median(flow.reshape(2, -1), axis=1)[:, None, None]).sum(axis=0)
    front = np.exp(FRONT_PER_PX * np.minimum(apart, MAX_FRONT_PX)).ravel()
    landed = np.zeros((n_labels, h * w))
    weight = np.zeros(h * w)  # pixels' worth landed, for the coverage
    ranked = np.zeros(h * w)  # the same with the front weights, to normalise by
    for dr, dc, share in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        r, c = r0 + dr, c0 + dc
        inside = ((r >= 0) & (r < h) & (c >= 0) & (c < w)).ravel()
        target = (r * w + c).ravel()[inside]
        share = share.ravel()[inside]
        weight += np.bincount(target, share, minlength=h * w)
        share = share * front[inside]
        ranked += np.bincount(target, share, minlength=h * w)
        for label in range(n_labels):
            landed[label] += np.bincount(target, share * values[label, inside], minlength=h * w)
    carried = np.divide(landed, ranked, out=np.zeros_like(landed), where=weight > 1e-6)
    coverage = np.minimum(weight, 1.0)
    return carried.reshape(n_labels, h, w).astype(np.float32), coverage.reshape(h, w).astype(np.float32)


def pull_back(proba: np.ndarray, flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``proba`` (L, h, w) float32 of frame t+1 brought to frame t: each pixel x of frame t
    reads it bilinearly at x + ``flow``(x), ``flow`` (2, h, w) float32 pixels the motion
    from t to t+1. Returns (pulled (L, h, w) float32, coverage (h, w) float32 in [0, 1]): 0
    where x + flow(x) leaves the frame (what was there is not known), pulled 0 there too."""
    h, w = flow.shape[1:]
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x, map_y = cols + flow[0], rows + flow[1]
    pulled = np.stack([
        cv2.remap(plane, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
        for plane in proba.astype(np.float32, copy=False)
    ])
    inside = cv2.remap(np.ones((h, w), np.float32), map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    # Normalised where part of the sample lies outside, so a border pixel's probabilities still sum to 1.
    pulled = np.divide(pulled, inside, out=np.zeros_like(pulled), where=inside > 1e-6)
    return pulled, inside


def match_labels(carried: np.ndarray, labels: np.ndarray, n_labels: int) -> np.ndarray:
    """The one-to-one renaming of carried labels onto a new chunk's: (L,) int64, carried
    label k → ``mapping[k]``, maximising the pixels where ``carried`` (h, w) renamed equals
    ``labels`` (h, w)."""
    counts = np.zeros((n_labels, n_labels), dtype=np.float64)
    np.add.at(counts, (carried.ravel().astype(np.int64), labels.ravel().astype(np.int64)), 1.0)
    return assign_max(counts)


def held_pixels(carried: np.ndarray, coverage: np.ndarray, proba: np.ndarray) -> np.ndarray:
    """(h, w) float32, 1 where the carry holds: pixels whose carried segment (the argmax of
    ``carried`` (L, h, w), where ``coverage`` > 1/2) has lost more than ``1 - HOLD_SHARE`` of
    its area in ``proba`` (L, h, w), the frame's own probabilities, and which ``proba`` gives
    to its largest segment; 0 elsewhere.

    A segment that keeps its area changes only where the network says so, without lag; one
    that the frame drops (its object stopped, so its flow is the background's) is held where
    the background's segment took it. Where another segment took it (objects that merge, a
    split's spare segment that goes), nothing is held: on the videos without pauses that
    costs J_objects 0.012 with ``--carry both`` (docs/inference.md).
    """
    n_labels = proba.shape[0]
    covered = coverage > 0.5
    before = np.argmax(carried, axis=0)
    own = np.argmax(proba, axis=0)
    area_before = np.bincount(before[covered], minlength=n_labels)
    area_now = np.bincount(own.ravel(), minlength=n_labels)
    lost = (area_now < HOLD_SHARE * area_before) & (area_before >= MIN_HOLD_AREA * covered.size)
    return (lost[before] & covered & (own == np.argmax(area_now))).astype(np.float32)


def _renamed(carried: np.ndarray, coverage: np.ndarray, proba: np.ndarray, n_labels: int) -> np.ndarray:
    """``carried`` (L, h, w) renamed to the labels of ``proba`` (L, h, w), a frame of another
    linking chunk: the one-to-one matching of :func:`match_labels` on covered pixels."""
    covered = coverage > 0.5
    mapping = match_labels(np.argmax(carried, axis=0)[covered], np.argmax(proba, axis=0)[covered], n_labels)
    renamed = np.empty_like(carried)
    renamed[mapping] = carried
    return renamed


def _blend(own: np.ndarray, carried: np.ndarray, coverage: np.ndarray, weight: float) -> np.ndarray:
    """``own`` blended with ``carried`` where :func:`held_pixels` holds (both (L, h, w))."""
    share = np.float32(weight) * coverage * held_pixels(carried, coverage, own)
    return (np.float32(1) - share) * own + share * carried


class TemporalCarry:
    """Carries probabilities through one sequence's linked frames, in order.

    Args:
        n_labels: L, the labels of the linked frames.
        n_windows: the sequence's windows N (frames N + 2), to place chunk boundaries and
            to know the last frame, where mode "both" gives out the frames still waiting.
        cut_size: the linker's chunk size in windows (None: one chunk).
        settings: :class:`CarrySettings`.
    """

    def __init__(self, n_labels: int, n_windows: int, cut_size: int | None, settings: CarrySettings) -> None:
        self.n_labels = n_labels
        self.settings = settings
        self.n_frames = n_windows + 2
        self._chunks = frame_chunks(self.n_frames, cut_size)  # the linker's chunks, by frame
        self._lookahead = settings.lookahead if settings.mode == "both" else 0
        self._previous: np.ndarray | None = None
        self._chunk = -1
        self._index = -1
        # Mode "both": (index, forward blend, flow into the frame) of the frames not given out yet.
        self._waiting: deque[tuple[int, np.ndarray, np.ndarray | None]] = deque()

    def chunk(self, index: int) -> int:
        """The linking chunk of frame ``index`` (:func:`stseg_kernels.frame_chunks`)."""
        return int(self._chunks[index])

    def push(self, index: int, proba: np.ndarray, flow: np.ndarray | None) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """Frame ``index``'s linked ``proba`` (L, h, w) float32 and ``flow`` (2, h, w), the
        motion from frame index-1 to this one (None for the first frame) → the frames done,
        in order, as (index, carried proba (L, h, w) float32, labels (h, w) uint8, its argmax).

        Mode "forward" gives this frame back at once; mode "both" gives frame
        ``index - lookahead`` (nothing before that), and all frames left at the sequence's
        last frame. Frames must come in order."""
        if index != self._index + 1 or index >= self.n_frames:
            raise ValueError(f"frames must come in order: got {index} after {self._index} (of {self.n_frames})")
        self._index = index
        blended = self._forward(index, proba, flow)
        if not self._lookahead:
            return [(index, blended, argmax_labels(blended[None])[0])]
        self._waiting.append((index, blended, None if flow is None else flow.copy()))  # not a view of the batch
        done = []
        while len(self._waiting) > self._lookahead or (self._waiting and index == self.n_frames - 1):
            first, held = self._backward()
            done.append((first, held, argmax_labels(held[None])[0]))
            self._waiting.popleft()
        return done

    def _forward(self, index: int, proba: np.ndarray, flow: np.ndarray | None) -> np.ndarray:
        chunk = self.chunk(index)
        if self._previous is None or flow is None:
            blended = proba.astype(np.float32, copy=True)
        else:
            carried, coverage = splat_forward(self._previous, flow)
            if chunk != self._chunk:
                carried = _renamed(carried, coverage, proba, self.n_labels)
            blended = _blend(proba, carried, coverage, self.settings.weight)
        self._chunk = chunk
        self._previous = blended
        return blended

    def _backward(self) -> tuple[int, np.ndarray]:
        """The oldest waiting frame, with the newest one's blend pulled back to it step by step."""
        waiting = list(self._waiting)
        held = waiting[-1][1]
        for (index, own, _), (_, _, flow) in zip(reversed(waiting[:-1]), reversed(waiting[1:])):
            if flow is None:  # no motion known into the next frame: nothing to pull back
                held = own
                continue
            carried, coverage = pull_back(held, flow)
            if self.chunk(index) != self.chunk(index + 1):
                carried = _renamed(carried, coverage, own, self.n_labels)
            held = _blend(own, carried, coverage, self.settings.weight)
        return waiting[0][0], held
