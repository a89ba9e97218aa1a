"""stseg_deploy.stages.carry: probabilities carried along the flow hold a segment the network drops
for a few frames, follow the motion, and respect linking's chunks."""

from __future__ import annotations

import numpy as np
import pytest

from stseg_deploy.stages.carry import CarrySettings, TemporalCarry, match_labels, splat_forward


def _square(h: int, w: int, top: int, left: int, side: int) -> np.ndarray:
    """(2, h, w) float32 one-hot probabilities: label 1 on a square, label 0 elsewhere."""
    proba = np.zeros((2, h, w), np.float32)
    proba[0] = 1.0
    proba[0, top : top + side, left : left + side] = 0.0
    proba[1, top : top + side, left : left + side] = 1.0
    return proba


def test_splat_forward_moves_each_pixel_along_its_own_flow() -> None:
    proba = _square(20, 24, 5, 6, 4)
    flow = np.zeros((2, 20, 24), np.float32)
    flow[0], flow[1] = 3.0, -2.0  # 3 px right, 2 px up
    moved, coverage = splat_forward(proba, flow)
    np.testing.assert_allclose(moved[:, :18, 3:], _square(20, 24, 3, 9, 4)[:, :18, 3:], atol=1e-6)
    # Uncovered: the bottom two rows and the left three columns got nothing.
    assert not coverage[18:].any() and not coverage[:, :3].any() and (coverage[:18, 3:] == 1).all()
    # Half a pixel: bilinear, the square's right edge shared between two pixels.
    flow[0], flow[1] = 0.5, 0.0
    half, coverage = splat_forward(proba, flow)
    np.testing.assert_allclose(half[1, 6, 6:11], [0.5, 1.0, 1.0, 1.0, 0.5], atol=1e-6)
    assert coverage[6, 0] == 0.5 and (coverage[:, 1:] == 1).all()


def test_only_the_object_moves_and_the_background_stays() -> None:
    """Pushed, a moving square lands whole where it goes: nothing of it is left behind and
    none of the background ahead of it is taken for it (what reading frame t-1's flow at
    frame t's pixels would do)."""
    proba = _square(16, 20, 4, 4, 5)
    flow = np.zeros((2, 16, 20), np.float32)
    flow[0][proba[1] > 0] = 3.0  # the square moves 3 px right, the background is still
    moved, coverage = splat_forward(proba, flow)
    assert (np.argmax(moved, axis=0)[coverage > 0.5] == _square(16, 20, 4, 7, 5).argmax(axis=0)[coverage > 0.5]).all()
    assert (coverage[4:9, 4:7] == 0).all()  # where the square was: uncovered background


def test_a_dropped_segment_holds_while_weight_to_the_k_exceeds_a_half() -> None:
    h, w = 16, 20
    flow = np.zeros((2, h, w), np.float32)
    flow[0] = 1.0  # the object moves one pixel right per frame
    seen = [_square(h, w, 4, 2 + t, 5) for t in range(3)]
    dropped = np.zeros((2, h, w), np.float32)
    dropped[0] = 1.0  # the network loses it: all background
    for weight, held in ((0.8, 3), (0.9, 6), (0.0, 0)):
        carry = TemporalCarry(2, n_windows=20, cut_size=None, settings=CarrySettings(mode="forward", weight=weight))
        for t, proba in enumerate(seen):
            _, labels = carry(t, proba, None if t == 0 else flow)
            assert labels.sum() == 25
        kept = []
        for t in range(3, 10):
            _, labels = carry(t, dropped, flow)
            kept.append(bool(labels.any()))
            if labels.any():  # where it is held, it has moved on with the flow
                rows, cols = np.nonzero(labels)
                assert cols.min() == 2 + t and rows.min() == 4
        assert kept == [True] * held + [False] * (7 - held)


def test_chunks_are_matched_before_blending() -> None:
    """Linking names labels afresh in each chunk: the carried segments are renamed to the
    new chunk's names, so a swapped naming is followed, not fought."""
    h, w = 12, 12
    flow = np.zeros((2, h, w), np.float32)
    proba = _square(h, w, 3, 3, 5)
    swapped = proba[::-1].copy()
    carry = TemporalCarry(2, n_windows=8, cut_size=2, settings=CarrySettings(mode="forward", weight=0.9))
    assert [carry.chunk(i) for i in range(10)] == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
    for t in range(3):
        carry(t, proba, flow if t else None)
    blended, labels = carry(3, swapped, flow)  # frame 3 starts chunk 1, named the other way
    np.testing.assert_array_equal(labels, swapped.argmax(axis=0))
    np.testing.assert_allclose(blended, swapped, atol=1e-6)
    with pytest.raises(ValueError, match="frames must come in order: got 5 after 3"):
        carry(5, swapped, flow)


def test_match_labels_is_one_to_one() -> None:
    carried = np.array([[0, 0, 1, 1], [2, 2, 2, 1]])
    labels = np.array([[1, 1, 2, 2], [0, 0, 0, 2]])
    np.testing.assert_array_equal(match_labels(carried, labels, 3), [1, 2, 0])


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match=r"carry weight must be in \[0, 1\), got 1.0"):
        CarrySettings(mode="forward", weight=1.0)
    with pytest.raises(ValueError, match="carry must be one of"):
        CarrySettings(mode="backward")
    assert CarrySettings(mode="forward", weight=0.5).record() == {"carry": "forward", "temporal_carry": {"weight": 0.5}}
    assert CarrySettings(mode="none", weight=0.5).record() == {"carry": "none"}
