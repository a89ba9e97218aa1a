"""Weighted and L1 fits of a block-diagonal motion model, compiled: the motion split's and the
foreground decision's inner loop.

The basis has one block of ``terms`` rows per frame, and the block's first row is 1 exactly
on that frame's pixels (0 elsewhere): each frame's motion is solved on its own pixels from a
``terms`` × ``terms`` normal system. Done with numpy, each fit of a few thousand pixels costs a
dozen small array operations and a LAPACK call per frame, about a millisecond; the motion
split makes thousands of them a video. Here the normal equations are accumulated in one pass
over the pixels and solved by Gaussian elimination with partial pivoting (as LAPACK's
``gesv``; the sums run in another order, so results agree with numpy's to rounding).

All arrays float64; the GIL is released.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["fit_blocks", "block_residual", "robust_fit_blocks"]


@njit(cache=True, nogil=True)
def _solve(a, b):
    """Solve a x = b in place (a: (n, n), b: (n, m)) by elimination with partial pivoting;
    the solution is left in b."""
    n = a.shape[0]
    m = b.shape[1]
    for k in range(n):
        pivot = k
        best = abs(a[k, k])
        for i in range(k + 1, n):
            if abs(a[i, k]) > best:
                best = abs(a[i, k])
                pivot = i
        if best == 0.0:
            raise ValueError("singular normal equations (a block's pixels do not span its terms): fit with a jitter")
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
def _frames(basis, terms, frame):
    """frame[p]: the block whose first row is non-zero at pixel p (-1: none)."""
    for p in range(basis.shape[1]):
        frame[p] = -1
        for start in range(0, basis.shape[0], terms):
            if basis[start, p] != 0.0:
                frame[p] = start // terms
                break


@njit(cache=True, nogil=True)
def _fit(basis, values, weights, frame, terms, ridge, jitter, theta):
    n_blocks = basis.shape[0] // terms
    n_values = values.shape[0]
    gram = np.zeros((n_blocks, terms, terms))
    rhs = np.zeros((n_blocks, terms, n_values))
    weight_sum = np.zeros(n_blocks)
    count = np.zeros(n_blocks, np.int64)
    for p in range(basis.shape[1]):
        f = frame[p]
        if f < 0:
            continue
        start = f * terms
        count[f] += 1
        w = weights[p]
        weight_sum[f] += basis[start, p] * w
        for a in range(terms):
            wa = basis[start + a, p] * w
            for b in range(a, terms):
                gram[f, a, b] += wa * basis[start + b, p]
            for c in range(n_values):
                rhs[f, a, c] += wa * values[c, p]
    theta[:] = 0.0
    for f in range(n_blocks):
        if count[f] == 0:
            continue
        g = gram[f]
        for a in range(terms):
            for b in range(a):
                g[a, b] = g[b, a]
            g[a, a] += jitter
        if ridge > 0.0:
            for a in range(1, terms):
                g[a, a] += ridge * weight_sum[f]
        r = rhs[f]
        _solve(g, r)
        for a in range(terms):
            for c in range(n_values):
                theta[c, f * terms + a] = r[a, c]


@njit(cache=True, nogil=True)
def _residual(basis, values, theta, out):
    n_rows, n_pixels = basis.shape
    for p in range(n_pixels):
        total = 0.0
        for c in range(values.shape[0]):
            estimate = 0.0
            for k in range(n_rows):
                if basis[k, p] != 0.0:  # most of a column is other frames' zeros
                    estimate += theta[c, k] * basis[k, p]
            total += abs(values[c, p] - estimate)
        out[p] = total


@njit(cache=True, nogil=True)
def _framed_residual(basis, values, theta, frame, terms, out):
    """:func:`_residual` reading only each pixel's own block (the others are zero there)."""
    for p in range(basis.shape[1]):
        f = frame[p]
        total = 0.0
        for c in range(values.shape[0]):
            estimate = 0.0
            if f >= 0:
                for a in range(terms):
                    estimate += theta[c, f * terms + a] * basis[f * terms + a, p]
            total += abs(values[c, p] - estimate)
        out[p] = total


@njit(cache=True, nogil=True)
def _robust(basis, values, iterations, terms, ridge, jitter, floor, theta, residual):
    frame = np.empty(basis.shape[1], np.int64)
    _frames(basis, terms, frame)
    # Each frame's pixels in one run (pixel order follows the flat (T, h, w) index, as every
    # subset the motion split takes does): the fits then read contiguous rows, in vectorised
    # sums. Otherwise, pixel by pixel. Frames non-decreasing from a first one >= 0 means no
    # pixel is outside every frame.
    ordered = frame.shape[0] == 0 or frame[0] >= 0
    for p in range(1, frame.shape[0]):
        if frame[p] < frame[p - 1]:
            ordered = False
            break
    n_blocks = basis.shape[0] // terms
    bounds = np.zeros(n_blocks + 1, np.int64)
    if ordered:
        for p in range(frame.shape[0]):
            bounds[frame[p] + 1] += 1
        for f in range(n_blocks):
            bounds[f + 1] += bounds[f]
    rows = np.ascontiguousarray(basis)
    vals = np.ascontiguousarray(values)
    weights = np.ones(basis.shape[1])
    for _ in range(iterations):
        if ordered:
            _fit_runs(rows, vals, weights, bounds, terms, ridge, jitter, theta)
        else:
            _fit(rows, vals, weights, frame, terms, ridge, jitter, theta)
        _framed_residual(rows, vals, theta, frame, terms, residual)
        for p in range(weights.shape[0]):
            weights[p] = 1.0 / max(residual[p], floor)


@njit(cache=True, nogil=True, fastmath=True)
def _fit_runs(rows, values, weights, bounds, terms, ridge, jitter, theta):
    """:func:`_fit` when block f's pixels are the run bounds[f]:bounds[f + 1] of C-ordered
    ``rows`` (K, N): each normal-equation entry one vectorised sum (fastmath lets the sums
    run in any order)."""
    n_values = values.shape[0]
    gram = np.empty((terms, terms))
    rhs = np.empty((terms, n_values))
    theta[:] = 0.0
    for f in range(bounds.shape[0] - 1):
        lo, hi = bounds[f], bounds[f + 1]
        if hi == lo:
            continue
        start = f * terms
        weight_sum = 0.0
        for p in range(lo, hi):
            weight_sum += rows[start, p] * weights[p]
        for a in range(terms):
            for b in range(a, terms):
                total = 0.0
                for p in range(lo, hi):
                    total += rows[start + a, p] * weights[p] * rows[start + b, p]
                gram[a, b] = total
                gram[b, a] = total
            for c in range(n_values):
                total = 0.0
                for p in range(lo, hi):
                    total += rows[start + a, p] * weights[p] * values[c, p]
                rhs[a, c] = total
        for a in range(terms):
            gram[a, a] += jitter
        if ridge > 0.0:
            for a in range(1, terms):
                gram[a, a] += ridge * weight_sum
        _solve(gram, rhs)
        for a in range(terms):
            for c in range(n_values):
                theta[c, start + a] = rhs[a, c]


def _checked(basis: np.ndarray, values: np.ndarray, terms: int) -> tuple[np.ndarray, np.ndarray]:
    basis = np.asarray(basis, dtype=np.float64)  # any strides: a copy would cost more than the fit
    values = np.asarray(values, dtype=np.float64)
    if basis.ndim != 2 or values.ndim != 2 or values.shape[1] != basis.shape[1]:
        raise ValueError(f"basis (K, N) and values (C, N) must share N, got {basis.shape} and {values.shape}")
    if terms < 1 or basis.shape[0] % terms:
        raise ValueError(f"basis rows ({basis.shape[0]}) must be whole blocks of {terms} terms")
    return basis, values


def fit_blocks(basis: np.ndarray, values: np.ndarray, weights: np.ndarray, terms: int, ridge: float = 0.0, jitter: float = 0.0) -> np.ndarray:
    """Weighted least squares, block by block.

    Args:
        basis: (K, N) float64, K = blocks · ``terms``; each block's first row is the frame's
            indicator (non-zero exactly on its pixels; the motion basis's constant term).
        values: (C, N) float64, what is fitted (flow u and v: C = 2).
        weights: (N,) float64, each pixel's weight.
        terms: rows per block.
        ridge: added, times the block's summed weight (first row times weights), to the
            diagonal of every term but the first.
        jitter: added to the whole diagonal.

    Returns:
        θ (C, K) float64, 0 on a block without pixels.
    """
    basis, values = _checked(basis, values, terms)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.shape != (basis.shape[1],):  # numba does not check bounds: a short array would be read past its end
        raise ValueError(f"weights must have shape ({basis.shape[1]},), got {weights.shape}")
    theta = np.empty((values.shape[0], basis.shape[0]))
    frame = np.empty(basis.shape[1], np.int64)
    _frames(basis, terms, frame)
    _fit(basis, values, weights, frame, terms, float(ridge), float(jitter), theta)
    return theta


def block_residual(basis: np.ndarray, values: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Σ_c |values[c] − (θ basis)[c]| (N,) float64: the L1 residual of every pixel, for
    values (C, N), θ (C, K) and basis (K, N), any block size."""
    basis = np.asarray(basis, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    theta = np.asarray(theta, dtype=np.float64)
    if values.shape[1] != basis.shape[1] or theta.shape != (values.shape[0], basis.shape[0]):
        raise ValueError(f"expected values (C, N), theta (C, K), basis (K, N), got {values.shape}, {theta.shape}, {basis.shape}")
    out = np.empty(basis.shape[1])
    _residual(basis, values, theta, out)
    return out


def robust_fit_blocks(
    basis: np.ndarray, values: np.ndarray, iterations: int, terms: int, ridge: float, jitter: float, floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """L1 fit by reweighted least squares: ``iterations`` fits (:func:`fit_blocks`), the first
    unweighted, each next one weighted by 1 / max(residual, ``floor``). Returns θ (C, K) and
    the last fit's residual (N,) (:func:`block_residual`)."""
    basis, values = _checked(basis, values, terms)
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    theta = np.empty((values.shape[0], basis.shape[0]))
    residual = np.empty(basis.shape[1])
    _robust(basis, values, int(iterations), terms, float(ridge), float(jitter), float(floor), theta, residual)
    return theta, residual
