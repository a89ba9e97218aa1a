"""Weighted and L1 fits of the motion model to some pixels of a (T, h, w) grid of flow, named by
their flat indices (:class:`MotionGrid`): the inner loop of the motion split and of the
foreground decision.

The model: per frame and flow component 1, i, j, i·j, i², j² (i rows, j columns, both on
[-1, 1]; :func:`quadratic_terms`), or its first three terms (an affine motion); each frame
has its own. Fits read the pixels' places, not columns of a basis: a caller gathers nothing
per fit, and each pixel is read once per reweighting, a run of one frame's pixels summed in
scalars. Each frame's normal system is then solved by Gaussian elimination with partial
pivoting (as LAPACK's ``gesv``). The sums run in another order than numpy's, so results agree
with a basis fit (``stseg_kernels.reference``) to rounding.

All arrays float64, indices int64; the GIL is released.
"""

from __future__ import annotations

import functools

import numpy as np
from numba import njit

__all__ = ["QUADRATIC_TERMS", "MotionGrid", "quadratic_terms"]

# Per frame and component: 1, i, j, i·j, i², j².
QUADRATIC_TERMS = 6
# The affine model is the first three.
AFFINE_TERMS = 3
# Per frame: the 21 sums of the symmetric 6 x 6 normal matrix (upper triangle, row by row;
# the first, Σ w·1·1, is the frame's summed weight), the 6 right-hand sums of u and of v, the
# pixel count.
_SUMS = 21 + 2 * QUADRATIC_TERMS + 1
_U, _V, _COUNT = 21, 21 + QUADRATIC_TERMS, 33


@functools.lru_cache(maxsize=8)
def _axes(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    rows, cols = np.linspace(-1, 1, h), np.linspace(-1, 1, w)
    rows.setflags(write=False)
    cols.setflags(write=False)
    return rows, cols


def quadratic_terms(h: int, w: int) -> np.ndarray:
    """(6, h·w) float64: 1, i, j, i·j, i², j² at every pixel of an h x w frame, i and j on
    [-1, 1] whatever the size (so the terms are alike in scale on every grid)."""
    rows, cols = _axes(h, w)
    ii, jj = np.meshgrid(rows, cols, indexing="ij")
    return np.stack([np.ones_like(ii), ii, jj, ii * jj, ii * ii, jj * jj]).reshape(QUADRATIC_TERMS, -1)


@njit(cache=True, nogil=True)
def _gathered(pixels, flow, rows, cols):
    """Each pixel's frame, row and column coordinates (on [-1, 1]) and flow, (N,) arrays."""
    n = pixels.shape[0]
    frame = np.empty(n, np.int64)
    ii, jj, uu, vv = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    width = cols.shape[0]
    plane = rows.shape[0] * width
    size = flow.shape[1]
    for q in range(n):
        p = pixels[q]
        if p < 0 or p >= size:
            raise ValueError("a pixel index is outside the grid")
        f = p // plane
        rc = p - f * plane
        r = rc // width
        frame[q] = f
        ii[q] = rows[r]
        jj[q] = cols[rc - r * width]
        uu[q] = flow[0, p]
        vv[q] = flow[1, p]
    return frame, ii, jj, uu, vv


@njit(cache=True, nogil=True, fastmath=True)
def _accumulate(frame, ii, jj, uu, vv, weights, sums):
    """sums (F, _SUMS): each frame's weighted normal equations of the quadratic model. A run
    of pixels in one frame is summed in scalars (registers), then added to its frame's row."""
    sums[:] = 0.0
    n = frame.shape[0]
    q = 0
    while q < n:
        f = frame[q]
        end = q
        while end < n and frame[end] == f:
            end += 1
        g00 = g01 = g02 = g03 = g04 = g05 = g11 = g12 = g13 = g14 = g15 = 0.0
        g22 = g23 = g24 = g25 = g33 = g34 = g35 = g44 = g45 = g55 = 0.0
        u0 = u1 = u2 = u3 = u4 = u5 = v0 = v1 = v2 = v3 = v4 = v5 = 0.0
        for x in range(q, end):
            i = ii[x]
            j = jj[x]
            m3 = i * j
            m4 = i * i
            m5 = j * j
            w = weights[x]
            wi = w * i
            wj = w * j
            w3 = w * m3
            w4 = w * m4
            w5 = w * m5
            g00 += w
            g01 += wi
            g02 += wj
            g03 += w3
            g04 += w4
            g05 += w5
            g11 += wi * i
            g12 += wi * j
            g13 += wi * m3
            g14 += wi * m4
            g15 += wi * m5
            g22 += wj * j
            g23 += wj * m3
            g24 += wj * m4
            g25 += wj * m5
            g33 += w3 * m3
            g34 += w3 * m4
            g35 += w3 * m5
            g44 += w4 * m4
            g45 += w4 * m5
            g55 += w5 * m5
            u = uu[x] * w
            v = vv[x] * w
            u0 += u
            u1 += u * i
            u2 += u * j
            u3 += u * m3
            u4 += u * m4
            u5 += u * m5
            v0 += v
            v1 += v * i
            v2 += v * j
            v3 += v * m3
            v4 += v * m4
            v5 += v * m5
        # The run's sums in the row's order (the normal matrix's upper triangle row by row,
        # then u's and v's right-hand sides): one loop adds them to the frame's row.
        run = (g00, g01, g02, g03, g04, g05, g11, g12, g13, g14, g15, g22, g23, g24, g25, g33, g34, g35, g44, g45, g55,
               u0, u1, u2, u3, u4, u5, v0, v1, v2, v3, v4, v5)
        s = sums[f]
        for k in range(len(run)):
            s[k] += run[k]
        s[_COUNT] += end - q
        q = end


@njit(cache=True, nogil=True)
def _solve(a, b):
    """Solve a x = b in place (a: (n, n), b: (n, m)) by elimination with partial pivoting;
    the solution is left in b."""
    n = a.shape[0]
    m = b.shape[1]
    # A pivot this small against the largest diagonal entry means no solution worth the
    # name (the system is singular to rounding). A jitter j on the diagonal keeps every
    # pivot of these symmetric positive systems at j or more, far above it.
    tiny = 0.0
    for k in range(n):
        tiny = max(tiny, abs(a[k, k]))
    tiny *= 1e-12
    for k in range(n):
        pivot = k
        best = abs(a[k, k])
        for i in range(k + 1, n):
            if abs(a[i, k]) > best:
                best = abs(a[i, k])
                pivot = i
        if not best > tiny:
            raise ValueError("singular normal equations (a frame's pixels do not span its terms): fit with a jitter")
        if pivot != k:
            for j in range(n):
                a[k, j], a[pivot, j] = a[pivot, j], a[k, j]
            for j in range(m):
                b[k, j], b[pivot, j] = b[pivot, j], b[k, j]
        for i in range(k + 1, n):
            factor = a[i, k] / a[k, k]
            for j in range(k + 1, n):
                a[i, j] -= factor * a[k, j]
            for j in range(m):
                b[i, j] -= factor * b[k, j]
    for k in range(n - 1, -1, -1):
        for j in range(m):
            total = b[k, j]
            for i in range(k + 1, n):
                total -= a[k, i] * b[i, j]
            b[k, j] = total / a[k, k]


@njit(cache=True, nogil=True)
def _solve_frames(sums, terms, ridge, jitter, theta):
    """θ (2, F·terms) from each frame's sums: the first ``terms`` rows and columns of its
    normal matrix (an affine fit's equations are the quadratic's top-left block)."""
    gram = np.empty((terms, terms))
    rhs = np.empty((terms, 2))
    theta[:] = 0.0
    for f in range(sums.shape[0]):
        s = sums[f]
        if s[_COUNT] == 0.0:
            continue
        k = 0
        for a in range(QUADRATIC_TERMS):
            for b in range(a, QUADRATIC_TERMS):
                if b < terms:
                    gram[a, b] = s[k]
                    gram[b, a] = s[k]
                k += 1
        for a in range(terms):
            gram[a, a] += jitter
            rhs[a, 0] = s[_U + a]
            rhs[a, 1] = s[_V + a]
        if ridge > 0.0:
            for a in range(1, terms):
                gram[a, a] += ridge * s[0]
        _solve(gram, rhs)
        for a in range(terms):
            theta[0, f * terms + a] = rhs[a, 0]
            theta[1, f * terms + a] = rhs[a, 1]


@njit(cache=True, nogil=True, fastmath=True)
def _residual(frame, ii, jj, uu, vv, terms, theta, out):
    for q in range(frame.shape[0]):
        i = ii[q]
        j = jj[q]
        k = frame[q] * terms
        eu = theta[0, k] + theta[0, k + 1] * i + theta[0, k + 2] * j
        ev = theta[1, k] + theta[1, k + 1] * i + theta[1, k + 2] * j
        if terms == QUADRATIC_TERMS:
            eu += theta[0, k + 3] * (i * j) + theta[0, k + 4] * (i * i) + theta[0, k + 5] * (j * j)
            ev += theta[1, k + 3] * (i * j) + theta[1, k + 4] * (i * i) + theta[1, k + 5] * (j * j)
        out[q] = abs(uu[q] - eu) + abs(vv[q] - ev)


@njit(cache=True, nogil=True)
def _robust(pixels, flow, rows, cols, weights, terms, iterations, ridge, jitter, floor, theta, residual):
    n = pixels.shape[0]
    frame, ii, jj, uu, vv = _gathered(pixels, flow, rows, cols)
    sums = np.empty((theta.shape[1] // terms, _SUMS))
    for it in range(iterations):
        if it > 0:
            for q in range(n):
                weights[q] = 1.0 / max(residual[q], floor)
        _accumulate(frame, ii, jj, uu, vv, weights, sums)
        _solve_frames(sums, terms, ridge, jitter, theta)
        _residual(frame, ii, jj, uu, vv, terms, theta, residual)


@njit(cache=True, nogil=True)
def _residual_of(pixels, flow, rows, cols, terms, theta, out):
    frame, ii, jj, uu, vv = _gathered(pixels, flow, rows, cols)
    _residual(frame, ii, jj, uu, vv, terms, theta, out)


@njit(cache=True, nogil=True)
def _consensus(pixels, flow, rows, cols, centers, radius, threshold, jitter, best):
    n = pixels.shape[0]
    frame, ii, jj, uu, vv = _gathered(pixels, flow, rows, cols)
    width = cols.shape[0]
    row = (pixels % (rows.shape[0] * width)) // width
    col = pixels % width
    near = np.empty(n, np.int64)
    ones = np.ones(n)
    sums = np.empty((flow.shape[1] // (rows.shape[0] * width), _SUMS))
    theta = np.empty((2, sums.shape[0] * AFFINE_TERMS))
    residual = np.empty(n)
    best_count = -1
    for center in centers:
        k = 0
        for q in range(n):
            if abs(row[q] - row[center]) <= radius and abs(col[q] - col[center]) <= radius:
                near[k] = q
                k += 1
        chosen = near[:k]
        _accumulate(frame[chosen], ii[chosen], jj[chosen], uu[chosen], vv[chosen], ones[:k], sums)
        _solve_frames(sums, AFFINE_TERMS, 0.0, jitter, theta)
        _residual(frame, ii, jj, uu, vv, AFFINE_TERMS, theta, residual)
        count = 0
        for q in range(n):
            if residual[q] <= threshold:
                count += 1
        if count > best_count:
            best_count = count
            for q in range(n):
                best[q] = residual[q] <= threshold


class MotionGrid:
    """The flow of a (T, h, w) grid, checked once, for the L1 motion of any of its pixels.

    flow: (2, T, h, w) float, pixels: u and v at every pixel. Pixels are then named by flat
    index into (T, h, w) (int64; a frame's pixels in one run, as a sorted or concatenated set
    of sorted indices gives them, are summed fastest); an index outside the grid is refused.
    """

    def __init__(self, flow: np.ndarray) -> None:
        flow = np.asarray(flow)
        if flow.ndim != 4 or flow.shape[0] != 2 or min(flow.shape) < 1:
            raise ValueError(f"flow must be (2, T, h, w) with every size positive, got {flow.shape}")
        self.shape: tuple[int, int, int] = tuple(int(s) for s in flow.shape[1:])
        self.flow = np.ascontiguousarray(flow.reshape(2, -1), dtype=np.float64)
        self._rows, self._cols = _axes(self.shape[1], self.shape[2])

    def fit(
        self,
        pixels: np.ndarray,
        iterations: int,
        *,
        terms: int = QUADRATIC_TERMS,
        ridge: float = 0.0,
        jitter: float = 0.0,
        floor: float = 1e-3,
        weights: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """L1 motion of ``pixels`` (N,), by reweighted least squares.

        Args:
            iterations: fits, the first weighted by ``weights`` (none: 1 each), each next
                one by 1 / max(residual, ``floor``) of the one before (1: one weighted least
                squares fit).
            terms: 6 (quadratic) or 3 (affine) per frame and component.
            ridge: added, times the frame's summed weight, to the diagonal of every term but
                the constant.
            jitter: added to the whole diagonal.
            floor: the smallest residual a weight is taken from, pixels.
            weights: (N,) float, the first fit's weight of each pixel.

        Returns:
            θ (2, T·terms) float64 (frame f's terms from f·terms; 0 on a frame without
            pixels) and the last fit's residual |u − û| + |v − v̂| (N,) float64, pixels.
        """
        if not _whole(terms) or terms not in (AFFINE_TERMS, QUADRATIC_TERMS):
            raise ValueError(f"terms must be {AFFINE_TERMS} or {QUADRATIC_TERMS}, got {terms!r}")
        if not _whole(iterations) or iterations < 1:
            raise ValueError(f"iterations must be a whole number >= 1, got {iterations!r}")
        pixels = _flat(pixels)
        if weights is None:
            first = np.ones(pixels.shape[0])
        else:
            # a copy: the fit overwrites it with the reweighting's weights
            first = np.array(weights, dtype=np.float64)
            if first.shape != pixels.shape:  # numba does not check bounds
                raise ValueError(f"weights must have shape {pixels.shape}, one per pixel, got {first.shape}")
            if not (np.isfinite(first).all() and (first >= 0).all()):
                raise ValueError("weights must be finite and >= 0")
        theta = np.empty((2, self.shape[0] * terms))
        residual = np.empty(pixels.shape[0])
        _robust(pixels, self.flow, self._rows, self._cols, first, terms, int(iterations), float(ridge), float(jitter), float(floor), theta, residual)
        return theta, residual

    def residual(self, pixels: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """|u − û| + |v − v̂| (N,) float64, pixels, at ``pixels`` (N,) under the motion θ
        (2, T·terms) of :meth:`fit` (terms 6 or 3, from θ's width)."""
        t = self.shape[0]
        theta = np.asarray(theta)
        if theta.shape not in ((2, AFFINE_TERMS * t), (2, QUADRATIC_TERMS * t)):
            raise ValueError(f"theta must be (2, {AFFINE_TERMS * t}) or (2, {QUADRATIC_TERMS * t}) for {t} frames, got {theta.shape}")
        pixels = _flat(pixels)
        out = np.empty(pixels.shape[0])
        _residual_of(pixels, self.flow, self._rows, self._cols, theta.shape[1] // t, np.ascontiguousarray(theta, dtype=np.float64), out)
        return out

    def consensus(self, pixels: np.ndarray, centers: np.ndarray, radius: int, threshold: float, *, jitter: float = 0.0) -> np.ndarray:
        """(N,) bool: the pixels of ``pixels`` (N,) that the best-supported patch motion
        explains. Around each of ``centers`` (positions in ``pixels``), the pixels within
        ``radius`` rows and columns (every frame) get their least-squares affine motion
        (:meth:`fit`, terms 3, one iteration); a pixel is its inlier where the L1 residual is
        within ``threshold`` pixels, and the motion with most inliers wins (the first on ties).
        """
        pixels = _flat(pixels)
        centers = _flat(centers, "centers")
        if centers.size and (centers.min() < 0 or centers.max() >= pixels.shape[0]):
            raise ValueError(f"centers must be positions in pixels (0 to {pixels.shape[0] - 1})")
        best = np.zeros(pixels.shape[0], np.bool_)
        _consensus(pixels, self.flow, self._rows, self._cols, centers, int(radius), float(threshold), float(jitter), best)
        return best


def _whole(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _flat(indices: np.ndarray, name: str = "pixels") -> np.ndarray:
    """``indices`` as a 1-D int64 array (no copy when it is one already)."""
    if not (isinstance(indices, np.ndarray) and indices.dtype == np.int64 and indices.ndim == 1):
        indices = np.asarray(indices)
        if indices.ndim != 1 or not (np.issubdtype(indices.dtype, np.integer) or indices.size == 0):
            raise ValueError(f"{name} must be a 1-D array of flat integer indices, got {indices.dtype} {indices.shape}")
        indices = indices.astype(np.int64)
    return indices
