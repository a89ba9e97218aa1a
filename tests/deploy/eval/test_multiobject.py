"""Multi-object scoring (stseg_deploy.eval.multiobject): one segment per object, DAVIS-2017 style.

Fixtures are tiny (a few pixels in a row) so that every expected J is worked out by hand in
the comments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stseg_deploy.eval.multiobject import NO_SEGMENT, frame_object_j, match_objects, score_objects
from stseg_deploy.io.masks import VOID, read_object_png, write_mask_png


def _row(*values: int) -> np.ndarray:
    """One frame of one pixel row: (1, W)."""
    return np.array([values])


def test_hungarian_match_does_not_give_two_objects_one_segment() -> None:
    # Ten pixels. Label 0 covers object 1 and most of object 2 (a merge); label 1 the rest of 2.
    objects = np.stack([_row(1, 1, 1, 1, 2, 2, 2, 2, 0, 0)]).astype(np.uint8)
    labels = np.stack([_row(0, 0, 0, 0, 0, 0, 0, 1, 2, 3)])
    # J(1, 0) = 4/7 (4 shared of pixels 0..6); J(2, 0) = 3/8 (pixels 4..6 of 0..7);
    # J(2, 1) = 1/4 (pixel 7 of 4..7); all others 0.
    j = frame_object_j(labels, objects, np.array([1, 2]), 4)
    np.testing.assert_allclose(j[0], [[4 / 7, 0, 0, 0], [3 / 8, 1 / 4, 0, 0]])
    scores = score_objects(labels, objects, np.array([True]), 4)
    # Naive: both objects' best label is 0. One-to-one: 1 -> 0, 2 -> 1 (4/7 + 1/4 beats 3/8).
    assert scores.naive_shared.tolist() == [True, True]
    assert scores.ids.tolist() == [1, 2] and scores.segments.tolist() == [[0, 1]]
    np.testing.assert_allclose(scores.j, [4 / 7, 1 / 4])
    assert scores.mean == pytest.approx(23 / 56)
    assert scores.frames.tolist() == [1, 1] and scores.present.tolist() == [1, 1]


def test_an_object_absent_from_some_frames_is_scored_there_as_davis2017_does() -> None:
    objects = np.stack([_row(1, 1, 0, 0), _row(0, 0, 0, 0), _row(0, 0, 0, 0), _row(1, 1, 1, 1)]).astype(np.uint8)
    labels = np.stack([_row(0, 0, 1, 1), _row(1, 1, 1, 1), _row(0, 1, 1, 1), _row(1, 1, 1, 1)])
    scored = np.array([True, True, True, False])  # frame 3 has no ground truth: never read
    # Object 1 with label 0: frame 0 J = 1; frame 1 both absent, J = 1; frame 2 absent but
    # label 0 has a pixel, J = 0. With label 1: 0, 0, 0. So label 0, J = (1 + 1 + 0) / 3.
    scores = score_objects(labels, objects, scored, 2)
    assert scores.ids.tolist() == [1] and scores.segments.tolist() == [[0]]
    assert scores.j.tolist() == pytest.approx([2 / 3])
    assert scores.frames.tolist() == [3] and scores.present.tolist() == [1]


def test_ground_truth_against_itself_scores_one() -> None:
    rng = np.random.default_rng(0)
    objects = rng.integers(0, 3, (5, 6, 7)).astype(np.uint8)
    scored = np.ones(5, bool)
    for relabel in ([0, 1, 2, 3], [3, 0, 2, 1]):  # label names do not matter, only the partition
        labels = np.array(relabel)[objects]
        scores = score_objects(labels, objects, scored, 4)
        np.testing.assert_allclose(scores.j, 1.0)
        assert scores.mean == 1.0 and not scores.naive_shared.any()
        assert scores.segments.tolist() == [[relabel[1], relabel[2]]]


def test_binary_davis_masks_are_one_object(tmp_path: Path) -> None:
    # DAVIS-2016 annotations: greyscale 0/255. Read as object ids they are one object, id 1.
    masks = [np.array([[1, 1, 0, 0]], bool), np.array([[0, 1, 1, 0]], bool)]
    for t, mask in enumerate(masks):
        write_mask_png(tmp_path / f"{t:05d}.png", mask)
    objects = np.stack([read_object_png(tmp_path / f"{t:05d}.png") for t in range(2)])
    assert objects.tolist() == [[[1, 1, 0, 0]], [[0, 1, 1, 0]]]
    labels = np.stack([_row(2, 2, 0, 1), _row(0, 2, 2, 1)])
    # Label 2 is the object on both frames (J = 1); labels 0 and 1 never touch it (J = 0).
    scores = score_objects(labels, objects, np.ones(2, bool), 3)
    assert scores.ids.tolist() == [1] and scores.segments.tolist() == [[2]] and scores.j.tolist() == [1.0]


def test_segments_are_matched_per_chunk() -> None:
    # Two chunks whose labels were linked independently: names swap between them.
    objects = np.stack([_row(1, 1, 2, 2), _row(1, 1, 2, 2)]).astype(np.uint8)
    labels = np.stack([_row(0, 0, 1, 1), _row(1, 1, 0, 0)])
    per_chunk = score_objects(labels, objects, np.ones(2, bool), 2, chunks=np.array([0, 1]))
    assert per_chunk.segments.tolist() == [[0, 1], [1, 0]] and per_chunk.j.tolist() == [1.0, 1.0]
    # One chunk (the DAVIS-2017 protocol): one label per object for the whole sequence, right
    # on one frame and disjoint on the other: J = (1 + 0) / 2 for both.
    whole = score_objects(labels, objects, np.ones(2, bool), 2)
    assert whole.segments.shape == (1, 2) and whole.j.tolist() == [0.5, 0.5]


def test_more_objects_than_labels_leaves_one_without_a_segment() -> None:
    objects = np.stack([_row(1, 1, 2, 2, 3)]).astype(np.uint8)
    labels = np.stack([_row(0, 0, 1, 1, 1)])
    # J(1, 0) = 1; J(2, 1) = 2/3; J(3, 1) = 1/3. Two labels: object 3 gets none, J = 0.
    scores = score_objects(labels, objects, np.array([True]), 2)
    assert scores.segments.tolist() == [[0, 1, NO_SEGMENT]]
    np.testing.assert_allclose(scores.j, [1.0, 2 / 3, 0.0])
    assert scores.naive_shared.tolist() == [False, True, True]


def test_void_pixels_are_left_out() -> None:
    objects = np.stack([_row(1, 1, VOID, 0)]).astype(np.uint8)
    labels = np.stack([_row(0, 0, 0, 1)])
    # Without the void pixel, label 0 is exactly object 1.
    assert score_objects(labels, objects, np.array([True]), 2).j.tolist() == [1.0]


def test_no_object_in_the_ground_truth() -> None:
    scores = score_objects(np.zeros((2, 3, 3), int), np.zeros((2, 3, 3), np.uint8), np.ones(2, bool), 2)
    assert scores.n_objects == 0 and np.isnan(scores.mean) and scores.segments.shape == (1, 0)


def test_match_objects_is_one_to_one() -> None:
    weights = np.array([[0.9, 0.8, 0.0], [0.85, 0.1, 0.0]])
    # Naive would give label 0 to both; the best one-to-one is 0.8 + 0.85.
    assert match_objects(weights).tolist() == [1, 0]
    assert match_objects(weights.T).tolist() == [1, 0, NO_SEGMENT]
    assert match_objects(np.zeros((0, 4))).tolist() == []


@pytest.mark.parametrize(
    ("labels", "objects", "scored", "n_labels", "message"),
    [
        (np.zeros((2, 3, 3), int), np.zeros((2, 3, 4), np.uint8), np.ones(2, bool), 2, r"shape \(T, H, W\)"),
        (np.zeros((2, 3, 3), int), np.zeros((2, 3, 3), np.uint8), np.ones(3, bool), 2, "scored must have shape"),
        (np.zeros((2, 3, 3), int), np.zeros((2, 3, 3), np.int64), np.ones(2, bool), 2, "uint8 object ids"),
        (np.full((2, 3, 3), 2), np.zeros((2, 3, 3), np.uint8), np.ones(2, bool), 2, r"labels must lie in \[0, 2\)"),
        (np.zeros((2, 3, 3), int), np.zeros((2, 3, 3), np.uint8), np.zeros(2, bool), 2, "no frame is marked"),
    ],
)
def test_bad_arguments(labels, objects, scored, n_labels, message) -> None:
    with pytest.raises(ValueError, match=message):
        score_objects(labels, objects, scored, n_labels)


def test_a_background_label_explains_no_object() -> None:
    # An object-id map: 0 is the background. Object 2 lies under the background label, so
    # matched there it would score J(2, 0) = 2/4; as "no object" it scores 0.
    objects = np.stack([_row(1, 1, 2, 2, 0, 0)]).astype(np.uint8)
    ids = np.stack([_row(1, 1, 0, 0, 0, 0)])
    plain = score_objects(ids, objects, np.array([True]), 2)
    np.testing.assert_allclose(plain.j, [1.0, 0.5])
    scores = score_objects(ids, objects, np.array([True]), 2, background=0)
    np.testing.assert_allclose(scores.j, [1.0, 0.0])
