"""The DAVIS-2017 unsupervised evaluation against cases worked out by hand and against the
single-pair measures of davis_measures."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from stseg_deploy.eval.davis17_measures import (
    MAX_PROPOSALS,
    STATISTICS_COLUMNS,
    Davis17Sequence,
    _pair_scores,
    jf_mean,
    score_davis17,
)
from stseg_deploy.eval.davis_measures import boundary_f, region_similarity

SIZE = (40, 40)  # diagonal 56.6: boundary tolerance ceil(0.45) = 1 pixel


def _box(labels: np.ndarray, top: int, left: int, h: int, w: int, value: int) -> np.ndarray:
    labels[top : top + h, left : left + w] = value
    return labels


def _frame(*boxes: tuple[int, int, int, int, int]) -> np.ndarray:
    labels = np.zeros(SIZE, np.uint8)
    for box in boxes:
        _box(labels, *box)
    return labels


def _two_objects(n_frames: int = 3) -> np.ndarray:
    return np.stack([_frame((5, 5, 8, 8, 1), (20, 22, 10, 12, 2)) for _ in range(n_frames)])


def test_perfect_match_with_permuted_ids() -> None:
    gt = _two_objects()
    proposals = np.select([gt == 1, gt == 2], [3, 1], 0).astype(np.uint8)
    proposals[:, 35:38, 35:38] = 2  # an extra proposal, left unmatched
    scores = score_davis17(proposals, gt)
    np.testing.assert_array_equal(scores.objects, [1, 2])
    np.testing.assert_array_equal(scores.proposal, [3, 1])
    np.testing.assert_array_equal(scores.j, np.ones((2, 3)))
    np.testing.assert_array_equal(scores.f, np.ones((2, 3)))
    assert jf_mean([scores])["J&F-Mean"] == 1.0


def test_matching_picks_distinct_proposals() -> None:
    # Objects 1 and 2 side by side; proposal 1 covers both (J 1/2 with each), proposal 2 a
    # quarter of object 2. Each object alone prefers proposal 1; the assignment gives it to
    # object 1 or 2 and the other proposal to the other object, whichever sums higher.
    gt = _frame((10, 5, 10, 10, 1), (10, 15, 10, 10, 2))[None]
    proposals = _frame((10, 5, 10, 20, 1), (10, 15, 5, 5, 2))[None]
    scores = score_davis17(proposals, gt)
    assert len(set(scores.proposal.tolist())) == 2
    pair = {(k, p): (region_similarity(proposals[0] == p, gt[0] == k) + boundary_f(proposals[0] == p, gt[0] == k)) / 2 for k in (1, 2) for p in (1, 2)}
    assert max(pair[1, 1], pair[1, 2]) == pair[1, 1] and max(pair[2, 1], pair[2, 2]) == pair[2, 1]  # greedy: both take 1
    best = max(((1, 2), (2, 1)), key=lambda ps: pair[1, ps[0]] + pair[2, ps[1]])
    np.testing.assert_array_equal(scores.proposal, best)
    assert scores.proposal.tolist() == [1, 2]  # 0.5-ish + 0.25-ish beats 0 + 0.5-ish


def test_matching_uses_the_mean_of_j_and_f() -> None:
    # One 10x10 object on 2 frames. Proposal 1: the object shifted 2 pixels on frame 0 (J 2/3,
    # F 0.55), absent on frame 1. Proposal 2: absent on frame 0, the object shrunk by one pixel
    # on frame 1 (J 0.64, F 0.947). J alone would pick 1; (J + F) / 2 picks 2.
    gt = np.stack([_frame((10, 10, 10, 10, 1))] * 2)
    proposals = np.stack([_frame((10, 12, 10, 10, 1)), _frame((11, 11, 8, 8, 2))])
    j = {p: [region_similarity(proposals[t] == p, gt[t] == 1) for t in range(2)] for p in (1, 2)}
    f = {p: [boundary_f(proposals[t] == p, gt[t] == 1) for t in range(2)] for p in (1, 2)}
    assert np.mean(j[1]) > np.mean(j[2])  # the J-only choice would be proposal 1
    scores = score_davis17(proposals, gt)
    np.testing.assert_array_equal(scores.proposal, [2])
    np.testing.assert_allclose(scores.j, [[0.0, 0.64]])
    np.testing.assert_allclose(scores.f, [f[2]])
    assert scores.f[0, 1] == pytest.approx(18 / 19)


def test_fewer_proposals_than_objects_pads_with_empty_proposals() -> None:
    gt = _two_objects()
    gt[2][gt[2] == 2] = 0  # object 2 absent from frame 2
    proposals = (gt == 1).astype(np.uint8)  # one proposal, object 1 exactly
    scores = score_davis17(proposals, gt)
    np.testing.assert_array_equal(scores.proposal, [1, 0])
    # The empty proposal: J = 0 and F = 0 (precision 1, recall 0) where object 2 is present,
    # J = 1 (empty union) and F = 1 (both boundaries empty) where it is absent.
    np.testing.assert_array_equal(scores.j, [[1, 1, 1], [0, 0, 1]])
    np.testing.assert_array_equal(scores.f, [[1, 1, 1], [0, 0, 1]])
    # No proposal at all: every object gets an empty one.
    none = score_davis17(np.zeros_like(gt), gt)
    np.testing.assert_array_equal(none.proposal, [0, 0])
    np.testing.assert_array_equal(none.j, [[0, 0, 0], [0, 0, 1]])


def test_objects_are_fixed_by_the_first_frame() -> None:
    # First frame: ids 1 and 3, so objects 1, 2, 3 (2 absent). Id 4 first appears on frame 1:
    # not an object, and its pixels count as background, not void.
    gt = np.stack([_frame((5, 5, 6, 6, 1), (25, 25, 6, 6, 3)), _frame((5, 5, 6, 6, 1), (25, 25, 6, 6, 3), (5, 25, 6, 6, 4))])
    proposals = gt.copy()
    proposals[gt == 4] = 1  # proposal 1 also covers id 4 on frame 1
    scores = score_davis17(proposals, gt)
    np.testing.assert_array_equal(scores.objects, [1, 2, 3])
    # Proposal ids run 1..3 (the largest): id 2, never used, is an empty proposal, not padding.
    np.testing.assert_array_equal(scores.proposal, [1, 2, 3])
    np.testing.assert_array_equal(scores.j[0], [1.0, 0.5])
    np.testing.assert_array_equal(scores.j[1:], np.ones((2, 2)))  # object 2 absent, empty proposal
    assert scores.f[0, 1] < 1.0
    # first_gt given: it decides, not gt[0].
    only_one = score_davis17(proposals, gt, first_gt=_frame((5, 5, 6, 6, 1)))
    np.testing.assert_array_equal(only_one.objects, [1])
    # A first frame without objects: nothing scored.
    empty = score_davis17(proposals, gt, first_gt=np.full(SIZE, 255, np.uint8))
    assert len(empty.objects) == 0 and empty.j.shape == (0, 2) and empty.statistics().empty


def test_void_pixels_are_ignored() -> None:
    gt = _frame((10, 10, 10, 10, 1))
    gt[10:20, 20:30] = 255  # a void band right of the object
    proposals = _frame((10, 10, 10, 16, 1))[None]  # the object plus 6 columns of void
    scores = score_davis17(proposals, gt[None])
    np.testing.assert_array_equal(scores.j, [[1.0]])
    np.testing.assert_array_equal(scores.f, [[1.0]])
    # The same band as background instead: both drop.
    plain = score_davis17(proposals, np.where(gt == 255, 0, gt)[None])
    assert plain.j[0, 0] == pytest.approx(100 / 160) and plain.f[0, 0] < 1.0


def test_more_than_twenty_proposals_is_refused() -> None:
    gt = _two_objects(1)
    proposals = np.zeros_like(gt)
    proposals[0, 39, 0 : MAX_PROPOSALS + 1] = np.arange(1, MAX_PROPOSALS + 2)
    with pytest.raises(ValueError, match="21 proposals"):
        score_davis17(proposals, gt)
    proposals[proposals == MAX_PROPOSALS + 1] = 0
    assert score_davis17(proposals, gt).proposal.shape == (2,)


def test_pair_scores_match_the_single_pair_measures() -> None:
    # Random boxes, some touching the image edge, with void: every (object, proposal, frame)
    # against region_similarity and boundary_f on void-zeroed masks, and the assignment
    # against every permutation.
    rng = np.random.default_rng(0)
    n_frames, n_objects, n_props = 3, 2, 3
    gt = np.zeros((n_frames, *SIZE), np.uint8)
    proposals = np.zeros((n_frames, *SIZE), np.uint8)
    for t in range(n_frames):
        for k in range(1, n_objects + 1):
            top, left = rng.integers(0, 32, 2)
            _box(gt[t], int(top), int(left), *(int(v) for v in rng.integers(3, 12, 2)), k)
        _box(gt[t], int(rng.integers(0, 35)), int(rng.integers(0, 35)), 5, 5, 255)
        for p in range(1, n_props + 1):
            top, left = rng.integers(0, 35, 2)
            _box(proposals[t], int(top), int(left), *(int(v) for v in rng.integers(3, 12, 2)), p)
    proposals[0, 30:, 30:] = 2  # a proposal touching the bottom-right corner
    j, f = _pair_scores(proposals, gt, n_objects, n_props, 0.008)
    for t, k, p in itertools.product(range(n_frames), range(n_objects), range(n_props)):
        keep = gt[t] != 255
        pred, obj = (proposals[t] == p + 1) & keep, gt[t] == k + 1
        assert j[k, p, t] == region_similarity(pred, obj)
        assert f[k, p, t] == boundary_f(pred, obj)
    scores = score_davis17(proposals, gt)
    score = (j.mean(axis=2) + f.mean(axis=2)) / 2
    best = max(itertools.permutations(range(n_props), n_objects), key=lambda c: score[0, c[0]] + score[1, c[1]])
    assert score[0, scores.proposal[0] - 1] + score[1, scores.proposal[1] - 1] == pytest.approx(score[0, best[0]] + score[1, best[1]])
    np.testing.assert_array_equal(scores.j, [j[k, scores.proposal[k] - 1] for k in range(n_objects)])


def test_statistics_of_a_hand_made_vector() -> None:
    # 8 frames: decay bins [0:3] and [5:8] (see test_davis_measures.test_statistics_by_hand).
    values = np.array([1.0, 1.0, 1.0, 0.8, 0.6, 0.4, 0.2, 0.0])
    seq = Davis17Sequence(np.array([4]), np.array([7]), values[None], 1 - values[None])
    table = seq.statistics()
    assert list(table.columns) == STATISTICS_COLUMNS and len(table) == 1
    row = table.iloc[0]
    assert row["object"] == 4
    assert row["J_mean"] == pytest.approx(0.625) and row["J_recall"] == pytest.approx(5 / 8)
    assert row["J_decay"] == pytest.approx(1.0 - 0.2)
    assert row["F_mean"] == pytest.approx(0.375) and row["F_recall"] == pytest.approx(3 / 8)
    assert row["F_decay"] == pytest.approx(0.0 - 0.8)


def test_jf_mean_pools_objects_over_sequences() -> None:
    # Sequence A: one object, J 0.9 and F 0.7 on every frame; sequence B: two objects, J 0.3 /
    # 0.6 and F 0.1 / 0.4. Pooled over the 3 objects: J-Mean 0.6, F-Mean 0.4, not the mean of
    # the sequence means (0.675 and 0.475).
    ones = np.ones((1, 4))
    a = Davis17Sequence(np.array([1]), np.array([1]), 0.9 * ones, 0.7 * ones)
    b = Davis17Sequence(np.array([1, 2]), np.array([2, 1]), np.array([[0.3] * 4, [0.6] * 4]), np.array([[0.1] * 4, [0.4] * 4]))
    out = jf_mean([a, b])
    assert list(out) == ["J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall", "F-Decay"]
    assert out["J-Mean"] == pytest.approx(0.6) and out["F-Mean"] == pytest.approx(0.4)
    assert out["J&F-Mean"] == pytest.approx(0.5)
    assert out["J-Recall"] == pytest.approx(2 / 3) and out["F-Recall"] == pytest.approx(1 / 3)
    assert out["J-Decay"] == pytest.approx(0.0) and out["F-Decay"] == pytest.approx(0.0)
    assert all(math.isnan(v) for v in jf_mean([]).values())


def test_bad_shapes_are_refused() -> None:
    gt = _two_objects(2)
    with pytest.raises(ValueError, match="shape"):
        score_davis17(gt[:1], gt)
    with pytest.raises(ValueError, match="first_gt"):
        score_davis17(gt, gt, first_gt=gt[0, :10])
