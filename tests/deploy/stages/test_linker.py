"""Tests for stseg_deploy.stages.linker: linking a stream of windows batch by batch."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from stseg_deploy.stages.linker import StreamLinker, rename_proba
from stseg_kernels import link_windows, unravel_windows


@settings(max_examples=80, deadline=None)
@given(
    n_win=st.integers(1, 14),
    n_labels=st.integers(2, 5),
    cut=st.one_of(st.none(), st.integers(1, 6)),
    batch=st.integers(1, 5),
    method=st.sampled_from(["naive", "optimal"]),
    span=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**31),
)
def test_stream_linking_equals_whole_array(n_win, n_labels, cut, batch, method, span, seed) -> None:
    rng = np.random.default_rng(seed)
    proba = rng.random((n_win, n_labels, 3, 4, 5)).astype(np.float32)
    proba /= proba.sum(axis=1, keepdims=True)
    labels = proba.argmax(axis=1).astype(np.uint8)  # as the pipeline makes them
    expected = unravel_windows(link_windows(labels, n_labels, cut, method, span=span))
    linker = StreamLinker(n_labels, n_win, cut, method, span)
    frames = []
    for start in range(0, n_win, batch):
        frames.extend(linker.push(labels[start : start + batch], proba[start : start + batch]))
    assert [f.index for f in frames] == list(range(n_win + 2))
    np.testing.assert_array_equal(np.stack([f.labels for f in frames]), expected)
    for f in frames:
        # The saved probabilities agree with the saved labels, merged or not.
        np.testing.assert_array_equal(f.proba.argmax(axis=0), f.labels)
        if method == "optimal":  # one-to-one: a permutation keeps the sum
            np.testing.assert_allclose(f.proba.sum(axis=0), 1.0, rtol=1e-5)


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
