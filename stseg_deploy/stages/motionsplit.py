"""Splitting a segment that holds two motions (``--split motion``).

The network gives each window L segments, and on videos with several moving objects it
often gives two objects one segment, or an object and a piece of background
(docs/model-merging.md): the training objective would prefer them apart, but the network's
fixed output channels do not separate them. This stage does, per window, with the method's
own criterion: each segment's flow is fitted with a parametric motion (robustly, L1), and
when two motions fitted to two parts of it explain its flow much better than one, the
second part moves to a segment of its own, from ``extra`` spare segments. Linking then
carries the new segments from window to window like the others.

The module reads top to bottom as the split's steps (docs/model-merging.md, "The motion
split", describes and measures them):

1. Settings: :class:`SplitSettings`, and the constants, each with the reason for its value.
2-3. The motion model and its fits: :func:`fit_motion`, L1 by reweighted least squares, of
   some pixels of the window (compiled: :class:`stseg_kernels.MotionGrid`). The model is
   quadratic in space (6 terms per component), on coordinates in [-1, 1], and each frame of
   the window has its own: a camera's motion, a moving object's, as training fits them,
   free to change from one frame to the next (objects turn back, cameras jerk; a model
   smooth in time cut an object's frames apart where its motion turned).
4. Cutting a segment: its connected regions, each cut along the previous window's split
   when there is one (:func:`seed_from_prior`, :func:`_seeded_parts`), and a region one
   motion does not explain cut in two where a second motion fits better
   (:func:`_split_region`). Both cuts refit each part's motion and give each pixel to the
   motion that fits it best (:func:`_refit_and_reassign`).
5. Joining groups: parts that one motion explains after all are joined again (:func:`_join`).
6. Moving parts: the largest group keeps the segment, each other group's probability moves
   to a spare segment (:func:`_move`).
7. The per-window split: :func:`split_window`. Segments are examined in label order, and
   the spares go to the groups found first; a window with more groups than spares keeps
   the rest in their segments.
8. The splitter across windows: :class:`MotionSplitter`. Windows are split in order, each
   with the previous one's split as its prior: where a segment covers what the previous
   window held apart, those parts are proposed again, their boundary moved to where their
   motions now meet, and kept apart only if their motions still differ. Decided afresh in
   each window, a split came and went with the network's segments, and linking turned that
   into objects swapping labels (on the multi-object proxies, per-frame matching scored
   0.10 above matching per chunk).

"The proxies" below are docs/model-merging.md's three multi-object sets; J_objects on them
is quoted as proxy / second / third, as the doc's tables give it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from stseg_kernels import MotionGrid, argmax_labels

from .base import StageSettings, option

# 1. Settings -----------------------------------------------------------------------------

# The split's algorithm, recorded with its settings (SplitSettings.form): outputs made by
# another form have other labels for the same settings, so --skip-done redoes them and
# stseg-eval does not pool them. 1 (outputs that record no form): each window on its own,
# one motion smooth in time; 2: the previous window's split as prior, a motion per frame.
SPLIT_FORM = 2


@dataclass(frozen=True, kw_only=True)
class SplitSettings(StageSettings):
    """``mode``: "motion" (a segment whose flow two motions explain much better than one is
    split, per window, into spare segments) or "none". ``extra``: spare segments a window
    may add (the output has L + extra); ``min_area``: smallest part, as a share of the
    window's pixels; ``min_gain`` and ``min_residual``: the residual that tells two motions
    apart, the larger of ``min_gain`` × the window's mean flow magnitude (|u| + |v|) and
    ``min_residual`` pixels (at model size, so that the noise of a nearly still window
    splits nothing). A region whose own motion leaves a mean L1 residual above it is cut;
    two groups are joined when one's motion, carried over to the other, leaves a median
    residual below it. ``form``: the algorithm (:data:`SPLIT_FORM`; only this one runs,
    older ones are read from outputs' records)."""

    MODE_KEY = "split"
    PARAMS_KEY = "motion_split"
    MODES = ("none", "motion")

    mode: str = option("motion_split", "motion")
    extra: int = option("motion_split_extra", 4)
    min_area: float = option(None, 0.01)
    min_gain: float = option("motion_split_gain", 0.1)
    min_residual: float = option(None, 0.1)
    form: int = option(None, SPLIT_FORM)

    def check(self) -> None:
        if not isinstance(self.extra, int) or not 0 <= self.extra <= 32:
            raise ValueError(f"split extra must be a whole number in [0, 32], got {self.extra!r}")
        if not 0 < self.min_area < 0.5:
            raise ValueError(f"split min_area must be in (0, 0.5), got {self.min_area!r}")
        if not self.min_gain > 0:
            raise ValueError(f"split min_gain must be > 0, got {self.min_gain!r}")
        if not self.min_residual >= 0:
            raise ValueError(f"split min_residual must be >= 0 pixels, got {self.min_residual!r}")
        if self.form not in (1, SPLIT_FORM):
            raise ValueError(f"split form must be 1 or {SPLIT_FORM}, got {self.form!r}")

    @classmethod
    def from_record(cls, settings: dict[str, Any]) -> SplitSettings:
        # Outputs of the first form recorded no form; those from before the residual floor
        # existed recorded no min_residual, and ran without one.
        params = settings.get(cls.PARAMS_KEY)
        if settings.get(cls.MODE_KEY) == "motion" and isinstance(params, dict):
            settings = {**settings, cls.PARAMS_KEY: {"form": 1, "min_residual": 0.0, **params}}
        return super().from_record(settings)


# The motion model. Per frame and flow component: 1, i, j, i·j, i², j², the quadratic motion
# training fits, so the split tells motions apart by the model the network learned to group
# by (docs/model-merging.md, "Where the segments go": QuadraticFull).
MOTION_TERMS = 6
# The patches that find a region's main motion fit its first 3 terms per frame (1, i, j, an
# affine motion): a patch 9 pixels wide spans too little of [-1, 1] to pin down curvature.
AFFINE_TERMS = 3
# A motion's shape terms (all but the constant, per frame) are damped by SHAPE_RIDGE x the
# frame's total fit weight: over a whole frame (coordinates spread over [-1, 1]) this is
# nothing, but a part a few pixels wide, fitted freely, matched the blur of its edges with a
# steep slope and, carried over to the rest of its own object, missed it by pixels: one
# object was cut in two. 1e-3: J_objects 0.874 / 0.799 / 0.795 against 0.847 / 0.794 /
# 0.775 undamped; 3e-3: 0.878 / 0.808 / 0.788 (worse on the third set); 1e-2 cost 0.01-0.02
# binary J (docs/model-merging.md, "The split, second round").
SHAPE_RIDGE = 1e-3
# Added to every fit's normal equations so that a part whose pixels in a frame do not span
# that frame's terms (one row, one column, a few pixels) still has a solution; far below the
# weight of a single pixel (1 in least squares, 1 / residual when reweighted), so a fit with
# enough pixels is unchanged.
SOLVE_JITTER = 1e-6
# The L1 fit reweights each pixel by 1 / its residual; a pixel fitted (nearly) exactly would
# take all the weight, so residuals count as at least 1e-3 px, far below what flow at model
# size resolves.
L1_RESIDUAL_FLOOR = 1e-3
# The L1 fit: least squares, then 3 reweighted fits. It runs for every region, part and group
# of every window (8,670 of them on the 441 frames of the dev split), so each fit counts;
# no other count is measured (docs/model-merging.md, "The motion split"). (foreground.py, one
# fit per frame, takes 9.)
L1_ITERATIONS = 4
# Refits inside a cut, least squares and one reweighting: they start from a part that
# already holds mostly one motion (a main motion's inliers, a part after reassignment), so
# few pixels need the reweighting, and these refits are the split's innermost loop.
REFIT_ITERATIONS = 2

# Where a segment is cut.
# Connected regions are 8-connected: an object's thin or diagonal parts (a resized edge, a
# limb) stay in its region instead of falling apart into pieces under the smallest part.
REGION_CONNECTIVITY = 8
# The smallest part is SplitSettings.min_area of the window's pixels, and never under 8
# pixels: on a window under 800 pixels min_area alone would let a few pixels, which a
# resized flow blends at an edge, count as a motion of their own.
MIN_PART_FLOOR = 8
# Regions a segment is cut into at most, per window: bounds the time on a segment that noise
# shatters. A segment uses at most 1 + extra groups (5 with the default 4 spares); 8 leaves
# room for the parts that are joined again later.
MAX_GROUPS = 8
# The main motion of a region, from patches (_main_motion_outliers): 16 patches of 9x9 model
# pixels (radius 4), inliers within 3x the join residual (docs/model-merging.md, "The split,
# second round": J_objects 0.847 / 0.794 / 0.775 with the patches, from 0.807 / 0.739 /
# 0.727 with one fit of the whole region; 32 patches: 0.832 / 0.794 / 0.781; inliers within
# 2x: 0.781 / 0.751 on the second and third sets, 5x: 0.804 / 0.774 / 0.781).
PATCHES = 16
PATCH_RADIUS = 4
INLIER_FACTOR = 3.0
# A cut's parts are refitted and their pixels reassigned twice (docs/model-merging.md, steps
# 1 and 2): once to move the seam from where it started (the previous window's seam, the
# main motion's outliers) to where the motions meet, once more with the motions fitted on
# the corrected parts. No other count is measured there.
REASSIGN_ROUNDS = 2
# After each reassignment a pixel takes the part most of the region's pixels in its 5x5
# neighbourhood (per frame) belong to (docs/model-merging.md, "a 5x5 majority"): removes the
# single pixels that flow noise gives to the other motion, keeps parts a few pixels wide.
MAJORITY_WINDOW = 5

# Where two groups are told apart.
# A frame's fitted motion is trusted (carried over to another group) only with this many of
# the group's pixels in the frame: with barely one per term, it extrapolates by pixels.
MIN_FRAME_PIXELS = 3 * MOTION_TERMS
# The window's mean |u| + |v| (px), which min_gain scales, is taken as at least this much
# more, so that on a window with no motion at all the threshold stays positive when
# min_residual is 0: round-off residuals do not count as a second motion.
SCALE_EPSILON = 1e-6

# Where a part moves.
# A moved part's spare stays this far ahead of every other segment on its pixels: the
# test-time flip leaves 0.5 / 0.5 ties, and one ulp ahead (the first try) was undone by the
# guided refinement's filter; 0.001 keeps the spare the argmax after it, with the same
# scores (J_objects 0.868 / 0.809 / 0.829, docs/model-merging.md, "The split, second round").
TIE_MARGIN = 1e-3


# 2-3. The motion model and its fits -------------------------------------------------------


def fit_motion(
    grid: MotionGrid, pixels: np.ndarray, iterations: int = L1_ITERATIONS, terms: int = MOTION_TERMS, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The L1 motion of some pixels of a window, by reweighted least squares.

    Args:
        grid: the window's flow (:class:`stseg_kernels.MotionGrid`, pixels at model size).
        pixels: (N,) int64 flat indices into its (T, h, w).
        iterations: fits, the first weighted by ``weights`` (none: 1 each), each next one by
            1 / max(residual, :data:`L1_RESIDUAL_FLOOR`) of the one before (1: least squares).
        terms: :data:`MOTION_TERMS` (the quadratic model, its shape terms damped by
            :data:`SHAPE_RIDGE`) or :data:`AFFINE_TERMS` (an affine patch, fitted plainly).
        weights: (N,) float, the first fit's weights.

    Returns:
        θ (2, T·terms) float64 (0 on a frame without pixels) and the residual
        |u − û| + |v − v̂| (N,) float64, pixels."""
    ridge = SHAPE_RIDGE if terms == MOTION_TERMS else 0.0
    return grid.fit(pixels, iterations, terms=terms, ridge=ridge, jitter=SOLVE_JITTER, floor=L1_RESIDUAL_FLOOR, weights=weights)


# 4. Cutting a segment --------------------------------------------------------------------


@dataclass(frozen=True)
class _Window:
    """What every step of one window's split reads: its flow and thresholds. Pixels are
    named by flat index into (T, h, w); fits take them as they are
    (:func:`fit_motion`)."""

    grid: MotionGrid  # the window's flow, pixels at model size
    min_pixels: int  # the smallest part (SplitSettings.min_area, MIN_PART_FLOOR)
    join_cost: float  # px: the residual that tells two motions apart (SplitSettings)
    seed: np.ndarray | None  # (T·h·w,) the previous window's split (seed_from_prior), or None

    @classmethod
    def of(cls, flow: np.ndarray, settings: SplitSettings, seed: np.ndarray | None) -> _Window:
        """flow: (2, T, h, w) float32, pixels at model size; seed: (T, h, w) labels or None."""
        grid = MotionGrid(flow)
        scale = float(np.abs(grid.flow).sum(axis=0).mean()) + SCALE_EPSILON
        return cls(
            grid=grid,
            min_pixels=max(MIN_PART_FLOOR, int(settings.min_area * grid.flow.shape[1])),
            join_cost=max(settings.min_gain * scale, settings.min_residual),
            seed=None if seed is None else seed.ravel(),
        )

    @property
    def shape(self) -> tuple[int, int, int]:
        """(T, h, w): what flat pixel indices index."""
        return self.grid.shape

    @property
    def plane(self) -> int:
        """Pixels per frame."""
        return self.shape[1] * self.shape[2]

    def fit(self, pixels: np.ndarray, iterations: int = L1_ITERATIONS, terms: int = MOTION_TERMS) -> tuple[np.ndarray, np.ndarray]:
        """θ and the residual of the L1 motion of ``pixels`` (:func:`fit_motion`)."""
        return fit_motion(self.grid, pixels, iterations, terms)

    def residual(self, pixels: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """|u − û| + |v − v̂| (N,) float64, pixels, at ``pixels`` under θ (:meth:`fit`)."""
        return self.grid.residual(pixels, theta)


def _regions(window: _Window, mask: np.ndarray) -> list[np.ndarray]:
    """Flat pixel indices of a segment's connected regions (of its union over the window's
    frames), those of ``window.min_pixels`` or more. mask: (T, h, w) bool, the segment."""
    union = mask.any(axis=0).astype(np.uint8)
    count, regions = cv2.connectedComponents(union, connectivity=REGION_CONNECTIVITY)
    pixels = np.flatnonzero(mask)
    region = regions.ravel()[pixels % window.plane]
    large = np.flatnonzero(np.bincount(region, minlength=count)[1:] >= window.min_pixels) + 1
    return [pixels[region == r] for r in large]


def seed_from_prior(prior: np.ndarray, flow: np.ndarray | None) -> np.ndarray:
    """The previous window's partition carried onto this window's frames.

    prior: (T-1, h, w) integer labels of this window's first T-1 frames, as the previous
    window (its last T-1 frames) left them after its split; flow: (2, h, w) float32, model
    pixels, the flow of frame T-2 (to frame T-1), or None. Returns (T, h, w): the prior,
    and for the last frame, frame T-2's labels moved along the flow (nearest pixel; where
    nothing lands, or without a flow, the label in place).
    """
    t, h, w = prior.shape[0] + 1, prior.shape[1], prior.shape[2]
    seed = np.empty((t, h, w), dtype=prior.dtype)
    seed[:-1] = prior
    seed[-1] = prior[-1]
    if flow is None:
        return seed
    rows, cols = np.indices((h, w))
    to_r = np.rint(rows + flow[1]).astype(np.int64)
    to_c = np.rint(cols + flow[0]).astype(np.int64)
    inside = (to_r >= 0) & (to_r < h) & (to_c >= 0) & (to_c < w)
    seed[-1][to_r[inside], to_c[inside]] = prior[-1][inside]
    return seed


def _seeded_parts(window: _Window, pixels: np.ndarray) -> list[np.ndarray]:
    """A region (flat indices) cut along the previous window's groups (``window.seed``): each
    seed group of ``window.min_pixels`` or more starts a part (:func:`_refit_and_reassign`).
    The seed proposes where the objects are; the flow moves the boundary to where they are
    now. Returns the parts (one: the region whole, when the seed holds at most one group
    there)."""
    labels = window.seed[pixels]
    values, counts = np.unique(labels, return_counts=True)
    kept = values[counts >= window.min_pixels]
    if len(kept) < 2:
        return [pixels]
    owner = np.searchsorted(kept, labels)
    owner[~np.isin(labels, kept)] = -1  # a seed group too small to fit starts in no part
    parts = _refit_and_reassign(window, pixels, owner, len(kept))
    return [pixels] if parts is None else parts


def _split_region(window: _Window, pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Two parts of a region (flat indices) that move apart, or None.

    A region whose robust fit leaves a mean residual within ``window.join_cost`` is one
    motion. Otherwise the pixels its main motion does not explain
    (:func:`_main_motion_outliers`) start the second part, smoothed
    (:func:`_majority`), and :func:`_refit_and_reassign` moves the seam. The cut is kept
    when the larger part's motion, carried over, leaves the smaller one a median residual
    above ``window.join_cost``. (A two-means start on the flow vectors lost more on the
    multi-object proxy than it gained: J_objects 0.707 against 0.730 with the whole
    region's fit as the start.)"""
    _, residual = window.fit(pixels)
    if residual.mean() <= window.join_cost:
        return None
    start = _majority(window, pixels, _main_motion_outliers(window, pixels).astype(np.int64), 2)
    parts = _refit_and_reassign(window, pixels, start, 2)
    if parts is None:
        return None
    first, second = parts
    big, small = (first, second) if first.size >= second.size else (second, first)
    if _carried(window, big, small, window.fit(big)[0]) <= window.join_cost:
        return None
    return first, second


def _main_motion_outliers(window: _Window, pixels: np.ndarray) -> np.ndarray:
    """(N,) bool: the pixels of a region that its main motion does not explain, the start of
    a second part.

    The main motion is the one most of the region agrees with, found from small patches:
    each of :data:`PATCHES` patches spread over the region (squares of side
    2 · :data:`PATCH_RADIUS` + 1 model pixels, all frames) gets an affine motion per frame,
    and the one with most inliers in the whole region (L1 residual within
    :data:`INLIER_FACTOR` · ``window.join_cost``) wins, refitted robustly on its inliers. A
    fit of the whole region lands between two motions of about the same weight (two
    touching objects of one size), and its outliers then cut across both.
    """
    threshold = INLIER_FACTOR * window.join_cost
    centers = np.unique(np.linspace(0, pixels.size - 1, PATCHES).astype(np.int64))
    best = window.grid.consensus(pixels, centers, PATCH_RADIUS, threshold, jitter=SOLVE_JITTER)
    theta, _ = window.fit(pixels[best], REFIT_ITERATIONS)
    return window.residual(pixels, theta) > threshold


def _refit_and_reassign(window: _Window, pixels: np.ndarray, owner: np.ndarray, n: int) -> list[np.ndarray] | None:
    """A region's pixels (flat indices) dealt among ``n`` parts by motion, from a first
    assignment.

    owner: (N,) int, each pixel's part in [0, n), or -1 for none yet. :data:`REASSIGN_ROUNDS`
    times: each part of ``window.min_pixels`` or more gets its motion refitted, every pixel
    goes to the motion that fits it best (the first on ties), and the assignment is smoothed
    (:func:`_majority`). Returns the parts of ``window.min_pixels`` or more (flat indices, in
    part order; a smaller part's pixels are in none), or None when fewer than two are left."""
    for _ in range(REASSIGN_ROUNDS):
        fitted = np.bincount(owner[owner >= 0], minlength=n) >= window.min_pixels
        if fitted.sum() < 2:
            return None
        residual = np.full((n, pixels.size), np.inf)
        for g in np.flatnonzero(fitted):
            residual[g] = window.residual(pixels, window.fit(pixels[owner == g], REFIT_ITERATIONS)[0])
        owner = _majority(window, pixels, residual.argmin(axis=0), n)
    parts = [pixels[owner == g] for g in range(n)]
    parts = [p for p in parts if p.size >= window.min_pixels]
    return parts if len(parts) >= 2 else None


def _majority(window: _Window, pixels: np.ndarray, owner: np.ndarray, n: int) -> np.ndarray:
    """A region's assignment of its pixels (flat indices) to ``n`` parts, ``owner`` (N,) in
    [0, n), smoothed frame by frame: each pixel takes the part most of the region's pixels in
    its :data:`MAJORITY_WINDOW` square belong to, the first on ties (pixels outside the region
    do not vote, so no part loses its corners to the outside)."""
    votes = np.zeros((n, int(np.prod(window.shape))), dtype=np.float32)
    votes[owner, pixels] = 1.0
    votes = votes.reshape(n, *window.shape)
    for g in range(n):
        for f in range(window.shape[0]):
            votes[g, f] = cv2.blur(votes[g, f], (MAJORITY_WINDOW, MAJORITY_WINDOW))
    return argmax_labels(votes.reshape(1, n, -1)[:, :, pixels])[0]


def _cut(window: _Window, regions: list[np.ndarray]) -> list[np.ndarray]:
    """Regions cut until one motion explains each part (:func:`_split_region`), at most
    :data:`MAX_GROUPS` of them."""
    queue = list(regions)
    groups: list[np.ndarray] = []
    while queue:
        pixels = queue.pop()
        parts = _split_region(window, pixels) if len(groups) + len(queue) < MAX_GROUPS else None
        if parts is None:
            groups.append(pixels)
        else:
            queue.extend(parts)
    return groups


# 5. Joining groups -----------------------------------------------------------------------


def _carried(window: _Window, source: np.ndarray, target: np.ndarray, theta: np.ndarray) -> float:
    """Median L1 residual (px) of ``target``'s flow under ``theta``, the motion fitted to
    ``source`` (both flat pixel indices), on the frames where ``source`` has
    :data:`MIN_FRAME_PIXELS` to fit: a frame's motion is its own, so on the others it says
    nothing. 0 when the two share no such frame (then no motion tells them apart).

    The median, not the mean: the few pixels where a resized flow blends two motions at an
    edge (a residual of pixels each) kept two parts of one background apart (J_objects
    0.872 / 0.812 / 0.833 against 0.868 / 0.809 / 0.829 with the mean, docs/model-merging.md,
    "The split, second round")."""
    frames = np.bincount(source // window.plane, minlength=window.shape[0])
    shared = target[frames[target // window.plane] >= MIN_FRAME_PIXELS]
    if shared.size == 0:
        return 0.0
    return _median(window.residual(shared, theta))


def _median(values: np.ndarray) -> float:
    """np.median of a non-empty 1-D float array without its wrappers' cost (called thousands
    of times a video): the middle value, or the mean of the two middle ones."""
    middle = values.size // 2
    if values.size % 2:
        return float(np.partition(values, middle)[middle])
    low, high = np.partition(values, (middle - 1, middle))[middle - 1 : middle + 1]
    return float((low + high) / 2.0)


def _join(window: _Window, groups: list[np.ndarray]) -> list[np.ndarray]:
    """Groups joined while the larger one's motion, carried over, explains the smaller one
    to a median L1 residual of ``window.join_cost`` (:func:`_carried`), the closest pair
    first. One fit of both would not do: a smooth field bridges two small regions that move
    apart (a linear one already matches any two translations at two places; J_objects 0.537
    against 0.631 carried over, docs/model-merging.md, "What was tried")."""
    thetas = [window.fit(g)[0] for g in groups]
    while len(groups) > 1:
        best = None
        for a in range(len(groups)):
            for b in range(len(groups)):
                if a == b or groups[a].size < groups[b].size:
                    continue
                carried = _carried(window, groups[a], groups[b], thetas[a])
                if carried <= window.join_cost and (best is None or carried < best[0]):
                    best = (carried, a, b)
        if best is None:
            break
        _, a, b = best
        joint = np.concatenate([groups[a], groups[b]])
        groups = [g for i, g in enumerate(groups) if i not in (a, b)] + [joint]
        thetas = [t for i, t in enumerate(thetas) if i not in (a, b)] + [window.fit(joint)[0]]
    return groups


# 6. Moving parts -------------------------------------------------------------------------


def _move(flat_out: np.ndarray, k: int, spare: int, pixels: np.ndarray) -> None:
    """Segment k's probability at ``pixels`` moves to ``spare``, ahead of every other segment
    there by :data:`TIE_MARGIN`: where another one tied with k (the test-time flip averages a
    saturated 1 and 0 into 0.5 and 0.5), the argmax of the guided refinement, whose filter
    rounds by more than an ulp, must still pick the spare and not the tied segment. The
    margin is taken from the segments that come that close, so each pixel's total stays.
    flat_out: (L + extra, T·h·w) float32, changed in place."""
    moved = flat_out[k, pixels]
    flat_out[k, pixels] = 0.0
    others = flat_out[:spare, pixels]
    excess = np.clip(others - (moved - TIE_MARGIN), 0.0, None)
    flat_out[:spare, pixels] = others - excess
    flat_out[spare, pixels] = moved + excess.sum(axis=0)


# 7. The per-window split -----------------------------------------------------------------


def _segment_groups(window: _Window, mask: np.ndarray) -> list[np.ndarray]:
    """Flat pixel indices of a segment's groups, largest first (none when it stays whole):
    its regions (:func:`_regions`), cut along the prior (:func:`_seeded_parts`) and by
    motion (:func:`_cut`), joined again (:func:`_join`). mask: (T, h, w) bool."""
    regions = _regions(window, mask)
    if window.seed is not None:
        regions = [part for region in regions for part in _seeded_parts(window, region)]
    groups = _cut(window, regions)
    if len(groups) >= 2:
        groups = _join(window, groups)
    return sorted(groups, key=lambda g: -g.size) if len(groups) >= 2 else []


def split_window(
    proba: np.ndarray,
    flow: np.ndarray,
    settings: SplitSettings,
    prior: np.ndarray | None = None,
    move_prior: bool = True,
) -> np.ndarray:
    """One window's probabilities with the segments that hold several motions split.

    A segment's pixels are grouped by connected region (of its union over the window's
    frames), and, given ``prior``, by the group each pixel had in the previous window; a
    region one motion does not explain is cut in two; groups are joined again when the
    larger one's motion, carried over, leaves the smaller one a median L1 residual within
    the larger of ``min_gain`` × the window's mean flow magnitude and ``min_residual``; the
    largest group keeps the segment, each other group takes a spare one while there are
    spares.

    Args:
        proba: (L, T, h, w) float32, the model's probabilities.
        flow: (2, T, h, w) float32, pixels, the window's flows at model size.
        settings: see :class:`SplitSettings`.
        prior: (T-1, h, w) integer labels of the window's first T-1 frames from the
            previous window's split (its argmax; any naming), or None. Two objects the
            previous window held apart are proposed apart again (and kept apart only if
            their motions differ), so a split does not come and go from window to window,
            which linking would turn into objects swapping labels.
        move_prior: carry the prior onto the last frame along the flow, which must then be
            in model pixels (a model whose flows keep the source grid's pixels, resize
            "plain", leaves it in place).

    Returns:
        (L + extra, T, h, w) float32: where segment k is the argmax in a group that moves
        otherwise, its probability moves to a spare segment (kept :data:`TIE_MARGIN` ahead
        of any segment that tied with k, each pixel's total unchanged); spare segments not
        used are zero, so nothing changes where nothing was split.
    """
    n_labels, t, h, w = proba.shape
    if prior is not None and prior.shape != (t - 1, h, w):
        raise ValueError(f"prior must have shape {(t - 1, h, w)} (the window's first {t - 1} frames), got {prior.shape}")
    out = np.zeros((n_labels + settings.extra, t, h, w), dtype=np.float32)
    out[:n_labels] = proba
    if settings.extra == 0:
        return out
    # The prior's last frame moves along the flow from frame T-2, the last one the two windows share.
    seed = None if prior is None else seed_from_prior(prior, flow[:, -2] if move_prior else None)
    window = _Window.of(flow, settings, seed)
    labels = argmax_labels(proba[None])[0]
    flat_out = out.reshape(out.shape[0], -1)
    spare = n_labels
    for k in range(n_labels):
        if spare == out.shape[0]:
            break
        for pixels in _segment_groups(window, labels == k)[1:]:
            if spare == out.shape[0]:
                break
            _move(flat_out, k, spare, pixels)
            spare += 1
    return out


# 8. The splitter across windows ----------------------------------------------------------


class MotionSplitter:
    """The split of one sequence, batch after batch: each window gets the one before as its
    prior, across batches too (see :func:`split_window`); ``prior``: the first window's,
    (T-1, h, w) labels, or None."""

    def __init__(self, settings: SplitSettings, move_prior: bool = True, prior: np.ndarray | None = None) -> None:
        if settings.form != SPLIT_FORM:
            raise ValueError(f"this version splits with form {SPLIT_FORM}; form {settings.form} is only read from older outputs")
        self.settings = settings
        self.move_prior = move_prior  # see split_window
        self._prior = prior

    def __call__(self, proba: np.ndarray, flows: np.ndarray) -> np.ndarray:
        """proba (B, L, T, h, w) float32 and flows (B, 2, T, h, w) float32 (pixels at model
        size) of the sequence's next B windows, each a frame after the one before →
        (B, L + extra, T, h, w) float32."""
        out = []
        for p, f in zip(proba, flows):
            out.append(split_window(p, f, self.settings, self._prior, self.move_prior))
            # The next window starts a frame later: its first T-1 frames are this one's last.
            self._prior = argmax_labels(out[-1][None])[0, 1:]
        return np.stack(out)
