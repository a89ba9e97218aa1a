"""Tests for the motion split stage (stseg_deploy.stages.motionsplit): a segment two motions share
is split, one motion cut or scattered is left whole, and the probabilities move, not change."""

from __future__ import annotations

import numpy as np
import pytest

from stseg_deploy.stages.motionsplit import (
    MotionSplitter,
    SplitSettings,
    fit_motion,
    seed_from_prior,
    split_window,
)
from stseg_kernels import MotionGrid, quadratic_terms

T, H, W = 3, 32, 48


def _background(seed: int = 0) -> np.ndarray:
    """(2, T, H, W) a quadratic camera flow, another one in each frame, px."""
    theta = np.random.default_rng(seed).uniform(-0.6, 0.6, size=(2, T, 6))
    return np.einsum("cfk,kp->cfp", theta, quadratic_terms(H, W)).reshape(2, T, H, W).astype(np.float32)


def _square(flow: np.ndarray, rows: slice, cols: slice, u: float, v: float) -> np.ndarray:
    """Mask (T, H, W) of a square translating by (u, v) px, painted into ``flow``."""
    mask = np.zeros((T, H, W), bool)
    mask[:, rows, cols] = True
    flow[0][mask], flow[1][mask] = u, v
    return mask


def _one_hot(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """(T, H, W) labels → (L, T, H, W) float32 probabilities, 0.9 on the label."""
    proba = np.full((n_labels, *labels.shape), 0.1 / (n_labels - 1), np.float32)
    for k in range(n_labels):
        proba[k][labels == k] = 0.9
    return proba


def test_robust_fit_recovers_a_motion_despite_outliers() -> None:
    flow = _background(1)
    flow[:, :, :4, :4] += 20.0  # 48 outlying pixels of 4,608
    _, residual = fit_motion(MotionGrid(flow), np.arange(T * H * W))
    # Within 0.01 px: the shape terms' ridge (motionsplit.SHAPE_RIDGE) biases a whole
    # frame's fit by that little.
    assert np.median(residual) < 1e-2 and residual.reshape(T, H, W)[:, :4, :4].min() > 30


def test_two_objects_in_one_segment_are_split_and_the_rest_kept() -> None:
    flow = _background()
    a = _square(flow, slice(4, 14), slice(4, 14), 3.0, 0.0)
    b = _square(flow, slice(18, 28), slice(30, 40), -2.0, 2.5)
    labels = np.where(a | b, 1, 0)
    proba = _one_hot(labels, 2)
    out = split_window(proba, flow, SplitSettings(extra=2))
    assert out.shape == (4, T, H, W) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=0), proba.sum(axis=0), atol=1e-6)  # moved, not made up
    new = out.argmax(axis=0)
    assert np.array_equal(new[labels == 0], np.zeros((labels == 0).sum()))  # background as it was
    # The larger part keeps the segment; these two are as large, so either may.
    assert {np.unique(new[a]).tolist()[0], np.unique(new[b]).tolist()[0]} == {1, 2}
    assert len(np.unique(new[a])) == len(np.unique(new[b])) == 1
    assert not out[3].any()  # one spare left unused


def test_touching_objects_in_one_region_are_cut_where_the_motion_changes() -> None:
    """One connected region, a large object and a smaller one against it: the main motion
    is the larger's, and the smaller is cut off where the motion changes, corners included
    (the smoothing lets only the region's pixels vote)."""
    flow = _background(2)
    a = _square(flow, slice(6, 26), slice(6, 28), 3.0, -1.0)
    b = _square(flow, slice(12, 20), slice(28, 34), -2.5, 2.0)
    proba = _one_hot(np.where(a | b, 1, 0), 2)
    new = split_window(proba, flow, SplitSettings(extra=2)).argmax(axis=0)
    assert (new[a] == 1).mean() > 0.99
    assert (new[b] == 2).mean() > 0.95


def test_touching_objects_of_one_size_are_cut_apart() -> None:
    """Two touching squares of one size: a fit of the whole region lands between their
    motions; the main motion found from patches is one of them, so the cut follows the
    seam."""
    flow = _background(5)
    a = _square(flow, slice(8, 24), slice(8, 22), 3.0, -1.0)
    b = _square(flow, slice(8, 24), slice(22, 36), -2.5, 2.0)
    new = split_window(_one_hot(np.where(a | b, 1, 0), 2), flow, SplitSettings(extra=2)).argmax(axis=0)
    share_a = np.bincount(new[a], minlength=4).max() / a.sum()
    share_b = np.bincount(new[b], minlength=4).max() / b.sum()
    assert share_a > 0.9 and share_b > 0.9
    assert np.bincount(new[a]).argmax() != np.bincount(new[b]).argmax()


def _bouncing(flow: np.ndarray, rows: slice, cols: slice, u: float, v: float) -> np.ndarray:
    """Mask (T, H, W) of a square painted into ``flow`` that moves by (u, v) px and then, in
    the window's last frame, back (-u, -v): an object bouncing off a wall."""
    mask = np.zeros((T, H, W), bool)
    mask[:, rows, cols] = True
    for t in range(T):
        sign = -1.0 if t == T - 1 else 1.0
        flow[0, t][mask[t]], flow[1, t][mask[t]] = sign * u, sign * v
    return mask


def test_a_motion_that_changes_from_frame_to_frame_is_not_cut_in_time() -> None:
    """Each frame's motion is fitted on its own: an object that turns back within the window
    stays one segment, and two such objects are split into two, each whole in every frame
    (a model smooth in time cut each one's last frame off instead)."""
    flow = _background(4)
    a = _bouncing(flow, slice(4, 14), slice(4, 14), 3.0, 1.0)
    proba = _one_hot(np.where(a, 1, 0), 2)
    assert not split_window(proba, flow, SplitSettings(extra=2))[2:].any()
    b = _bouncing(flow, slice(18, 28), slice(30, 40), -2.0, 2.5)
    new = split_window(_one_hot(np.where(a | b, 1, 0), 2), flow, SplitSettings(extra=2)).argmax(axis=0)
    for mask in (a, b):
        assert len(np.unique(new[mask])) == 1
    assert {int(new[a][0]), int(new[b][0])} == {1, 2}


def test_a_small_object_with_blurred_edges_stays_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """Flow resized to the model's size blends objects into the background at their edges.
    A small object's halves, each fitted freely, match that blend with steep slopes and
    then miss each other by pixels, so the object was cut in two; with the shape terms
    damped (SHAPE_RIDGE) it stays whole."""
    import cv2

    import stseg_deploy.stages.motionsplit as motionsplit

    flow = np.zeros((2, T, H, W), np.float32)
    obj = _square(flow, slice(10, 18), slice(14, 26), 3.0, 1.0)
    flow += 0.3 * _background(1)
    for c in range(2):
        for t in range(T):
            flow[c, t] = cv2.blur(flow[c, t], (5, 5))
    proba = _one_hot(np.where(obj, 1, 0), 2)
    assert not split_window(proba, flow, SplitSettings(extra=2))[2:].any()
    monkeypatch.setattr(motionsplit, "SHAPE_RIDGE", 0.0)
    assert split_window(proba, flow, SplitSettings(extra=2))[2:].any()  # the ridge is what holds


def test_a_split_part_goes_to_its_spare_where_segments_tie() -> None:
    """The test-time flip averages a saturated 1 and 0 into 0.5 and 0.5: the moved part must
    still end up in the spare, not in the segment its first one tied with."""
    flow = _background()
    a = _square(flow, slice(4, 14), slice(4, 16), 3.0, 0.0)
    b = _square(flow, slice(18, 28), slice(30, 40), -2.0, 2.5)
    proba = np.zeros((3, T, H, W), np.float32)
    proba[2] = 1.0
    proba[:, a | b] = np.array([0.5, 0.5, 0.0], np.float32)[:, None]
    out = split_window(proba, flow, SplitSettings(extra=2))
    np.testing.assert_allclose(out.sum(axis=0), proba.sum(axis=0), atol=1e-6)  # the margin is moved, not made
    new = out.argmax(axis=0)
    assert (new[a] == 0).all() and (new[b] == 3).all()
    # The guided refinement filters the probabilities before its argmax: the margin holds.
    from stseg_deploy.stages.refine import RefineSettings, refine_labels

    guide = np.random.default_rng(0).integers(0, 256, size=(2 * H, 2 * W, 3), dtype=np.uint8)
    refined = refine_labels(out[:, 0], guide, RefineSettings(radius=8.0, eps=0.01, subsample=1))
    inside = np.zeros((2 * H, 2 * W), bool)
    inside[2 * 20 : 2 * 26, 2 * 32 : 2 * 38] = True  # well inside b
    assert (refined[inside] == 3).all()


def test_one_motion_is_never_split() -> None:
    """Two pieces of the background in one segment, and two separate objects moving alike
    in another: each explained by one motion, so nothing moves."""
    flow = _background(3)
    a = _square(flow, slice(4, 12), slice(4, 12), 2.0, 2.0)
    b = _square(flow, slice(20, 28), slice(34, 42), 2.0, 2.0)
    labels = np.zeros((T, H, W), np.int64)
    labels[:, :, W // 2 :] = 2  # the background cut in two by the model
    labels[a | b] = 1
    proba = _one_hot(labels, 3)
    out = split_window(proba, flow, SplitSettings(extra=3))
    np.testing.assert_array_equal(out[:3], proba)
    assert not out[3:].any()


def test_a_few_stray_pixels_do_not_keep_one_motion_apart() -> None:
    """The background in two pieces of one segment, the smaller with pixels scattered over
    it where its flow is 5 px off (blended edges, bad matches): most of its pixels follow
    the larger piece's motion, so the two stay one segment (a mean residual split them)."""
    flow = 0.5 * _background(3)
    pole = _square(flow, slice(0, H), slice(30, 34), 2.0, 2.0)
    bad = np.random.default_rng(0).random((T, H, W)) < 0.06
    bad[:, :, :34] = False
    flow[:, bad] += 5.0
    labels = np.where(pole, 1, 0)
    out = split_window(_one_hot(labels, 2), flow, SplitSettings(extra=2))
    assert not out[2:].any()


def test_no_spare_segments_or_none_left_changes_nothing() -> None:
    flow = _background()
    a = _square(flow, slice(4, 14), slice(4, 14), 3.0, 0.0)
    b = _square(flow, slice(18, 28), slice(30, 40), -2.0, 2.5)
    proba = _one_hot(np.where(a | b, 1, 0), 2)
    np.testing.assert_array_equal(split_window(proba, flow, SplitSettings(extra=0)), proba)
    batch = MotionSplitter(SplitSettings(extra=1))(np.stack([proba, proba]), np.stack([flow, flow]))
    assert batch.shape == (2, 3, T, H, W)
    np.testing.assert_array_equal(batch[0], batch[1])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"extra": -1}, "extra"),
        ({"extra": 33}, "extra"),
        ({"min_area": 0.0}, "min_area"),
        ({"min_gain": 0.0}, "min_gain"),
        ({"min_residual": -0.1}, "min_residual"),
    ],
)
def test_bad_settings_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SplitSettings(**fields)


def test_the_noise_of_a_nearly_still_window_splits_nothing() -> None:
    """A still camera, one object: the background in two pieces of one segment, with flow
    noise of 0.03 px. Relative to so little motion the noise looks like two motions; the
    floor of min_residual keeps the pieces together."""
    rng = np.random.default_rng(0)
    flow = rng.normal(0.0, 0.03, size=(2, T, H, W)).astype(np.float32)
    pole = _square(flow, slice(0, H), slice(20, 28), 0.5, 0.0)
    labels = np.where(pole, 1, 0)
    proba = _one_hot(labels, 2)
    out = split_window(proba, flow, SplitSettings(extra=2))
    assert not out[2:].any()
    assert split_window(proba, flow, SplitSettings(extra=2, min_residual=0.0))[2:].any()  # the floor is what holds


def test_the_prior_is_carried_along_the_flow_onto_the_last_frame() -> None:
    prior = np.zeros((T - 1, H, W), np.uint8)
    prior[:, 10:14, 10:14] = 3
    flow = np.zeros((2, H, W), np.float32)
    flow[0, 10:14, 10:14], flow[1, 10:14, 10:14] = 2.0, -1.0  # u right 2 px, v up 1 px
    seed = seed_from_prior(prior, flow)
    np.testing.assert_array_equal(seed[:-1], prior)
    moved = np.zeros((H, W), bool)
    moved[9:13, 12:16] = True
    assert (seed[-1][moved] == 3).all()
    # Where nothing lands the label in place stays: the square's trailing edge.
    assert (seed[-1][10:14, 10:12] == 3).all() and (seed[-1][~moved & (seed[-1] == 3)].size == 10)


def test_objects_the_previous_window_held_apart_are_kept_apart() -> None:
    """A small object against a large one in one segment, moving 2 px (|du| + |dv|) apart:
    alone, one motion explains the region to within the join residual on average, so it
    stays whole; with the previous window's split as prior (its seam a pixel off), the
    small one is cut out, the seam moved to where the motions meet."""
    flow = _background(5)
    a = _square(flow, slice(6, 26), slice(6, 36), 3.0, -1.0)
    b = _square(flow, slice(12, 18), slice(36, 42), 2.0, 0.0)
    labels = np.where(a | b, 1, 0)
    proba = _one_hot(labels, 2)
    alone = split_window(proba, flow, SplitSettings(extra=2)).argmax(axis=0)
    assert (alone[a | b] == 1).all()
    prior = labels[: T - 1].astype(np.uint8)
    prior[:, 11:19, 35:42][prior[:, 11:19, 35:42] == 1] = 2  # b, with a column of a
    new = split_window(proba, flow, SplitSettings(extra=2), prior=prior).argmax(axis=0)
    assert (new[a] == 1).all()
    assert (new[b] == 2).mean() > 0.9
    assert (new[~(a | b)] == 0).all()


def test_a_prior_that_cuts_one_motion_in_two_is_undone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The prior's two parts are proposed (the object comes out of the prior in two) and
    joined again, since one motion explains both."""
    import stseg_deploy.stages.motionsplit as motionsplit

    proposed = []
    seeded = motionsplit._seeded_parts
    monkeypatch.setattr(motionsplit, "_seeded_parts", lambda *args: proposed.append(seeded(*args)) or proposed[-1])
    flow = _background(6)
    a = _square(flow, slice(8, 24), slice(8, 36), 3.0, -1.0)
    proba = _one_hot(np.where(a, 1, 0), 2)
    prior = np.where(a, 1, 0)[: T - 1].astype(np.uint8)
    prior[:, 8:24, 22:36] = 2
    out = split_window(proba, flow, SplitSettings(extra=2), prior=prior)
    assert any(len(parts) == 2 for parts in proposed)
    assert not out[2:].any()


def test_a_prior_of_another_shape_is_refused_and_one_without_flow_stays_in_place() -> None:
    flow = _background()
    proba = _one_hot(np.zeros((T, H, W), np.int64), 2)
    with pytest.raises(ValueError, match=r"prior must have shape \(2, 32, 48\)"):
        split_window(proba, flow, SplitSettings(extra=2), prior=np.zeros((T, H, W), np.uint8))
    prior = np.zeros((T - 1, H, W), np.uint8)
    prior[:, 10:14, 10:14] = 3
    moving = np.full((2, H, W), 2.0, np.float32)
    np.testing.assert_array_equal(seed_from_prior(prior, None)[-1], prior[-1])
    assert not np.array_equal(seed_from_prior(prior, moving)[-1], prior[-1])


def _drifting_windows() -> tuple[np.ndarray, np.ndarray]:
    """5 windows' (L, T, H, W) probabilities and (2, T, H, W) flows: two touching objects
    drifting right, both in segment 1."""
    rng = np.random.default_rng(7)
    flows = np.stack([_background(s) for s in range(5)])
    masks = []
    for k in range(5):
        a = _square(flows[k], slice(8, 24), slice(8 + k, 22 + k), 3.0, -1.0)
        b = _square(flows[k], slice(8, 24), slice(22 + k, 36 + k), -2.5, 2.0)
        masks.append(np.where(a | b, 1, 0))
    proba = np.stack([_one_hot(m, 2) for m in masks]) + rng.uniform(0, 0.01, size=(5, 2, T, H, W)).astype(np.float32)
    return proba, flows


def test_the_splitter_carries_its_prior_from_batch_to_batch() -> None:
    """A sequence split in batches of 2 windows gives what one batch of all of them gives:
    each window's prior is the one before, across batch boundaries too."""
    proba, flows = _drifting_windows()
    whole = MotionSplitter(SplitSettings(extra=2))(proba, flows)
    splitter = MotionSplitter(SplitSettings(extra=2))
    pieces = np.concatenate([splitter(proba[:2], flows[:2]), splitter(proba[2:4], flows[2:4]), splitter(proba[4:], flows[4:])])
    np.testing.assert_array_equal(pieces, whole)
    fresh = np.concatenate([MotionSplitter(SplitSettings(extra=2))(proba[i : i + 2], flows[i : i + 2]) for i in (0, 2, 4)])
    assert not np.array_equal(fresh, whole)  # the carry is what makes them equal


def test_the_splitter_is_split_window_with_the_previous_windows_split_as_prior() -> None:
    """The splitter over a batch equals the splitter fed the same windows one at a time, and
    both equal split_window called window by window, each given the argmax of the one
    before on the frames they share (its last T-1 frames) as prior."""
    proba, flows = _drifting_windows()
    settings = SplitSettings(extra=2)
    first_prior = np.zeros((T - 1, H, W), np.int64)
    first_prior[:, :, W // 2 :] = 1
    whole = MotionSplitter(settings, prior=first_prior)(proba, flows)
    splitter = MotionSplitter(settings, prior=first_prior)
    one_by_one = np.concatenate([splitter(proba[i : i + 1], flows[i : i + 1]) for i in range(5)])
    np.testing.assert_array_equal(one_by_one, whole)
    prior, by_hand = first_prior, []
    for p, f in zip(proba, flows):
        by_hand.append(split_window(p, f, settings, prior=prior))
        prior = by_hand[-1].argmax(axis=0)[1:]
    np.testing.assert_array_equal(np.stack(by_hand), whole)
    still = MotionSplitter(settings, move_prior=False)(proba, flows)  # the prior's last frame left in place
    prior, by_hand = None, []
    for p, f in zip(proba, flows):
        by_hand.append(split_window(p, f, settings, prior=prior, move_prior=False))
        prior = by_hand[-1].argmax(axis=0)[1:]
    np.testing.assert_array_equal(np.stack(by_hand), still)


def test_a_splitter_refuses_an_older_form() -> None:
    with pytest.raises(ValueError, match="form"):
        MotionSplitter(SplitSettings(extra=2, form=1))
