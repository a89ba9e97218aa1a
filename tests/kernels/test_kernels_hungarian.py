"""The exact assignment solver behind method="optimal"."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stseg_kernels._hungarian import assign_max


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**32 - 1), st.booleans())
def test_assign_max_matches_brute_force(n, seed, coarse):
    rng = np.random.default_rng(seed)
    # Coarse integer weights make many optimal permutations (ties); fine ones, few.
    weights = rng.integers(0, 3, (n, n)).astype(float) if coarse else rng.random((n, n)) * 2
    col = assign_max(weights)
    assert sorted(col.tolist()) == list(range(n))
    best = max(weights[np.arange(n), list(p)].sum() for p in itertools.permutations(range(n)))
    assert weights[np.arange(n), col].sum() >= best - 1e-12


def test_assign_max_no_swap_improves_for_16_labels():
    rng = np.random.default_rng(0)
    for _ in range(50):
        weights = rng.random((16, 16)) * 2
        col = assign_max(weights)
        assert sorted(col.tolist()) == list(range(16))
        total = weights[np.arange(16), col].sum()
        for i, j in itertools.combinations(range(16), 2):
            swapped = col.copy()
            swapped[[i, j]] = swapped[[j, i]]
            assert weights[np.arange(16), swapped].sum() <= total + 1e-12
