"""stseg_kernels.argmax: the label map of probabilities equals numpy's argmax over labels,
ties going to the first label, for several shapes and label counts."""

from __future__ import annotations

import numpy as np
import pytest

from stseg_kernels import argmax_labels


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 4, 3, 5, 7), (3, 9, 1, 16, 24), (1, 256, 2, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_equals_numpy_argmax(shape, dtype) -> None:
    proba = np.random.default_rng(sum(shape)).random(shape).astype(dtype)
    got = argmax_labels(proba)
    assert got.dtype == np.uint8 and got.shape == (shape[0], *shape[2:])
    np.testing.assert_array_equal(got, proba.argmax(axis=1))


def test_ties_go_to_the_first_label_and_strided_input_is_read_right() -> None:
    proba = np.zeros((2, 3, 4, 5), np.float32)
    proba[:, 1, :2] = 0.5
    proba[:, 2, :2] = 0.5  # a tie between 1 and 2: 1 wins, as in numpy
    proba[:, 2, 3] = 0.9
    np.testing.assert_array_equal(argmax_labels(proba), proba.argmax(axis=1))
    assert (argmax_labels(proba)[:, :2] == 1).all() and (argmax_labels(proba)[:, 2] == 0).all()
    strided = np.moveaxis(np.random.default_rng(1).random((2, 5, 6, 4), np.float32), 3, 1)
    np.testing.assert_array_equal(argmax_labels(strided), strided.argmax(axis=1))


@pytest.mark.parametrize(
    ("proba", "message"),
    [(np.zeros(4, np.float32), r"\(B, L, \.\.\.\) float32"), (np.zeros((1, 2, 3), np.int64), "float32 or float64"),
     (np.zeros((1, 257, 2), np.float32), "1 to 256 labels")],
)
def test_bad_input(proba, message) -> None:
    with pytest.raises(ValueError, match=message):
        argmax_labels(proba)
