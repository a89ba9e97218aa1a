"""Splitting a segment that holds two motions (``--split motion``).

The network gives each window L segments, and on videos with several moving objects it
often gives two objects one segment, or an object and a piece of background
(docs/model-merging.md): the training objective would prefer them apart, but the network's
fixed output channels do not separate them. This stage does, per window, with the method's
own criterion: each segment's flow is fitted with a parametric motion (robustly, L1), and
when two motions fitted to two parts of it explain its flow much better than one, the
second part moves to a segment of its own, from ``extra`` spare segments. Linking then
carries the new segments from window to window like the others.

The motion model is quadratic in space (6 terms per component), on coordinates in
[-1, 1], and each frame of the window has its own: a camera's motion, a moving object's, as
training fits them, free to change from one frame to the next (objects turn back, cameras
jerk; a model smooth in time cut an object's frames apart where its motion turned).
Segments are examined in label order, and the spares go to the groups found first; a
window with more groups than spares keeps the rest in their segments.

Windows are split in order, each with the previous one's split as its prior
(:class:`MotionSplitter`): where a segment covers what the previous window held apart,
those parts are proposed again, their boundary moved to where their motions now meet, and
kept apart only if their motions still differ. Decided afresh in each window, a split came
and went with the network's segments, and linking turned that into objects swapping labels
(on the multi-object proxies, per-frame matching scored 0.10 above matching per chunk).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import StageSettings, option

# The split's algorithm, recorded with its settings (SplitSettings.form): outputs made by
# another form have other labels for the same settings, so --skip-done redoes them and
# stseg-eval does not pool them. 1 (outputs that record no form): each window on its own,
# one motion smooth in time; 2: the previous window's split as prior, a motion per frame.
SPLIT_FORM = 2
MOTION_TERMS = 6  # per frame and flow component: 1, i, j, i·j, i², j²
MAX_GROUPS = 8  # regions a segment is cut into at most, per window (bounds the time)
TIE_MARGIN = 1e-3  # how far a moved part's spare stays ahead of the other segments (_move)
# A frame's fitted motion is trusted (carried over to another group) only with this many of
# the group's pixels in the frame: with barely one per term, it extrapolates by pixels.
MIN_FRAME_PIXELS = 3 * MOTION_TERMS
# A motion's shape terms (all but the constant, per frame) are damped by SHAPE_RIDGE x the
# frame's total fit weight: over a whole frame (coordinates spread over [-1, 1]) this is
# nothing, but a part a few pixels wide, fitted freely, matched the blur of its edges with a
# steep slope and, carried over to the rest of its own object, missed it by pixels: one
# object was cut in two. 1e-3 on the multi-object proxies: J_objects 0.799 / 0.795 / 0.874
# against 0.794 / 0.775 / 0.847 without (3e-3: 0.808 / 0.788 / 0.878; 1e-2 cost binary J).
SHAPE_RIDGE = 1e-3
# The main motion of a region, from patches (_main_motion_outliers). On the three
# multi-object proxies, 16 patches of 9x9 model pixels with inliers within 3x the join
# residual scored J_objects 0.787 / 0.775 / 0.856; 2x: 0.781 / 0.751, 5x: 0.774 / 0.781 /
# 0.804, 32 patches: 0.794 / 0.781 / 0.832 (docs/model-merging.md).
PATCHES = 16
PATCH_RADIUS = 4
INLIER_FACTOR = 3.0


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

    def params(self) -> dict[str, Any]:
        # Recorded as the outputs always had them: the settings, then the form.
        return {"extra": self.extra, "min_area": self.min_area, "min_gain": self.min_gain,
                "min_residual": self.min_residual, "form": self.form}

    @classmethod
    def from_record(cls, settings: dict[str, Any]) -> SplitSettings:
        # Outputs of the first form recorded none.
        params = settings.get(cls.PARAMS_KEY)
        if settings.get(cls.MODE_KEY) == "motion" and isinstance(params, dict) and "form" not in params:
            settings = {**settings, cls.PARAMS_KEY: {**params, "form": 1}}
        return super().from_record(settings)


@functools.lru_cache(maxsize=4)
def motion_basis(t: int, h: int, w: int) -> np.ndarray:
    """(6·T, T·H·W) float64: per frame, 1, i, j, i·j, i², j² (i rows, j columns in [-1, 1]),
    zero on the other frames. Made once per window size (every batch of a run shares it),
    so it is read-only."""
    ii, jj = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    terms = np.stack([np.ones_like(ii), ii, jj, ii * jj, ii**2, jj**2]).reshape(MOTION_TERMS, -1)
    basis = np.zeros((MOTION_TERMS * t, t, h * w))
    for f in range(t):
        basis[MOTION_TERMS * f : MOTION_TERMS * (f + 1), f] = terms
    basis = basis.reshape(MOTION_TERMS * t, -1)
    basis.setflags(write=False)
    return basis


def fit_motion(basis: np.ndarray, flow: np.ndarray, weights: np.ndarray, ridge: bool = True, terms: int = MOTION_TERMS) -> np.ndarray:
    """Weighted least squares θ (2, K) of flow (2, N) on basis (K, N): :func:`motion_basis`
    rows (``ridge``: its shape terms damped, see :data:`SHAPE_RIDGE`), or a subset of them
    keeping ``terms`` per frame with the constant first (``ridge=False``).

    The basis is block-diagonal (a frame's terms are zero on the other frames' pixels), so
    each frame is solved on its own pixels: the same θ as one solve, for a fraction of the
    work. A frame without pixels gets θ = 0."""
    theta = np.zeros((flow.shape[0], basis.shape[0]))
    for start in range(0, basis.shape[0], terms):
        rows = slice(start, start + terms)
        cols = np.flatnonzero(basis[start])  # the constant term is 1 exactly on its frame's pixels
        if cols.size == 0:
            continue
        block = basis[rows][:, cols]
        a = block * weights[cols]
        gram = a @ block.T + 1e-6 * np.eye(terms)
        if ridge:
            gram[np.arange(1, terms), np.arange(1, terms)] += SHAPE_RIDGE * a[0].sum()
        theta[:, rows] = np.linalg.solve(gram, a @ flow[:, cols].T).T
    return theta


def robust_fit(basis: np.ndarray, flow: np.ndarray, iterations: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """L1 fit by reweighted least squares: (θ (2, K), residual |u − û| + |v − v̂| (N,))."""
    weights = np.ones(flow.shape[1])
    for _ in range(iterations):
        theta = fit_motion(basis, flow, weights)
        residual = motion_residual(basis, flow, theta)
        weights = 1.0 / np.maximum(residual, 1e-3)
    return theta, residual


def motion_residual(basis: np.ndarray, flow: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """|u − û| + |v − v̂| per pixel (N,) of flow (2, N) under the motion θ (2, K) on basis (K, N)."""
    return np.abs(flow - theta @ basis).sum(axis=0)


def _carried(basis: np.ndarray, flow: np.ndarray, source: np.ndarray, target: np.ndarray, theta: np.ndarray, plane: int) -> float:
    """Median L1 residual of ``target``'s flow under ``theta``, the motion fitted to
    ``source`` (both flat pixel indices, frames of ``plane`` pixels), on the frames where
    ``source`` has pixels to fit: a frame's motion is its own, so on the others it says
    nothing. 0 when the two share no frame (then no motion tells them apart). The median,
    not the mean: the few pixels where a resized flow blends two motions at an edge (a
    residual of pixels each) kept two parts of one background apart (J_objects 0.809 /
    0.833 / 0.872 on the multi-object proxies against 0.809 / 0.829 / 0.868)."""
    frames = np.bincount(source // plane, minlength=basis.shape[0] // MOTION_TERMS)
    shared = target[frames[target // plane] >= MIN_FRAME_PIXELS]
    if shared.size == 0:
        return 0.0
    return float(np.median(motion_residual(basis[:, shared], flow[:, shared], theta)))


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


def split_window(
    proba: np.ndarray,
    flow: np.ndarray,
    settings: SplitSettings,
    basis: np.ndarray | None = None,
    prior: np.ndarray | None = None,
    move_prior: bool = True,
) -> np.ndarray:
    """One window's probabilities with the segments that hold several motions split.

    A segment's pixels are grouped by connected region (of its union over the window's
    frames), and, given ``prior``, by the group each pixel had in the previous window; a
    region one motion does not explain is cut in two; groups are joined again when the
    larger one's motion, carried over, leaves the smaller one a median L1 residual within
    the larger of ``min_gain`` × the window's mean flow magnitude and ``min_residual``
    (:func:`_motion_groups`); the largest group keeps the segment, each other group takes a
    spare one while there are spares.

    Args:
        proba: (L, T, h, w) float32, the model's probabilities.
        flow: (2, T, h, w) float32, pixels, the window's flows at model size.
        settings: see :class:`SplitSettings`.
        basis: :func:`motion_basis` of (T, h, w), to reuse across windows.
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
    basis = motion_basis(t, h, w) if basis is None else basis
    labels = proba.argmax(axis=0)
    vectors = flow.reshape(2, -1).astype(np.float64)
    scale = float(np.abs(vectors).sum(axis=0).mean()) + 1e-6
    min_pixels = max(8, int(settings.min_area * labels.size))
    join_cost = max(settings.min_gain * scale, settings.min_residual)
    seed = None if prior is None else seed_from_prior(prior, flow[:, -2] if move_prior else None)
    flat_out = out.reshape(out.shape[0], -1)
    spare = n_labels
    for k in range(n_labels):
        if spare == out.shape[0]:
            break
        groups = _motion_groups(labels == k, basis, vectors, min_pixels, join_cost, seed)
        for pixels in groups[1:]:
            if spare == out.shape[0]:
                break
            _move(flat_out, k, spare, pixels)
            spare += 1
    return out


def _move(flat_out: np.ndarray, k: int, spare: int, pixels: np.ndarray) -> None:
    """Segment k's probability at ``pixels`` moves to ``spare``, ahead of every other segment
    there by :data:`TIE_MARGIN`: where another one tied with k (the test-time flip averages a
    saturated 1 and 0 into 0.5 and 0.5), the argmax of the guided refinement, whose filter
    rounds by more than an ulp, must still pick the spare and not the tied segment. The
    margin is taken from the segments that come that close, so each pixel's total stays."""
    moved = flat_out[k, pixels]
    flat_out[k, pixels] = 0.0
    others = flat_out[:spare, pixels]
    excess = np.clip(others - (moved - TIE_MARGIN), 0.0, None)
    flat_out[:spare, pixels] = others - excess
    flat_out[spare, pixels] = moved + excess.sum(axis=0)


def _motion_groups(
    mask: np.ndarray, basis: np.ndarray, flow: np.ndarray, min_pixels: int, join_cost: float, seed: np.ndarray | None = None
) -> list[np.ndarray]:
    """Flat pixel indices of a segment's groups, largest first (none when it stays whole).

    1. Its connected regions (of the union over frames, 8-connected), each cut further by
       the ``seed`` labels (T, h, w) when given, of at least ``min_pixels`` pixels.
    2. A region one motion does not explain (mean L1 residual of its fit above
       ``join_cost``) is cut in two where a second motion fits better
       (:func:`_split_region`), and the parts are examined again.
    3. Groups are joined while the larger one's motion, carried over, explains the smaller
       one to a median L1 residual of ``join_cost`` (:func:`_carried`). One fit of both
       would not do: a smooth field bridges two small regions that move apart (a linear one
       already matches any two translations at two places).
    """
    import cv2

    plane = mask.shape[1] * mask.shape[2]
    union = mask.any(axis=0).astype(np.uint8)
    count, regions = cv2.connectedComponents(union, connectivity=8)
    owner = np.broadcast_to(regions, mask.shape).ravel()
    inside = mask.ravel()
    queue = [p for p in (np.flatnonzero(inside & (owner == r)) for r in range(1, count)) if p.size >= min_pixels]
    if seed is not None:
        queue = [part for region in queue for part in _seeded_parts(region, seed.ravel(), mask.shape, basis, flow, min_pixels)]
    groups: list[np.ndarray] = []
    while queue:
        pixels = queue.pop()
        parts = _split_region(pixels, mask.shape, basis, flow, min_pixels, join_cost) if len(groups) + len(queue) < MAX_GROUPS else None
        if parts is None:
            groups.append(pixels)
        else:
            queue.extend(parts)
    if len(groups) < 2:
        return []
    thetas = [robust_fit(basis[:, g], flow[:, g])[0] for g in groups]
    while len(groups) > 1:
        best = None
        for a in range(len(groups)):
            for b in range(len(groups)):
                if a == b or groups[a].size < groups[b].size:
                    continue
                carried = _carried(basis, flow, groups[a], groups[b], thetas[a], plane)
                if carried <= join_cost and (best is None or carried < best[0]):
                    best = (carried, a, b)
        if best is None:
            break
        _, a, b = best
        joint = np.concatenate([groups[a], groups[b]])
        theta = robust_fit(basis[:, joint], flow[:, joint])[0]
        groups = [g for i, g in enumerate(groups) if i not in (a, b)] + [joint]
        thetas = [t for i, t in enumerate(thetas) if i not in (a, b)] + [theta]
    if len(groups) < 2:
        return []
    return sorted(groups, key=lambda g: -g.size)


def _split_region(
    pixels: np.ndarray, shape: tuple[int, int, int], basis: np.ndarray, flow: np.ndarray, min_pixels: int, join_cost: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Two parts of a region (flat indices into ``shape`` = (T, h, w)) that move apart, or None.

    A region whose robust fit leaves a mean residual within ``join_cost`` is one motion.
    Otherwise the pixels its main motion does not explain (:func:`_main_motion_outliers`)
    start the second part; then both motions are refitted and each pixel goes to the one
    that fits it better, twice, the parts smoothed (a 5x5 majority per frame) each time.
    The cut is kept when both parts have ``min_pixels`` and the larger part's motion,
    carried over, leaves the smaller one a median residual above ``join_cost``. (A
    two-means start on the flow vectors lost more on the multi-object proxy than it gained:
    J_objects 0.707 against 0.730 with the whole region's fit as the start.)"""
    sub_basis, sub_flow = basis[:, pixels], flow[:, pixels]
    _, residual = robust_fit(sub_basis, sub_flow)
    if residual.mean() <= join_cost:
        return None
    second = _main_motion_outliers(pixels, shape, sub_basis, sub_flow, join_cost)
    for _ in range(2):
        second = _smoothed(second, pixels, shape)
        if min(second.sum(), (~second).sum()) < min_pixels:
            return None
        theta_a = robust_fit(sub_basis[:, ~second], sub_flow[:, ~second], iterations=2)[0]
        theta_b = robust_fit(sub_basis[:, second], sub_flow[:, second], iterations=2)[0]
        second = motion_residual(sub_basis, sub_flow, theta_b) < motion_residual(sub_basis, sub_flow, theta_a)
    second = _smoothed(second, pixels, shape)
    if min(second.sum(), (~second).sum()) < min_pixels:
        return None
    big, small = (~second, second) if (~second).sum() >= second.sum() else (second, ~second)
    theta = robust_fit(sub_basis[:, big], sub_flow[:, big])[0]
    if _carried(basis, flow, pixels[big], pixels[small], theta, shape[1] * shape[2]) <= join_cost:
        return None
    return pixels[~second], pixels[second]


def _seeded_parts(
    pixels: np.ndarray, seed: np.ndarray, shape: tuple[int, int, int], basis: np.ndarray, flow: np.ndarray, min_pixels: int
) -> list[np.ndarray]:
    """A region (flat indices into ``shape`` = (T, h, w)) cut along the previous window's
    groups ``seed`` (flat labels): each seed group of ``min_pixels`` pixels or more gets its
    motion fitted, and every pixel of the region goes to the motion that fits it best, twice,
    smoothed (5x5 majority per frame) each time. The seed proposes where the objects are;
    the flow moves the boundary to where they are now. Returns the parts (one: the region
    whole, when the seed holds at most one group there)."""
    values, counts = np.unique(seed[pixels], return_counts=True)
    kept = values[counts >= min_pixels]
    if len(kept) < 2:
        return [pixels]
    sub_basis, sub_flow = basis[:, pixels], flow[:, pixels]
    owner = np.searchsorted(kept, seed[pixels])
    owner[~np.isin(seed[pixels], kept)] = -1
    n = len(kept)
    for _ in range(2):
        residual = np.full((n, pixels.size), np.inf)
        for g in range(n):
            members = owner == g
            if members.sum() >= min_pixels:
                theta = robust_fit(sub_basis[:, members], sub_flow[:, members], iterations=2)[0]
                residual[g] = motion_residual(sub_basis, sub_flow, theta)
        owner = _majority(residual.argmin(axis=0), n, pixels, shape)
    parts = [pixels[owner == g] for g in range(n)]
    big = [p for p in parts if p.size >= min_pixels]
    return big if len(big) >= 2 else [pixels]


def _main_motion_outliers(
    pixels: np.ndarray, shape: tuple[int, int, int], sub_basis: np.ndarray, sub_flow: np.ndarray, join_cost: float
) -> np.ndarray:
    """(N,) bool: the pixels of a region (flat indices into ``shape``) that its main motion
    does not explain, the start of a second part.

    The main motion is the one most of the region agrees with, found from small patches:
    each of :data:`PATCHES` patches spread over the region (squares of side
    2 · :data:`PATCH_RADIUS` + 1 model pixels, all frames) gets an affine motion per frame,
    and the one with most inliers in the whole region (L1 residual within
    :data:`INLIER_FACTOR` · ``join_cost``) wins, refitted robustly on its inliers. A fit of
    the whole region lands between two motions of about the same weight (two touching
    objects of one size), and its outliers then cut across both.
    """
    plane = shape[1] * shape[2]
    rows = (pixels % plane) // shape[2]
    cols = pixels % shape[2]
    affine = sub_basis[np.arange(sub_basis.shape[0]) % MOTION_TERMS < 3]  # 1, i, j per frame
    threshold = INLIER_FACTOR * join_cost
    best, best_count = None, -1
    for center in np.unique(np.linspace(0, pixels.size - 1, PATCHES).astype(np.int64)):
        near = (np.abs(rows - rows[center]) <= PATCH_RADIUS) & (np.abs(cols - cols[center]) <= PATCH_RADIUS)
        theta = fit_motion(affine[:, near], sub_flow[:, near], np.ones(int(near.sum())), ridge=False, terms=3)
        inliers = motion_residual(affine, sub_flow, theta) <= threshold
        if inliers.sum() > best_count:
            best, best_count = inliers, int(inliers.sum())
    theta = robust_fit(sub_basis[:, best], sub_flow[:, best], iterations=2)[0]
    return motion_residual(sub_basis, sub_flow, theta) > threshold


def _smoothed(second: np.ndarray, pixels: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """A region's two-part assignment (bool, True: the second part) smoothed: see
    :func:`_majority`."""
    return _majority(second.astype(np.int64), 2, pixels, shape) == 1


def _majority(owner: np.ndarray, n: int, pixels: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """A region's assignment of its pixels (flat indices into ``shape`` = (T, h, w)) to
    ``n`` parts, ``owner`` (N,) in [0, n), smoothed frame by frame: each pixel takes the part
    most of the region's pixels in its 5x5 neighbourhood belong to, the first on ties
    (pixels outside the region do not vote, so no part loses its corners to the outside)."""
    import cv2

    votes = np.zeros((n, int(np.prod(shape))), dtype=np.float32)
    votes[owner, pixels] = 1.0
    votes = votes.reshape(n, *shape)
    for g in range(n):
        for f in range(shape[0]):
            votes[g, f] = cv2.blur(votes[g, f], (5, 5))
    return votes.reshape(n, -1)[:, pixels].argmax(axis=0)


def split_batch(
    proba: np.ndarray, flows: np.ndarray, settings: SplitSettings, prior: np.ndarray | None = None, move_prior: bool = True
) -> np.ndarray:
    """:func:`split_window` on consecutive windows (window b + 1 starts a frame after window
    b), each given the previous one's split as its prior: proba (B, L, T, h, w), flows
    (B, 2, T, h, w) → (B, L + extra, T, h, w) float32. ``prior``: the first window's, see
    :func:`split_window` (:class:`MotionSplitter` carries it from batch to batch)."""
    return MotionSplitter(settings, move_prior, prior)(proba, flows)


class MotionSplitter:
    """The split of one sequence, batch after batch: each window gets the one before as its
    prior, across batches too (see :func:`split_window`); ``prior``: the first window's."""

    def __init__(self, settings: SplitSettings, move_prior: bool = True, prior: np.ndarray | None = None) -> None:
        if settings.form != SPLIT_FORM:
            raise ValueError(f"this version splits with form {SPLIT_FORM}; form {settings.form} is only read from older outputs")
        self.settings = settings
        self.move_prior = move_prior  # see split_window
        self._prior = prior

    def __call__(self, proba: np.ndarray, flows: np.ndarray) -> np.ndarray:
        """proba (B, L, T, h, w), flows (B, 2, T, h, w) of the sequence's next B windows →
        (B, L + extra, T, h, w) float32."""
        basis = motion_basis(*proba.shape[2:])
        out = []
        for p, f in zip(proba, flows):
            out.append(split_window(p, f, self.settings, basis, self._prior, self.move_prior))
            self._prior = out[-1].argmax(axis=0)[1:]
        return np.stack(out)
