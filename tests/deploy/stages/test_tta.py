"""stseg_deploy.stages.tta: mirrored windows, segment alignment, the flip average."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from fakes import FakeModel

from stseg_deploy.stages.tta import align_segments, flip_average, mirror_windows, run_flipped


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).astype(np.float32)


def _mirror_swapping_model() -> FakeModel:
    """A model whose segments 0 and 1 are 'moving right' and 'moving left': on the mirrored
    flow they trade places, while segments 2 and 3 (vertical motion) keep theirs."""
    model = FakeModel(n_labels=4)
    model.weights = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0], [0.0, -0.5]], dtype=np.float32)
    return model


def test_mirror_reverses_columns_and_negates_u() -> None:
    windows = np.random.default_rng(0).normal(size=(2, 2, 3, 5, 7)).astype(np.float32)
    mirrored = mirror_windows(windows)
    np.testing.assert_array_equal(mirrored[:, 0], -windows[:, 0, :, :, ::-1])
    np.testing.assert_array_equal(mirrored[:, 1], windows[:, 1, :, :, ::-1])
    np.testing.assert_array_equal(mirror_windows(mirrored), windows)
    assert mirrored.flags["C_CONTIGUOUS"] and mirrored.dtype == np.float32


def test_alignment_undoes_a_permutation_per_window() -> None:
    rng = np.random.default_rng(1)
    reference = _softmax(4 * rng.normal(size=(3, 5, 3, 6, 8)))
    perms = np.array([[3, 0, 4, 1, 2], [0, 1, 2, 3, 4], [4, 3, 2, 1, 0]])
    other = np.empty_like(reference)
    for b, perm in enumerate(perms):
        other[b, perm] = reference[b]  # reference segment k is other's segment perm[k]
    np.testing.assert_array_equal(align_segments(reference, other), perms)


@pytest.mark.parametrize("n_labels", [2, 4, 6])
def test_alignment_is_the_best_of_all_permutations(n_labels: int) -> None:
    rng = np.random.default_rng(n_labels)
    reference = _softmax(rng.normal(size=(8, n_labels, 3, 4, 5)))
    other = _softmax(rng.normal(size=(8, n_labels, 3, 4, 5)))
    perms = align_segments(reference, other)
    overlap = np.einsum("bkx,blx->bkl", reference.reshape(8, n_labels, -1), other.reshape(8, n_labels, -1))
    for b in range(8):
        best = max(sum(overlap[b, k, p[k]] for k in range(n_labels)) for p in itertools.permutations(range(n_labels)))
        assert sorted(perms[b]) == list(range(n_labels))
        assert sum(overlap[b, k, perms[b, k]] for k in range(n_labels)) == pytest.approx(best, rel=1e-12)


def test_flip_average_aligns_before_averaging() -> None:
    model = _mirror_swapping_model()
    windows = np.random.default_rng(2).normal(scale=2, size=(3, 2, 3, 6, 8)).astype(np.float32)
    plain = model.run(windows)
    mirrored = model.run(mirror_windows(windows))
    # The mirrored run really permutes: unaligned, segments 0 and 1 would be mixed.
    assert np.abs(mirrored[:, 0, ..., ::-1] - plain[:, 1]).max() < 1e-6
    np.testing.assert_allclose(flip_average(plain, mirrored), plain, atol=1e-6)
    naive = 0.5 * (plain + mirrored[..., ::-1])
    assert np.abs(naive[:, 0] - naive[:, 1]).max() < 1e-6  # what averaging without alignment gives


def test_run_flipped_is_one_model_call_of_both_halves() -> None:
    model = _mirror_swapping_model()
    windows = np.random.default_rng(3).normal(scale=2, size=(5, 2, 3, 6, 8)).astype(np.float32)
    proba, labels, features = run_flipped(model, windows, features=True)
    assert model.calls == [10]
    np.testing.assert_array_equal(model.inputs[0][:5], windows)
    np.testing.assert_array_equal(model.inputs[0][5:], mirror_windows(windows))
    np.testing.assert_allclose(proba, model.run(windows), atol=1e-6)
    np.testing.assert_array_equal(labels, proba.argmax(axis=1))
    np.testing.assert_array_equal(features, windows)  # the fake's features are its input: the plain half's


def test_run_flipped_without_features() -> None:
    model = _mirror_swapping_model()
    windows = np.random.default_rng(4).normal(size=(2, 2, 3, 4, 6)).astype(np.float32)
    proba, labels, features = run_flipped(model, windows)
    assert features is None and proba.shape == (2, 4, 3, 4, 6) and labels.shape == (2, 3, 4, 6)
