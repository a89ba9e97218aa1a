"""stseg_kernels.scores: the per-frame Jaccard index, bit-identical to the numpy reference."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from kernel_strategies import selection_cases

from stseg_kernels import jaccard
from stseg_kernels.reference import jaccard_reference

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=200, **SETTINGS)
@given(selection_cases(labels=(2, 3)))
def test_jaccard_is_bit_identical_to_reference(case):
    labels, gt, _, _, _ = case
    pred = labels == 1
    got = jaccard(gt, pred)
    assert got.dtype == np.float64 and got.shape == (len(labels),)
    np.testing.assert_array_equal(got, jaccard_reference(gt, pred))
    np.testing.assert_array_equal(jaccard(gt, labels), jaccard_reference(gt, labels))  # ints: non-zero


def test_jaccard_edge_cases():
    empty = np.zeros((2, 3, 3), bool)
    full = np.ones((2, 3, 3), bool)
    np.testing.assert_array_equal(jaccard(empty, empty), [1.0, 1.0])
    np.testing.assert_array_equal(jaccard(empty, full), [0.0, 0.0])
    np.testing.assert_array_equal(jaccard(full, full), [1.0, 1.0])
    assert jaccard(np.eye(3, dtype=bool), np.ones((3, 3), np.uint8) * 255).tolist() == [1 / 3]
    assert jaccard(np.zeros((0, 4, 4), bool), np.zeros((0, 4, 4), bool)).shape == (0,)
    np.testing.assert_array_equal(jaccard(np.zeros((2, 0, 5), bool), np.zeros((2, 0, 5), bool)), [1.0, 1.0])
