from __future__ import annotations

import numpy as np

from stseg_deploy.eval.binarise import binarise_exceptbiggest, binarise_fair


def test_exceptbiggest_drops_largest_segment() -> None:
    labels = np.array([[0, 0, 1], [2, 2, 2], [3, 2, 2]])
    np.testing.assert_array_equal(binarise_exceptbiggest(labels, 4), labels != 2)


def test_exceptbiggest_tie_goes_to_lowest_label() -> None:
    labels = np.array([[1, 1, 3, 3]])
    np.testing.assert_array_equal(binarise_exceptbiggest(labels, 4), labels == 3)


def test_fair_uses_strict_majority() -> None:
    labels = np.array([[0, 0, 1, 1, 2, 2, 2]])
    gt = np.array([[True, False, True, True, True, False, False]])
    # label 0: 1 of 2 inside (not more than half); label 1: 2 of 2; label 2: 1 of 3.
    np.testing.assert_array_equal(binarise_fair(labels, gt, 3), labels == 1)


def test_fair_matches_loop_reference() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        labels = rng.integers(0, 5, (6, 7))
        gt = rng.random((6, 7)) < 0.4
        expected = np.zeros_like(gt)
        for k in range(5):
            seg = labels == k
            if seg.sum() and (seg & gt).sum() > seg.sum() / 2:
                expected |= seg
        np.testing.assert_array_equal(binarise_fair(labels, gt, 5), expected)
