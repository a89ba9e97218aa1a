"""FBMS-59's own measure (stseg_deploy.eval.fbms_measures), as MoSegEval_PR / MoSegEvalAll_PR define it.

Fixtures are a few pixels so that every expected P, R and F is worked out by hand in the
comments (pixels are listed left to right; "bg" is region 0).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from stseg_deploy.eval.fbms_measures import FBMS_THRESHOLD, FbmsShot, fbms_overall, fbms_shot
from stseg_deploy.eval.multiobject import NO_SEGMENT
from stseg_deploy.io.masks import VOID


def _shot(labels: list, regions: list) -> tuple[np.ndarray, np.ndarray]:
    """One frame of one pixel row, or several frames given as a list of rows: (S, 1, W)."""
    lab = np.array(labels, dtype=np.int64)
    reg = np.array(regions, dtype=np.uint8)
    if lab.ndim == 1:
        lab, reg = lab[None], reg[None]
    return lab[:, None, :], reg[:, None, :]


def _hand_case() -> tuple[np.ndarray, np.ndarray]:
    """Two regions, three clusters, over two frames.

    bg = 6 pixels: 4 in c0, 2 in c1; object 1 = 4 pixels: 3 in c0, 1 in c2.
    Cluster sizes c0 = 7, c1 = 2, c2 = 1.
    """
    return _shot([[0, 0, 0, 0, 1], [1, 0, 0, 0, 2]], [[0, 0, 0, 0, 0], [0, 1, 1, 1, 1]])


def _more_regions_case() -> tuple[np.ndarray, np.ndarray]:
    """Three regions, two clusters: c0 = bg exactly; c1 = object 1 (4 px) + object 2 (1 px)."""
    return _shot([0, 0, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1, 2])


def _assert_same(a: FbmsShot, b: FbmsShot) -> None:
    for name in ("regions", "cluster", "precision", "recall", "fmeasure"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("avg_precision", "avg_recall", "f", "extracted", "visible_objects"):
        assert getattr(a, name) == getattr(b, name), name


def test_a_perfect_segmentation_scores_one_and_extracts_every_object() -> None:
    # Labels name the regions under another numbering: bg -> 2, 1 -> 0, 2 -> 1.
    labels, regions = _shot([2, 2, 0, 0, 1, 1], [0, 0, 1, 1, 2, 2])
    shot = fbms_shot(labels, regions, 3)
    assert shot.regions.tolist() == [0, 1, 2] and shot.cluster.tolist() == [2, 0, 1]
    np.testing.assert_array_equal(shot.precision, 1.0)
    np.testing.assert_array_equal(shot.recall, 1.0)
    np.testing.assert_array_equal(shot.fmeasure, 1.0)
    assert shot.avg_precision == shot.avg_recall == shot.f == 1.0
    assert shot.extracted == 2 and shot.visible_objects == 2


def test_hand_computed_two_regions_three_clusters() -> None:
    labels, regions = _hand_case()
    shot = fbms_shot(labels, regions, 3)
    # Pairs (P, R, F):
    #   bg-c0: 4/7, 4/6, 2(4/7)(2/3)/(4/7 + 2/3) = (16/21)/(26/21) = 8/13 ~ 0.615
    #   bg-c1: 2/2 = 1, 2/6 = 1/3, 2(1/3)/(4/3) = 1/2
    #   bg-c2: 0
    #   1-c0:  3/7, 3/4, 2(9/28)/(33/28) = 6/11 ~ 0.545
    #   1-c1:  0
    #   1-c2:  1/1 = 1, 1/4, 2(1/4)/(5/4) = 2/5
    # Both regions' best cluster is c0; one-to-one: bg-c1 + 1-c0 = 1/2 + 6/11 ~ 1.045 beats
    # bg-c0 + 1-c2 = 8/13 + 2/5 ~ 1.015 (and every other pairing). c2 is left over.
    assert shot.regions.tolist() == [0, 1] and shot.cluster.tolist() == [1, 0]
    np.testing.assert_allclose(shot.precision, [1.0, 3 / 7])
    np.testing.assert_allclose(shot.recall, [1 / 3, 3 / 4])
    np.testing.assert_allclose(shot.fmeasure, [1 / 2, 6 / 11])
    # avgP = (1 + 3/7)/2 = 5/7; avgR = (1/3 + 3/4)/2 = 13/24;
    # F = 2(5/7)(13/24)/(5/7 + 13/24) = (130/168)/(211/168) = 130/211.
    assert shot.avg_precision == pytest.approx(5 / 7)
    assert shot.avg_recall == pytest.approx(13 / 24)
    assert shot.f == pytest.approx(130 / 211)
    # No F above 0.75: 0 - 1, floored at 0. One visible object (object 1).
    assert shot.extracted == 0 and shot.visible_objects == 1


def test_a_region_left_without_a_cluster_scores_precision_one_recall_zero() -> None:
    labels, regions = _more_regions_case()
    shot = fbms_shot(labels, regions, 2)
    # bg-c0: P = R = F = 1. c1 (5 px): 1-c1 P = 4/5, R = 1, F = 1.6/1.8 = 8/9;
    # 2-c1 P = 1/5, R = 1, F = 0.4/1.2 = 1/3. c1 goes to object 1; object 2 gets none.
    assert shot.cluster.tolist() == [0, 1, NO_SEGMENT]
    np.testing.assert_allclose(shot.precision, [1.0, 4 / 5, 1.0])
    np.testing.assert_allclose(shot.recall, [1.0, 1.0, 0.0])
    np.testing.assert_allclose(shot.fmeasure, [1.0, 8 / 9, 0.0])
    # avgP = (1 + 4/5 + 1)/3 = 14/15; avgR = (1 + 1 + 0)/3 = 2/3;
    # F = 2(14/15)(2/3)/(14/15 + 2/3) = (56/45)/(24/15) = 7/9.
    assert shot.avg_precision == pytest.approx(14 / 15)
    assert shot.avg_recall == pytest.approx(2 / 3)
    assert shot.f == pytest.approx(7 / 9)
    # bg (1) and object 1 (8/9) pass 0.75: 2 - 1 = 1 of 2 visible objects.
    assert shot.extracted == 1 and shot.visible_objects == 2


def test_clusters_are_labels_up_to_the_largest_present_as_the_evaluator_counts_them() -> None:
    # As the case above, c1 renamed 2: label 1 is absent, so it is an empty cluster (the
    # evaluator counts max label + 1 clusters). Three clusters for three regions: object 2
    # is matched to the empty c1 (P = R = F = 0) instead of being left unmatched (P = 1).
    labels, regions = _shot([0, 0, 2, 2, 2, 2, 2], [0, 0, 1, 1, 1, 1, 2])
    shot = fbms_shot(labels, regions, 3)
    assert shot.cluster.tolist() == [0, 2, 1]
    np.testing.assert_allclose(shot.precision, [1.0, 4 / 5, 0.0])
    np.testing.assert_allclose(shot.recall, [1.0, 1.0, 0.0])
    # avgP = (1 + 4/5 + 0)/3 = 3/5; avgR = 2/3.
    assert shot.avg_precision == pytest.approx(3 / 5) and shot.avg_recall == pytest.approx(2 / 3)
    # Labels allowed but absent above the largest present add no cluster.
    _assert_same(fbms_shot(labels, regions, 10), shot)


def test_an_f_equal_to_the_threshold_is_not_extracted() -> None:
    # bg = 4 px, object 1 = 4 px; c0 = 3 bg + 1 object, c1 = 1 bg + 3 object.
    # bg-c0 and 1-c1: P = R = 3/4, F = 2(9/16)/(3/2) = 3/4 exactly (in binary too).
    labels, regions = _shot([0, 0, 0, 1, 1, 1, 1, 0], [0, 0, 0, 0, 1, 1, 1, 1])
    shot = fbms_shot(labels, regions, 2)
    assert shot.cluster.tolist() == [0, 1]
    assert shot.fmeasure.tolist() == [0.75, 0.75] and FBMS_THRESHOLD == 0.75
    assert shot.extracted == 0  # strict >: none passes, 0 - 1 floored at 0
    assert fbms_shot(labels, regions, 2, threshold=float(np.nextafter(0.75, 0.0))).extracted == 1


def test_the_background_is_subtracted_even_when_it_is_not_extracted() -> None:
    # bg = 4 px split between c0 and c1 (P = 1, R = 1/2, F = 2/3 with either); object 1 = c2
    # exactly (F = 1). Only the object passes 0.75, yet the evaluator's unconditional -1
    # leaves 1 - 1 = 0 extracted.
    labels, regions = _shot([0, 0, 1, 1, 2, 2], [0, 0, 0, 0, 1, 1])
    shot = fbms_shot(labels, regions, 3)
    np.testing.assert_allclose(shot.fmeasure, [2 / 3, 1.0])
    assert shot.cluster[1] == 2
    assert shot.extracted == 0 and shot.visible_objects == 1


def test_void_pixels_change_nothing_whatever_their_label() -> None:
    labels, regions = _more_regions_case()
    reference = fbms_shot(labels, regions, 5)
    void = np.full((1, 1, 3), VOID, dtype=np.uint8)
    for void_labels in ([0, 0, 0], [1, 0, 1], [2, 4, 3]):
        # Label 4 (or 2, 3) only on void pixels must not become a cluster: if it did, object 2
        # would be matched to it with P = 0 instead of scoring P = 1 unmatched.
        lab = np.concatenate([labels, np.array(void_labels)[None, None]], axis=2)
        reg = np.concatenate([regions, void], axis=2)
        _assert_same(fbms_shot(lab, reg, 5), reference)
    assert reference.precision.tolist()[2] == 1.0


def test_the_shot_f_is_from_mean_precision_and_mean_recall_not_mean_region_f() -> None:
    # bg = 4 px: 1 in c0, 3 in c1; object 1 = 1 px, in c1 (c1 = 4 px).
    # bg-c0: P = 1, R = 1/4, F = 2/5; 1-c1: P = 1/4, R = 1, F = 2/5 (sum 4/5);
    # bg-c1: P = R = 3/4, F = 3/4 (with 1-c0 = 0: sum 3/4 < 4/5). So bg-c0, 1-c1.
    labels, regions = _shot([0, 1, 1, 1, 1], [0, 0, 0, 0, 1])
    shot = fbms_shot(labels, regions, 2)
    assert shot.cluster.tolist() == [0, 1]
    np.testing.assert_allclose(shot.fmeasure, [2 / 5, 2 / 5])
    # avgP = avgR = (1 + 1/4)/2 = 5/8, so F = 5/8, while the mean of region F is 2/5.
    assert shot.avg_precision == pytest.approx(5 / 8) and shot.avg_recall == pytest.approx(5 / 8)
    assert shot.f == pytest.approx(5 / 8)
    assert shot.fmeasure.mean() == pytest.approx(2 / 5)


def test_overall_means_the_shot_averages_and_sums_the_objects() -> None:
    first = fbms_shot(*_hand_case(), 3)  # avgP 5/7, avgR 13/24, 0 of 1 objects
    second = fbms_shot(*_more_regions_case(), 2)  # avgP 14/15, avgR 2/3, 1 of 2 objects
    overall = fbms_overall([first, second])
    # P = (5/7 + 14/15)/2 = 173/210; R = (13/24 + 16/24)/2 = 29/48;
    # F = 2PR/(P + R), not the mean of the shots' F (130/211 and 7/9).
    precision, recall = 173 / 210, 29 / 48
    assert overall.precision == pytest.approx(precision)
    assert overall.recall == pytest.approx(recall)
    assert overall.f == pytest.approx(2 * precision * recall / (precision + recall))
    assert overall.f != pytest.approx((130 / 211 + 7 / 9) / 2)
    assert overall.extracted == 1 and overall.visible_objects == 3
    empty = fbms_overall([])
    assert math.isnan(empty.precision) and math.isnan(empty.recall) and math.isnan(empty.f)
    assert empty.extracted == 0 and empty.visible_objects == 0


@pytest.mark.parametrize(
    ("labels", "regions", "n_labels", "message"),
    [
        (np.zeros((1, 2, 2), np.int64), np.zeros((1, 2, 3), np.uint8), 1, "shape"),
        (np.zeros((2, 2), np.int64), np.zeros((2, 2), np.uint8), 1, "shape"),
        (np.zeros((1, 2, 2), np.int64), np.zeros((1, 2, 2), np.int64), 1, "uint8"),
        (np.zeros((1, 2, 2), np.float32), np.zeros((1, 2, 2), np.uint8), 1, "integers"),
        (np.zeros((1, 2, 2), np.int64), np.zeros((1, 2, 2), np.uint8), 0, "n_labels"),
        (np.full((1, 2, 2), 2, np.int64), np.zeros((1, 2, 2), np.uint8), 2, r"\[0, 2\)"),
        (np.full((1, 2, 2), -1, np.int64), np.zeros((1, 2, 2), np.uint8), 2, r"\[0, 2\)"),
        (np.zeros((1, 2, 2), np.int64), np.full((1, 2, 2), VOID, np.uint8), 1, "non-void"),
        (np.zeros((0, 2, 2), np.int64), np.zeros((0, 2, 2), np.uint8), 1, "non-void"),
    ],
)
def test_invalid_inputs_raise(labels: np.ndarray, regions: np.ndarray, n_labels: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fbms_shot(labels, regions, n_labels)


def test_a_threshold_outside_zero_one_raises() -> None:
    labels, regions = _shot([0], [0])
    with pytest.raises(ValueError, match="threshold"):
        fbms_shot(labels, regions, 1, threshold=75)
