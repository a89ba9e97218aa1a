"""Mask selection and the Jaccard score against the slow numpy references."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel_strategies import selection_cases

from stseg_kernels import frame_chunks, select_labels, select_masks
from stseg_kernels.reference import frame_chunks_reference, select_masks_reference

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=300, **SETTINGS)
@given(selection_cases())
def test_select_masks_is_bit_identical_to_reference(case):
    labels, gt, has_gt, n_labels, cut = case
    got = select_masks(labels, gt, has_gt, n_labels, cut)
    assert got.dtype == np.bool_
    assert got.shape == labels.shape
    np.testing.assert_array_equal(got, select_masks_reference(labels, gt, has_gt, n_labels, cut))
    assert not got[~has_gt].any()


@settings(max_examples=100, **SETTINGS)
@given(selection_cases())
def test_select_labels_explains_select_masks(case):
    labels, gt, has_gt, n_labels, cut = case
    chunk_of_frame, chosen = select_labels(labels, gt, has_gt, n_labels, cut)
    np.testing.assert_array_equal(chunk_of_frame, frame_chunks(len(labels), cut))
    assert chosen.shape == (chunk_of_frame.max() + 1, n_labels)
    masks = select_masks(labels, gt, has_gt, n_labels, cut)
    for f in range(len(labels)):
        want = np.isin(labels[f], np.flatnonzero(chosen[chunk_of_frame[f]])) & has_gt[f]
        np.testing.assert_array_equal(masks[f], want)
    for g in range(chosen.shape[0]):
        if not has_gt[chunk_of_frame == g].any():
            assert not chosen[g].any(), "a chunk without ground truth chose labels"
        else:
            assert chosen[g].any()


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 40), st.one_of(st.none(), st.integers(1, 45)))
def test_frame_chunks_match_reference(n_frames, cut):
    got = frame_chunks(n_frames, cut)
    assert got.shape == (n_frames,)
    chunks = frame_chunks_reference(n_frames, cut)
    want = np.empty(n_frames, np.int64)
    for g, frames in enumerate(chunks):
        want[frames] = g
    np.testing.assert_array_equal(got, want)


def test_frame_chunks_follow_window_chunks():
    # 10 windows, cut 4: window chunks {0..3}, {4..7}, {8, 9}; middle frames +1.
    assert frame_chunks(12, 4).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    assert frame_chunks(12, 5).tolist() == [0] * 6 + [1] * 6
    assert frame_chunks(12, None).tolist() == [0] * 12


def test_selection_on_a_known_case():
    labels = np.zeros((3, 4, 4), np.uint8)
    labels[:, :2, :2] = 1
    labels[:, 2:, 2:] = 2
    gt = np.zeros((3, 4, 4), bool)
    gt[:, :2, :] = True  # label 1 plus half of label 0
    got = select_masks(labels, gt, np.array([True, False, True]), 3)
    # Round 1: {1} (IoU 4/8) beats {0} (4/12); round 2: {0, 1} (8/12) beats {1} and
    # {1, 2} (4/12); round 3: adding 2 drops to 8/16, so label 0 is re-chosen (first tie).
    np.testing.assert_array_equal(got[0], np.isin(labels[0], [0, 1]))
    np.testing.assert_array_equal(got[2], np.isin(labels[2], [0, 1]))
    assert not got[1].any()


def test_all_frames_without_ground_truth_select_nothing():
    labels = np.random.default_rng(0).integers(0, 4, (6, 5, 5)).astype(np.uint8)
    got = select_masks(labels, np.ones(labels.shape, bool), np.zeros(6, bool), 4, cut_size=2)
    assert not got.any()
    _, chosen = select_labels(labels, np.ones(labels.shape, bool), np.zeros(6, bool), 4, cut_size=2)
    assert not chosen.any()


def test_selection_with_many_labels():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 20, (7, 6, 6)).repeat(2, axis=1)
    gt = rng.random(labels.shape) < 0.4
    has = np.array([1, 1, 0, 1, 1, 1, 0], bool)
    want = select_masks_reference(labels, gt, has, 20, 2)
    np.testing.assert_array_equal(select_masks(labels, gt, has, 20, 2), want)
    # n_labels > 256: int64 working dtype; must agree with the uint8 path on the same task.
    np.testing.assert_array_equal(
        select_masks(labels.astype(np.int64), gt, has, 300, 2),
        select_masks(labels.astype(np.uint8), gt, has, 300, 2),
    )


@pytest.mark.parametrize("cut", [None, 1, 3])
def test_selection_matches_reference_on_a_longer_sequence(cut):
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 4, (30, 8, 10)).repeat(8, axis=1).repeat(4, axis=2).astype(np.uint8)
    gt = np.isin(labels, [1, 3]) ^ (rng.random(labels.shape) < 0.05)
    has = rng.random(30) < 0.8
    np.testing.assert_array_equal(select_masks(labels, gt, has, 4, cut), select_masks_reference(labels, gt, has, 4, cut))
