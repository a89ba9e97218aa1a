"""Temporal linking and unravelling against the slow numpy references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kernel_strategies import window_cases

import stseg_kernels
from stseg_kernels import link_windows, unravel_windows
from stseg_kernels import linking as linking_module
from stseg_kernels.reference import (
    link_windows_reference,
    unravel_windows_reference,
    window_scores_reference,
)

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@settings(max_examples=400, **SETTINGS)
@given(window_cases(), st.sampled_from(stseg_kernels.LINK_SPANS))
def test_naive_link_is_bit_identical_to_reference(case, span):
    windows, n_labels, cut = case
    got = link_windows(windows, n_labels, cut, span=span)
    want = link_windows_reference(windows, n_labels, cut, span=span)
    assert got.dtype == windows.dtype
    assert got.shape == windows.shape
    np.testing.assert_array_equal(got, want)


@settings(max_examples=100, **SETTINGS)
@given(window_cases(), st.sampled_from(["naive", "optimal"]), st.sampled_from(stseg_kernels.LINK_SPANS))
def test_both_parallel_strategies_agree(case, method, span):
    windows, n_labels, cut = case
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(linking_module, "_MIN_TASKS_PER_THREAD", 0)  # always one task per chunk
        by_chunk = link_windows(windows, n_labels, cut, method, span=span)
        mp.setattr(linking_module, "_MIN_TASKS_PER_THREAD", 10**9)  # always per window
        by_window = link_windows(windows, n_labels, cut, method, span=span)
    np.testing.assert_array_equal(by_chunk, by_window)


def _observed_mapping(before: np.ndarray, after: np.ndarray) -> dict[int, int]:
    """old label -> new label as seen on the pixels; fails if a label went two ways."""
    mapping: dict[int, int] = {}
    for old, new in zip(before.ravel().tolist(), after.ravel().tolist()):
        assert mapping.setdefault(old, new) == new, "a label was renamed inconsistently"
    return mapping


@settings(max_examples=150, **SETTINGS)
@given(window_cases(max_windows=5, max_side=8, labels=(2, 5)), st.sampled_from(stseg_kernels.LINK_SPANS))
def test_optimal_link_is_one_to_one_and_maximises_the_score(case, span):
    windows, n_labels, cut = case
    got = link_windows(windows, n_labels, cut, method="optimal", span=span)
    assert got.dtype == windows.dtype
    perms = [np.array(p) for p in itertools.permutations(range(n_labels))]
    cols = np.arange(n_labels)
    for w in range(len(windows)):
        mapping = _observed_mapping(windows[w], got[w])
        assert len(set(mapping.values())) == len(mapping), "two labels merged"
        if cut is not None and w % cut == 0 or w == 0:
            assert all(old == new for old, new in mapping.items()), "chunk start renamed"
            continue
        # Chained against the already renamed earlier windows, i.e. the output.
        chunk_start = 0 if cut is None else w - w % cut
        before = got[w - 2] if span == 2 and w - 2 >= chunk_start else None
        scores = window_scores_reference(got[w - 1], windows[w], n_labels, before)
        totals = np.array([scores[p, cols].sum() for p in perms])
        consistent = [all(p[old] == new for old, new in mapping.items()) for p in perms]
        # Some permutation that agrees with what the pixels show reaches the optimum.
        assert totals[consistent].max() >= totals.max() - 1e-9


@settings(max_examples=100, **SETTINGS)
@given(window_cases())
def test_unravel_matches_reference(case):
    windows, _, _ = case
    got = unravel_windows(windows)
    assert got.dtype == windows.dtype
    assert got.shape == (len(windows) + 2,) + windows.shape[2:]
    np.testing.assert_array_equal(got, unravel_windows_reference(windows))


def test_unravel_takes_trailing_dimensions_of_any_dtype():
    proba = np.random.default_rng(0).random((4, 3, 2, 5, 6)).astype(np.float32)
    np.testing.assert_array_equal(unravel_windows(proba), unravel_windows_reference(proba))


def test_single_window_is_returned_unchanged():
    windows = np.random.default_rng(1).integers(0, 4, (1, 3, 5, 7)).astype(np.uint8)
    for method in stseg_kernels.LINK_METHODS:
        np.testing.assert_array_equal(link_windows(windows, 4, method=method), windows)


def test_known_swap_is_undone():
    frames = np.zeros((5, 4, 6), np.uint8)
    frames[:, :, 3:] = 1
    windows = np.stack([frames[:-2], frames[1:-1], frames[2:]], axis=1)
    windows[1] = 1 - windows[1]  # the network swapped the labels in window 1
    for method in stseg_kernels.LINK_METHODS:
        linked = link_windows(windows, 2, method=method)
        np.testing.assert_array_equal(unravel_windows(linked), frames)


def test_span_two_settles_what_the_previous_window_leaves_tied():
    # Two objects, left and right, labelled 0 and 1. The network's window 1 is right on its
    # first two frames and swaps the objects on its last; window 2 is right. Against window
    # 1 alone, window 2's labels tie (each matches one shared frame); window 0's last frame,
    # also window 2's first, settles it.
    frames = np.zeros((5, 4, 6), np.uint8)
    frames[:, :, 3:] = 1
    windows = np.stack([frames[:-2], frames[1:-1], frames[2:]], axis=1)
    windows[1, 2] = 1 - windows[1, 2]
    tied = window_scores_reference(windows[1], windows[2], 2)
    assert tied[0, 0] == tied[1, 0] and tied[0, 1] == tied[1, 1]
    settled = window_scores_reference(windows[1], windows[2], 2, windows[0])
    assert settled[0, 0] > settled[1, 0] and settled[1, 1] > settled[0, 1]
    # Whichever way the network named window 2's objects, span 2 gives them window 0's labels;
    # span 1, tied, keeps one of the two namings whatever it is, so it is wrong on one of them.
    swapped = windows.copy()
    swapped[2] = 1 - swapped[2]
    for named in (windows, swapped):
        linked = link_windows(named, 2, None, "optimal", span=2)
        np.testing.assert_array_equal(linked[:2], windows[:2])  # window 1 itself is kept as it is
        np.testing.assert_array_equal(linked[2], windows[2])
    by_span_1 = [link_windows(named, 2, None, "optimal", span=1)[2] for named in (windows, swapped)]
    assert not (np.array_equal(by_span_1[0], windows[2]) and np.array_equal(by_span_1[1], windows[2]))
    # In a chunk of its own (cut size 2), window 2 is linked to nothing before it.
    np.testing.assert_array_equal(link_windows(swapped, 2, 2, "optimal", span=2)[2], swapped[2])


def test_many_labels_use_the_int64_path_and_agree_with_small_label_result():
    # n_labels > 256 makes int64 the working dtype (and table lookups, scatter counts);
    # labels that never occur cannot win, so the result equals the one for 6 labels.
    rng = np.random.default_rng(2)
    windows = rng.integers(0, 6, (5, 3, 7, 9)).repeat(2, axis=2)
    want = link_windows_reference(windows, 6, 3)
    for dtype in (np.int64, np.int32, np.uint16):
        got = link_windows(windows.astype(dtype), 300, cut_size=3)
        assert got.dtype == dtype
        np.testing.assert_array_equal(got, want)
    # 20 labels: per-label selects are replaced by a table lookup when relabelling.
    windows = rng.integers(0, 20, (6, 3, 5, 5))
    np.testing.assert_array_equal(link_windows(windows, 20), link_windows_reference(windows, 20))


def test_non_contiguous_input():
    rng = np.random.default_rng(3)
    big = rng.integers(0, 3, (6, 3, 10, 16)).astype(np.uint8)
    view = big[:, :, ::2, 1::3]
    np.testing.assert_array_equal(link_windows(view, 3, 2), link_windows_reference(np.ascontiguousarray(view), 3, 2))


def test_larger_realistic_sequence():
    # Big enough for the vectorised counting to run full 256-pixel steps and flushes.
    rng = np.random.default_rng(4)
    n_win, h, w = 40, 48, 80
    frames = np.zeros((n_win + 2, h, w), np.uint8)
    for lab in (1, 2, 3):
        y, x, dy, dx = rng.integers(0, 30, 4)
        for f in range(n_win + 2):
            frames[f, (y + dy * f // 8) % h :][:20, (x + dx * f // 8) % w :][:, :30] = lab
    windows = np.stack([frames[:-2], frames[1:-1], frames[2:]], axis=1)
    perms = np.stack([rng.permutation(4) for _ in range(n_win)]).astype(np.uint8)
    windows = perms[np.arange(n_win)[:, None, None, None], windows]
    for cut in (None, 1, 7, 10):
        np.testing.assert_array_equal(link_windows(windows, 4, cut), link_windows_reference(windows, 4, cut))


@pytest.mark.parametrize("dtype", [np.uint8, np.int16, np.int64])
@pytest.mark.parametrize("cut", [None, 2])
def test_out_and_in_place(dtype, cut):
    rng = np.random.default_rng(6)
    windows = rng.integers(0, 4, (9, 3, 6, 8)).repeat(2, axis=3).astype(dtype)
    want = link_windows_reference(windows, 4, cut)
    out = np.full_like(windows, 99)
    assert link_windows(windows, 4, cut, out=out) is out
    np.testing.assert_array_equal(out, want)
    in_place = windows.copy()
    assert link_windows(in_place, 4, cut, out=in_place) is in_place
    np.testing.assert_array_equal(in_place, want)


def test_bad_out():
    windows = np.zeros((2, 3, 4, 4), np.uint8)
    with pytest.raises(TypeError, match="out must be a numpy array"):
        link_windows(windows, 2, out=[0])
    with pytest.raises(ValueError, match="out must have the shape and dtype of window_labels"):
        link_windows(windows, 2, out=np.zeros((2, 3, 4, 4), np.int32))
    with pytest.raises(ValueError, match="out must have the shape and dtype"):
        link_windows(windows, 2, out=np.zeros((1, 3, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="C-contiguous and writeable"):
        link_windows(windows, 2, out=np.zeros((2, 3, 4, 8), np.uint8)[..., ::2])
    big = np.zeros((3, 3, 4, 4), np.uint8)
    with pytest.raises(ValueError, match="only by being the same array"):
        link_windows(big[:2], 2, out=big[1:])


def test_optimal_link_with_many_labels_is_one_to_one():
    rng = np.random.default_rng(7)
    windows = rng.integers(0, 12, (6, 3, 4, 6)).repeat(3, axis=2).repeat(2, axis=3).astype(np.uint8)
    got = link_windows(windows, 12, method="optimal")
    for w in range(len(windows)):
        mapping = _observed_mapping(windows[w], got[w])
        assert len(set(mapping.values())) == len(mapping)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(2, 5), st.one_of(st.none(), st.integers(1, 6)), st.sampled_from(["naive", "optimal"]), st.integers(0, 2**31))
def test_return_mapping_explains_the_pixels(n_win, n_labels, cut_size, method, seed) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_labels, size=(n_win, 3, 5, 6)).astype(np.uint8)
    renamed, mapping = link_windows(labels, n_labels, cut_size, method, return_mapping=True)
    np.testing.assert_array_equal(renamed, link_windows(labels, n_labels, cut_size, method))
    assert mapping.shape == (n_win, n_labels)
    for w in range(n_win):
        np.testing.assert_array_equal(renamed[w], mapping[w][labels[w]])
        if w == 0 or (cut_size is not None and w % cut_size == 0):
            np.testing.assert_array_equal(mapping[w], np.arange(n_labels))


# -- linking a stream piece by piece (start, carry) ---------------------------------------------


@settings(max_examples=150, **SETTINGS)
@given(window_cases(max_windows=12), st.sampled_from(["naive", "optimal"]), st.sampled_from(stseg_kernels.LINK_SPANS), st.data())
def test_pieces_linked_with_a_carry_equal_one_call(case, method, span, data):
    windows, n_labels, cut = case
    n_win = windows.shape[0]
    whole, whole_maps = link_windows(windows, n_labels, cut, method, span=span, return_mapping=True)
    # Cut the sequence anywhere (also inside chunks), then link the pieces in order.
    cuts = sorted(data.draw(st.sets(st.integers(1, max(1, n_win - 1)), max_size=4))) if n_win > 1 else []
    edges = [0, *[c for c in cuts if c < n_win], n_win]
    carry, parts, maps = None, [], []
    per_chunk = data.draw(st.sampled_from([0, 10**9]))  # one task per chunk, or per window
    for lo, hi in zip(edges[:-1], edges[1:]):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(linking_module, "_MIN_TASKS_PER_THREAD", per_chunk)
            labels, mapping = link_windows(
                windows[lo:hi], n_labels, cut, method, span=span, return_mapping=True, start=lo, carry=carry
            )
        # The last renamed windows: as many as a stream keeps (two), or more, or only what
        # this span needs.
        keep = data.draw(st.sampled_from([span, 3]))
        carry = np.concatenate([*parts, labels])[-keep:]
        parts.append(labels)
        maps.append(mapping)
    # The same score matrices reach the same deterministic assignment, ties included.
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    np.testing.assert_array_equal(np.concatenate(maps), whole_maps)


def test_carry_is_checked() -> None:
    windows = np.zeros((2, 3, 4, 5), np.uint8)
    with pytest.raises(ValueError, match="start must be >= 1"):
        link_windows(windows, 2, None, carry=windows[0])
    with pytest.raises(ValueError, match=r"carry must have shape \(3, 4, 5\)"):
        link_windows(windows, 2, None, start=3, carry=np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(ValueError, match="start must be an integer >= 0"):
        link_windows(windows, 2, None, start=-1)
    with pytest.raises(ValueError, match=r"carry must hold at least 2, got 1"):
        link_windows(windows, 2, None, span=2, start=3, carry=windows[0])
    with pytest.raises(ValueError, match=r"span must be one of \(1, 2\), got 3"):
        link_windows(windows, 2, None, span=3)
    # One carried window is all span 2 needs where window start-1 begins a chunk (window 1's
    # chunk starts at window 0; with cut size 3, window 4's at window 3): the answers equal
    # one call's, on labels that do get renamed.
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 3, (6, 3, 4, 5)).astype(np.uint8)
    for cut, start in ((None, 1), (3, 4)):
        whole = link_windows(labels, 3, cut, "optimal", span=2)
        assert not np.array_equal(whole, labels)
        piece = link_windows(labels[start:], 3, cut, "optimal", span=2, start=start, carry=whole[start - 1])
        np.testing.assert_array_equal(piece, whole[start:])
    # At a chunk start the carry is not used: the first window keeps its labels.
    first = np.ones((1, 3, 4, 5), np.uint8)
    np.testing.assert_array_equal(link_windows(first, 2, 2, start=4, carry=np.zeros((3, 4, 5), np.uint8)), first)


def test_threads_change_nothing_but_the_threads() -> None:
    import numba

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, (25, 3, 6, 7)).astype(np.uint8)
    before = numba.get_num_threads()
    for method in ("naive", "optimal"):
        expected = link_windows(labels, 4, 5, method, return_mapping=True)
        got = link_windows(labels, 4, 5, method, return_mapping=True, threads=1)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])
    assert numba.get_num_threads() == before  # restored
    with pytest.raises(ValueError, match="threads must be an integer >= 1 or None"):
        link_windows(labels, 4, threads=0)
