"""The pixel-counting primitive behind linking and selection, on sizes the small cases miss."""

from __future__ import annotations

import numpy as np
import pytest

from stseg_kernels._counting import pair_table


@pytest.mark.parametrize("n_pix", [0, 1, 255, 256, 257, 16128, 16129, 90001])
@pytest.mark.parametrize(("n_a", "n_b"), [(1, 1), (2, 2), (4, 2), (4, 4), (3, 5), (9, 9)])
@pytest.mark.parametrize("style", ["random", "constant"])
def test_pair_table_matches_bincount(n_pix, n_a, n_b, style):
    rng = np.random.default_rng(n_pix + 7 * n_a + n_b)
    if style == "random":
        a = rng.integers(0, n_a, n_pix)
        b = rng.integers(0, n_b, n_pix)
    else:  # one code everywhere: the byte counters see their maximum load
        a = np.full(n_pix, n_a - 1)
        b = np.full(n_pix, n_b - 1)
    want = np.bincount(a * n_b + b, minlength=n_a * n_b).reshape(n_a, n_b)
    for dtype in (np.uint8, np.int64):
        table = np.full((n_a, n_b), -1, np.int64)
        pair_table(a.astype(dtype), b.astype(dtype), n_a, n_b, table)
        np.testing.assert_array_equal(table, want)
