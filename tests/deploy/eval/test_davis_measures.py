"""The DAVIS measures against cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stseg_deploy.eval.davis_measures import (
    boundary_f,
    boundary_f_counts,
    boundary_map,
    boundary_radius,
    disk,
    region_similarity,
    statistics,
)


def _square(size=(20, 20), top=5, left=5, side=6) -> np.ndarray:
    mask = np.zeros(size, bool)
    mask[top : top + side, left : left + side] = True
    return mask


def test_ground_truth_against_itself_scores_one() -> None:
    gt = _square()
    assert region_similarity(gt, gt) == 1.0 and boundary_f(gt, gt) == 1.0
    empty = np.zeros((20, 20), bool)
    assert region_similarity(empty, empty) == 1.0 and boundary_f(empty, empty) == 1.0


def test_region_similarity_by_hand() -> None:
    # 6x6 and the same square shifted right by 3: overlap 18, union 54.
    assert region_similarity(_square(left=8), _square()) == pytest.approx(18 / 54)
    assert region_similarity(np.zeros((20, 20), bool), _square()) == 0.0


def test_boundary_map_of_a_square() -> None:
    bmap = boundary_map(_square(side=3, top=2, left=2))
    # A pixel is boundary when it differs from its right, lower or lower-right neighbour:
    # inside the square, rows/columns 2..4; the pixels just above-left of it see it too.
    expected = np.zeros((20, 20), bool)
    expected[1:5, 1] = True
    expected[1, 1:5] = True
    expected[4, 2:5] = True
    expected[2:5, 4] = True
    np.testing.assert_array_equal(bmap, expected)


def test_disk() -> None:
    np.testing.assert_array_equal(disk(1), [[0, 1, 0], [1, 1, 1], [0, 1, 0]])
    assert disk(2).sum() == 13


def test_boundary_f_by_hand() -> None:
    # 20x20: diagonal 28.3, tolerance ceil(0.226) = 1 pixel. A square shifted by 1 pixel
    # matches every boundary pixel; shifted by 4 it matches only where the outlines cross.
    gt = _square()
    assert boundary_f(_square(left=6), gt) == 1.0
    far = boundary_f(_square(left=9), gt)
    assert 0 < far < 0.6
    # Prediction empty, ground truth not: precision 1, recall 0, F 0.
    assert boundary_f(np.zeros((20, 20), bool), gt) == 0.0
    # A 2-pixel tolerance given in pixels matches the 2-pixel shift, 1 pixel does not.
    assert boundary_f(_square(left=7), gt, bound_th=2) == 1.0
    assert boundary_f(_square(left=7), gt, bound_th=1) < 1.0


def test_statistics_by_hand() -> None:
    # 8 frames: ids = round(linspace(1, 8, 5) + 1e-10) - 1 = [0, 2, 4, 5, 7] (2.75 -> 3,
    # 4.5 + 1e-10 -> 5, 6.25 -> 6); bins [0:3], [2:5], [4:6], [5:8]: first 1, 1, 1; last v5..v7.
    values = np.array([1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2, 0.0])
    mean, recall, decay = statistics(values)
    assert mean == pytest.approx(0.625) and recall == pytest.approx(5 / 8)
    assert decay == pytest.approx(1.0 - (0.4 + 0.2 + 0.0) / 3)
    assert all(math.isnan(v) for v in statistics(np.array([])))


def test_boundary_f_from_counts() -> None:
    # Elementwise over arrays, with boundary_f's edge cases: both empty 1, one empty 0.
    out = boundary_f_counts(np.array([0, 0, 4, 4]), np.array([0, 4, 0, 8]), np.array([0, 0, 0, 2]), np.array([0, 0, 0, 4]))
    np.testing.assert_allclose(out, [1.0, 0.0, 0.0, 0.5])  # last: P = 2/4, R = 4/8
    assert boundary_radius((20, 20)) == 1 and boundary_radius((480, 854)) == 8 and boundary_radius((480, 854), 3) == 3
