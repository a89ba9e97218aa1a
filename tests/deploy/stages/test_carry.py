"""stseg_deploy.stages.carry: probabilities carried along the flow hold a segment the network drops
for a few frames, follow the motion, and respect linking's chunks."""

from __future__ import annotations

import numpy as np
import pytest

from stseg_deploy.stages.carry import CarrySettings, TemporalCarry, match_labels, pull_back, splat_forward


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
            ((_, _, labels),) = carry.push(t, proba, None if t == 0 else flow)
            assert labels.sum() == 25
        kept = []
        for t in range(3, 10):
            ((_, _, labels),) = carry.push(t, dropped, flow)
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
        carry.push(t, proba, flow if t else None)
    ((_, blended, labels),) = carry.push(3, swapped, flow)  # frame 3 starts chunk 1, named the other way
    np.testing.assert_array_equal(labels, swapped.argmax(axis=0))
    np.testing.assert_allclose(blended, swapped, atol=1e-6)
    with pytest.raises(ValueError, match="frames must come in order: got 5 after 3"):
        carry.push(5, swapped, flow)


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
    assert CarrySettings(mode="both", lookahead=3).record() == {"carry": "both", "temporal_carry": {"weight": 0.9, "lookahead": 3}}
    with pytest.raises(ValueError, match="carry lookahead applies to carry 'both' only"):
        CarrySettings(mode="forward", lookahead=3)
    for bad in (0, 2.5, True, 33):
        with pytest.raises(ValueError, match=r"carry lookahead must be an integer in \[1, 32\]"):
            CarrySettings(mode="both", lookahead=bad)
    # An output recorded before the lookahead existed reads as what it was: forward only.
    assert CarrySettings.from_record({"carry": "forward", "temporal_carry": {"weight": 0.9}}) == CarrySettings(mode="forward")


def test_pull_back_reads_where_each_pixel_goes() -> None:
    nxt = _square(20, 24, 3, 9, 4)  # frame t+1: the square at rows 3-6, columns 9-12
    flow = np.zeros((2, 20, 24), np.float32)
    flow[0], flow[1] = 3.0, -2.0  # every pixel of frame t goes 3 px right, 2 px up
    pulled, coverage = pull_back(nxt, flow)
    np.testing.assert_allclose(pulled[:, 2:, :21], _square(20, 24, 5, 6, 4)[:, 2:, :21], atol=1e-6)
    # x + flow(x) leaves the frame in the top two rows and the last three columns.
    assert not coverage[:2].any() and not coverage[:, 21:].any() and (coverage[2:, :21] == 1).all()
    assert (pulled[:, :2] == 0).all()
    # Half a pixel out: the sample is half inside, renormalised to sum 1.
    flow[0], flow[1] = 0.5, 0.0
    half, coverage = pull_back(nxt, flow)
    np.testing.assert_allclose(coverage[:, 23], 0.5)
    np.testing.assert_allclose(half.sum(axis=0)[:, 23], 1.0, atol=1e-6)
    np.testing.assert_allclose(half[1, 4, 8:13], [0.5, 1.0, 1.0, 1.0, 0.5], atol=1e-6)


def _run(carry: TemporalCarry, frames: list[np.ndarray], flow: np.ndarray) -> dict[int, np.ndarray]:
    out = {}
    for t, proba in enumerate(frames):
        for index, _, labels in carry.push(t, proba, None if t == 0 else flow):
            assert index not in out and index == len(out)  # once each, in order
            out[index] = labels
    return out


def test_both_holds_an_object_from_where_it_moves_next() -> None:
    """A square still for the first 3 frames (so the network misses it) and then moving:
    the forward carry cannot hold it there, the backward pass can, back to as many frames
    as its lookahead and the weight allow; frames are given out lookahead frames late, and
    every frame at the end."""
    h, w, n = 16, 20, 10
    flow = np.zeros((2, h, w), np.float32)
    missed = np.zeros((2, h, w), np.float32)
    missed[0] = 1.0
    frames = [missed] * 3 + [_square(h, w, 4, 2, 5)] * (n - 3)
    forward = _run(TemporalCarry(2, n - 2, None, CarrySettings(mode="forward")), frames, flow)
    assert [bool(forward[t].any()) for t in range(n)] == [False] * 3 + [True] * (n - 3)
    for lookahead, reached in ((1, 2), (2, 1), (6, 0)):
        carry = TemporalCarry(2, n - 2, None, CarrySettings(mode="both", lookahead=lookahead))
        given = [len(carry.push(t, frames[t], None if t == 0 else flow)) for t in range(n)]
        assert given == [0] * lookahead + [1] * (n - 1 - lookahead) + [lookahead + 1]
        both = _run(TemporalCarry(2, n - 2, None, CarrySettings(mode="both", lookahead=lookahead)), frames, flow)
        assert [bool(both[t].any()) for t in range(n)] == [False] * reached + [True] * (n - reached)
        for t in range(reached, n):
            np.testing.assert_array_equal(both[t], _square(h, w, 4, 2, 5).argmax(axis=0))
    # A weight of 0 pulls nothing back: the same labels as the forward pass.
    still = _run(TemporalCarry(2, n - 2, None, CarrySettings(mode="both", weight=0.0, lookahead=3)), frames, flow)
    for t in range(n):
        np.testing.assert_array_equal(still[t], forward[t])


def test_both_renames_across_chunks_when_pulling_back() -> None:
    """Frames of a later chunk name the square the other way; pulled back into the chunk
    before, it keeps that chunk's name."""
    h, w = 12, 12
    flow = np.zeros((2, h, w), np.float32)
    missed = np.zeros((2, h, w), np.float32)
    missed[0] = 1.0
    square = _square(h, w, 3, 3, 5)
    # Chunks of cut size 2: frames 0-2, then 3-4. Frames 0-2 miss the square; frame 3, the
    # next chunk's first, has it with the names swapped.
    frames = [missed, missed, missed, square[::-1].copy(), square[::-1].copy()]
    carry = TemporalCarry(2, n_windows=3, cut_size=2, settings=CarrySettings(mode="both", lookahead=2))
    out = _run(carry, frames, flow)
    assert not out[0].any()  # 3 frames back: 0.9^3 < 1/2
    for t in (1, 2):
        np.testing.assert_array_equal(out[t], square.argmax(axis=0))
    for t in (3, 4):
        np.testing.assert_array_equal(out[t], square[::-1].argmax(axis=0))


def _one_hot(labels: np.ndarray, n_labels: int) -> np.ndarray:
    return (labels[None] == np.arange(n_labels)[:, None, None]).astype(np.float32)


def test_both_renames_three_labels_in_the_right_direction() -> None:
    """With three labels a renaming is not its own inverse: the later chunk names background,
    object A and object B 1, 2, 0 (chunk 0 named them 0, 1, 2); chunk 0 misses A. Pulled
    back, A must get chunk 0's name, 1."""
    h, w = 12, 16
    flow = np.zeros((2, h, w), np.float32)
    named = np.zeros((h, w), np.int64)
    named[2:6, 2:6] = 1  # A
    named[6:10, 9:13] = 2  # B
    missed = np.where(named == 1, 0, named)
    later = np.array([1, 2, 0])[named]
    frames = [_one_hot(missed, 3)] * 3 + [_one_hot(later, 3)] * 2
    carry = TemporalCarry(3, n_windows=3, cut_size=2, settings=CarrySettings(mode="both", lookahead=2))
    out = _run(carry, frames, flow)
    np.testing.assert_array_equal(out[0], missed)  # 3 frames back: 0.9^3 < 1/2
    for t in (1, 2):
        np.testing.assert_array_equal(out[t], named)
    for t in (3, 4):
        np.testing.assert_array_equal(out[t], later)


def test_a_dropped_segment_is_held_only_where_the_largest_segment_took_it() -> None:
    """An object that stops moves like the background, so the network gives it the
    background's segment: held there. Taken by another object's segment (objects merging),
    it is not."""
    from stseg_deploy.stages.carry import held_pixels

    h, w = 12, 16
    named = np.zeros((h, w), np.int64)
    named[2:6, 2:6] = 1  # A, 16 pixels
    named[5:11, 5:14] = 2  # B, 54 pixels, over A's lower right corner
    carried = _one_hot(named, 3)
    coverage = np.ones((h, w), np.float32)
    to_background = np.where(named == 1, 0, named)
    held = held_pixels(carried, coverage, _one_hot(to_background, 3))
    np.testing.assert_array_equal(held, (named == 1).astype(np.float32))
    to_b = np.where(named == 1, 2, named)
    assert not held_pixels(carried, coverage, _one_hot(to_b, 3)).any()
