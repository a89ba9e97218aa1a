"""Exact maximum-weight perfect matching on a small square matrix (Hungarian method).

Shortest-augmenting-path form with row/column potentials, O(n^3); n is the number of
labels (a handful), so this is microseconds per window.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["assign_max"]


@njit(cache=True)
def assign_max(weights):
    """Permutation ``col`` maximising ``sum_i weights[i, col[i]]``.

    weights: (n, n) float64. Returns (n,) int64, a permutation of 0..n-1. Among several
    optimal permutations, which one is returned is unspecified.
    """
    n = weights.shape[0]
    inf = np.inf
    # Minimise the negated weights; index 0 of u, v, p, way is the usual virtual slot,
    # so rows and columns are 1-based inside the loop.
    u = np.zeros(n + 1)
    v = np.zeros(n + 1)
    p = np.zeros(n + 1, np.int64)  # p[j]: row matched to column j (0: none)
    way = np.zeros(n + 1, np.int64)
    min_v = np.empty(n + 1)
    used = np.empty(n + 1, np.bool_)
    for i in range(1, n + 1):
        p[0] = i
        j0 = 0
        min_v[:] = inf
        used[:] = False
        while True:
            used[j0] = True
            i0 = p[j0]
            delta = inf
            j1 = 0
            for j in range(1, n + 1):
                if not used[j]:
                    cur = -weights[i0 - 1, j - 1] - u[i0] - v[j]
                    if cur < min_v[j]:
                        min_v[j] = cur
                        way[j] = j0
                    if min_v[j] < delta:
                        delta = min_v[j]
                        j1 = j
            for j in range(n + 1):
                if used[j]:
                    u[p[j]] += delta
                    v[j] -= delta
                else:
                    min_v[j] -= delta
            j0 = j1
            if p[j0] == 0:
                break
        while j0 != 0:
            j1 = way[j0]
            p[j0] = p[j1]
            j0 = j1
    col = np.empty(n, np.int64)
    for j in range(1, n + 1):
        col[p[j] - 1] = j - 1
    return col
