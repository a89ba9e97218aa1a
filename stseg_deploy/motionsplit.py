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
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np

SPLIT_MODES = ("none", "motion")
DEFAULT_SPLIT = "motion"
MOTION_TERMS = 6  # per frame and flow component: 1, i, j, i·j, i², j²
MAX_GROUPS = 8  # regions a segment is cut into at most, per window (bounds the time)


@dataclass(frozen=True)
class SplitSettings:
    """``extra``: spare segments a window may add (the output has L + extra); ``min_area``:
    smallest part, as a share of the window's pixels; ``min_gain`` and ``min_residual``:
    the residual that tells two motions apart, the larger of ``min_gain`` × the window's
    mean flow magnitude (|u| + |v|) and ``min_residual`` pixels (at model size, so that
    the noise of a nearly still window splits nothing). A region whose own motion leaves a
    mean L1 residual above it is cut; two groups are joined when one's motion, carried
    over to the other, leaves less."""

    extra: int = 4
    min_area: float = 0.01
    min_gain: float = 0.1
    min_residual: float = 0.1

    def __post_init__(self) -> None:
        if not isinstance(self.extra, int) or not 0 <= self.extra <= 32:
            raise ValueError(f"split extra must be a whole number in [0, 32], got {self.extra!r}")
        if not 0 < self.min_area < 0.5:
            raise ValueError(f"split min_area must be in (0, 0.5), got {self.min_area!r}")
        if not self.min_gain > 0:
            raise ValueError(f"split min_gain must be > 0, got {self.min_gain!r}")
        if not self.min_residual >= 0:
            raise ValueError(f"split min_residual must be >= 0 pixels, got {self.min_residual!r}")

    def as_dict(self) -> dict:
        return asdict(self)


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


def _fit(basis: np.ndarray, flow: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted least squares θ (2, K) of flow (2, N) on basis (K, N)."""
    a = basis * weights
    gram = a @ basis.T + 1e-6 * np.eye(basis.shape[0])
    return np.linalg.solve(gram, a @ flow.T).T


def robust_fit(basis: np.ndarray, flow: np.ndarray, iterations: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """L1 fit by reweighted least squares: (θ (2, K), residual |u − û| + |v − v̂| (N,))."""
    weights = np.ones(flow.shape[1])
    for _ in range(iterations):
        theta = _fit(basis, flow, weights)
        residual = np.abs(flow - theta @ basis).sum(axis=0)
        weights = 1.0 / np.maximum(residual, 1e-3)
    return theta, residual


def _residual(basis: np.ndarray, flow: np.ndarray, theta: np.ndarray) -> np.ndarray:
    return np.abs(flow - theta @ basis).sum(axis=0)


def _carried(basis: np.ndarray, flow: np.ndarray, source: np.ndarray, target: np.ndarray, theta: np.ndarray, plane: int) -> float:
    """Mean L1 residual of ``target``'s flow under ``theta``, the motion fitted to ``source``
    (both flat pixel indices, frames of ``plane`` pixels), on the frames where ``source``
    has pixels to fit: a frame's motion is its own, so on the others it says nothing.
    0 when the two share no frame (then no motion tells them apart)."""
    frames = np.bincount(source // plane, minlength=basis.shape[0] // MOTION_TERMS)
    shared = target[frames[target // plane] >= MOTION_TERMS]
    if shared.size == 0:
        return 0.0
    return float(_residual(basis[:, shared], flow[:, shared], theta).mean())


def split_window(proba: np.ndarray, flow: np.ndarray, settings: SplitSettings, basis: np.ndarray | None = None) -> np.ndarray:
    """One window's probabilities with the segments that hold several motions split.

    A segment's pixels are grouped by connected region (of its union over the window's
    frames); regions whose motions agree are joined again (joining them raises the mean L1
    residual by less than ``min_gain`` of the window's mean flow magnitude); the largest
    group keeps the segment, each other group takes a spare one while there are spares.

    Args:
        proba: (L, T, h, w) float32, the model's probabilities.
        flow: (2, T, h, w) float32, pixels, the window's flows at model size.
        settings: see :class:`SplitSettings`.
        basis: :func:`motion_basis` of (T, h, w), to reuse across windows.

    Returns:
        (L + extra, T, h, w) float32: where segment k is the argmax in a group that moves
        otherwise, its probability moves to a spare segment; spare segments not used are
        zero, so nothing changes where nothing was split.
    """
    n_labels, t, h, w = proba.shape
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
    flat_out = out.reshape(out.shape[0], -1)
    spare = n_labels
    for k in range(n_labels):
        if spare == out.shape[0]:
            break
        groups = _motion_groups(labels == k, basis, vectors, min_pixels, join_cost)
        for pixels in groups[1:]:
            if spare == out.shape[0]:
                break
            flat_out[spare, pixels] = flat_out[k, pixels]
            flat_out[k, pixels] = 0.0
            spare += 1
    return out


def _motion_groups(mask: np.ndarray, basis: np.ndarray, flow: np.ndarray, min_pixels: int, join_cost: float) -> list[np.ndarray]:
    """Flat pixel indices of a segment's groups, largest first (none when it stays whole).

    1. Its connected regions (of the union over frames, 8-connected) of at least
       ``min_pixels`` pixels.
    2. A region one motion does not explain (mean L1 residual of its fit above
       ``join_cost``) is cut in two where a second motion fits better
       (:func:`_split_region`), and the parts are examined again.
    3. Groups are joined while the larger one's motion, carried over, explains the smaller
       one to a mean L1 residual of ``join_cost``. One fit of both would not do: a smooth
       field bridges two small regions that move apart (a linear one already matches any
       two translations at two places).
    """
    import cv2

    plane = mask.shape[1] * mask.shape[2]
    union = mask.any(axis=0).astype(np.uint8)
    count, regions = cv2.connectedComponents(union, connectivity=8)
    owner = np.broadcast_to(regions, mask.shape).ravel()
    inside = mask.ravel()
    queue = [p for p in (np.flatnonzero(inside & (owner == r)) for r in range(1, count)) if p.size >= min_pixels]
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

    The region's robust fit locks onto its main motion, so the pixels it explains worst
    start the second part; then both motions are refitted and each pixel goes to the one
    that fits it better, twice, the parts smoothed (5x5 median per frame) each time. The
    cut is kept when both parts have ``min_pixels`` and the larger part's motion, carried
    over, leaves the smaller one a mean residual above ``join_cost``. Two touching regions
    of about the same size and different motions have no main motion to lock onto and are
    mostly left whole (a two-means start on the flow vectors cut them, but lost more on the
    multi-object proxy than it gained: J_objects 0.707 against 0.730)."""
    sub_basis, sub_flow = basis[:, pixels], flow[:, pixels]
    _, residual = robust_fit(sub_basis, sub_flow)
    if residual.mean() <= join_cost:
        return None
    second = residual > max(join_cost, 2.0 * float(np.median(residual)))
    for _ in range(2):
        second = _smoothed(second, pixels, shape)
        if min(second.sum(), (~second).sum()) < min_pixels:
            return None
        theta_a = robust_fit(sub_basis[:, ~second], sub_flow[:, ~second], iterations=2)[0]
        theta_b = robust_fit(sub_basis[:, second], sub_flow[:, second], iterations=2)[0]
        second = _residual(sub_basis, sub_flow, theta_b) < _residual(sub_basis, sub_flow, theta_a)
    second = _smoothed(second, pixels, shape)
    if min(second.sum(), (~second).sum()) < min_pixels:
        return None
    big, small = (~second, second) if (~second).sum() >= second.sum() else (second, ~second)
    theta = robust_fit(sub_basis[:, big], sub_flow[:, big])[0]
    if _carried(basis, flow, pixels[big], pixels[small], theta, shape[1] * shape[2]) <= join_cost:
        return None
    return pixels[~second], pixels[second]


def _smoothed(second: np.ndarray, pixels: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """A 5x5 median of a region's two-part assignment, frame by frame (outside the region
    counts as the first part)."""
    import cv2

    volume = np.zeros(int(np.prod(shape)), dtype=np.uint8)
    volume[pixels[second]] = 255
    volume = volume.reshape(shape)
    smooth = np.stack([cv2.medianBlur(frame, 5) for frame in volume]).ravel()
    return smooth[pixels] > 127


def split_batch(proba: np.ndarray, flows: np.ndarray, settings: SplitSettings) -> np.ndarray:
    """:func:`split_window` on each window of a batch: proba (B, L, T, h, w), flows
    (B, 2, T, h, w) → (B, L + extra, T, h, w) float32."""
    basis = motion_basis(*proba.shape[2:])
    return np.stack([split_window(p, f, settings, basis) for p, f in zip(proba, flows)])
