"""Tests for stseg_deploy.stages.linker: linking a stream of windows batch by batch."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stseg_deploy.stages.linker import LinkedFrame, StreamLinker, rename_proba
from stseg_kernels import link_windows, unravel_windows


@settings(max_examples=80, deadline=None)
@given(
    n_win=st.integers(1, 14),
    n_labels=st.integers(2, 5),
    cut=st.one_of(st.none(), st.integers(1, 6)),
    batch=st.integers(1, 5),
    method=st.sampled_from(["naive", "optimal"]),
    span=st.sampled_from([1, 2]),
    vote=st.booleans(),
    seed=st.integers(0, 2**31),
)
def test_stream_linking_equals_whole_array(n_win, n_labels, cut, batch, method, span, vote, seed) -> None:
    """Batch by batch, the stream gives the whole array's linking, and with the vote the
    plain-Python vote of :func:`_vote_reference` on it."""
    rng = np.random.default_rng(seed)
    proba = rng.random((n_win, n_labels, 3, 4, 5)).astype(np.float32)
    proba /= proba.sum(axis=1, keepdims=True)
    labels = proba.argmax(axis=1).astype(np.uint8)  # as the pipeline makes them
    renamed = link_windows(labels, n_labels, cut, method, span=span)
    expected = _vote_reference(renamed, cut) if vote else unravel_windows(renamed)
    frames = _stream(StreamLinker(n_labels, n_win, cut, method, span, vote), labels, proba, batch)
    assert [f.index for f in frames] == list(range(n_win + 2))
    np.testing.assert_array_equal(np.stack([f.labels for f in frames]), expected)
    unvoted = _stream(StreamLinker(n_labels, n_win, cut, method, span), labels, proba, batch)
    for f, own in zip(frames, unvoted):
        # The saved probabilities agree with the saved labels, merged or not, and hold each
        # pixel's values, two of them swapped where the vote changed its label.
        np.testing.assert_array_equal(f.proba.argmax(axis=0), f.labels)
        np.testing.assert_allclose(np.sort(f.proba, axis=0), np.sort(own.proba, axis=0))
        if method == "optimal":  # one-to-one: a permutation keeps the sum
            np.testing.assert_allclose(f.proba.sum(axis=0), 1.0, rtol=1e-5)


def _stream(linker: StreamLinker, labels: np.ndarray, proba: np.ndarray, batch: int) -> list[LinkedFrame]:
    return [f for start in range(0, len(labels), batch) for f in linker.push(labels[start : start + batch], proba[start : start + batch])]


def test_rename_proba_merges_labels() -> None:
    proba = np.array([[0.5], [0.3], [0.2]], dtype=np.float32)
    np.testing.assert_allclose(rename_proba(proba, np.array([2, 2, 0])), [[0.2], [0.0], [0.5]])


def test_merged_small_labels_do_not_outvote_the_winner() -> None:
    # Label 0 wins the pixel; 2 and 3 merge into 2. Summing them (0.6) would make the
    # saved probabilities' argmax 2 where labels.npy says 0.
    proba = np.array([[0.4], [0.0], [0.3], [0.3]], dtype=np.float32)
    mapping = np.array([0, 1, 2, 2])
    renamed = rename_proba(proba, mapping)
    assert renamed.argmax(axis=0)[0] == mapping[proba.argmax(axis=0)[0]] == 0
    np.testing.assert_allclose(renamed[:, 0], [0.4, 0.0, 0.3, 0.0])


def _vote_reference(renamed: np.ndarray, cut: int | None) -> np.ndarray:
    """Frames of the renamed windows (N, 3, h, w) with the vote, pixel by pixel in plain
    Python: frame t (1..N-1) keeps window t-1's middle label unless windows t-2 and t, in the
    same chunk, give another one and agree."""
    frames = unravel_windows(renamed).copy()
    n = renamed.shape[0]

    def chunk(w: int) -> int:
        return 0 if cut is None else w // cut

    for w in range(1, n - 1):
        if not chunk(w - 1) == chunk(w) == chunk(w + 1):
            continue
        for y in range(renamed.shape[2]):
            for x in range(renamed.shape[3]):
                a, b, c = renamed[w - 1, 2, y, x], renamed[w, 1, y, x], renamed[w + 1, 0, y, x]
                if a == c and a != b:
                    frames[w + 1, y, x] = a
    return frames


def test_vote_mends_one_window_that_went_astray() -> None:
    # Left half object 0, right half object 1, in every frame; window 2 gives its middle
    # frame's top-left pixel to object 1. Windows 1 and 3, which hold that frame too, agree.
    frames = np.zeros((7, 2, 4), np.uint8)
    frames[:, :, 2:] = 1
    windows = np.stack([frames[:-2], frames[1:-1], frames[2:]], axis=1).copy()
    windows[2, 1, 0, 0] = 1
    plain = StreamLinker(2, 5, None, "optimal", 2).push(windows)
    assert plain[3].labels[0, 0] == 1  # frame 3, window 2's middle, as the window said
    linker = StreamLinker(2, 5, None, "optimal", 2, vote=True)
    first = linker.push(windows[:2])
    assert [f.index for f in first] == [0, 1]  # frame 2 waits for window 2
    rest = linker.push(windows[2:])
    np.testing.assert_array_equal(np.stack([f.labels for f in first + rest]), frames)
    # Not across a chunk boundary: with chunks of 3 windows, window 3 begins another chunk.
    chunked = StreamLinker(2, 5, 3, "optimal", 2, vote=True).push(windows)
    assert chunked[3].labels[0, 0] == 1
