"""stseg_kernels._remap: relabelling through lookup tables on each of its three paths (one pass
up to 4 labels, selects up to 16, a gather beyond), equal to numpy's fancy indexing, and the
maximum it reports for out-of-range labels."""

from __future__ import annotations

import numpy as np
import pytest

from stseg_kernels._remap import label_values, remap_frame, remap_frames


@pytest.mark.parametrize("n_labels", [1, 2, 4, 5, 16, 17, 40])
@pytest.mark.parametrize("dtype", [np.uint8, np.int64])
def test_remap_frame_equals_a_table_lookup(n_labels: int, dtype) -> None:
    rng = np.random.default_rng(n_labels)
    src = rng.integers(0, n_labels, 1000).astype(dtype)
    lut = rng.permutation(max(n_labels, 1)).astype(np.uint8)[:n_labels]
    dst = np.empty(src.shape, np.uint8)
    top = remap_frame(src, label_values(n_labels, src.dtype), lut, dst)
    np.testing.assert_array_equal(dst, lut[src])
    assert top == src.max()


def test_identity_table_copies() -> None:
    src = np.array([0, 3, 1, 2, 2], np.uint8)
    dst = np.empty_like(src)
    assert remap_frame(src, label_values(4, src.dtype), np.arange(4, dtype=np.uint8), dst) == 3
    np.testing.assert_array_equal(dst, src)


@pytest.mark.parametrize("n_labels", [3, 10, 30])
def test_labels_out_of_range_are_reported_not_read(n_labels: int) -> None:
    src = np.array([0, 1, n_labels + 5], np.int64)
    dst = np.zeros(3, np.uint8)
    assert remap_frame(src, label_values(n_labels, src.dtype), np.zeros(n_labels, np.uint8), dst) == n_labels + 5


def test_remap_frames_uses_each_frames_table() -> None:
    src = np.array([[0, 1, 2], [2, 1, 0], [1, 1, 1]], np.uint8)
    luts = np.array([[0, 1, 2], [2, 0, 1]], np.uint8)
    lut_of_frame = np.array([1, 0, 1], np.int64)
    dst = np.empty_like(src)
    top = remap_frames(src, label_values(3, src.dtype), luts, lut_of_frame, dst)
    np.testing.assert_array_equal(dst, [[2, 0, 1], [2, 1, 0], [0, 0, 0]])
    np.testing.assert_array_equal(top, [2, 2, 1])


def test_label_values_are_clipped_to_the_select_paths() -> None:
    assert label_values(2, np.dtype(np.uint8)).tolist() == [0, 1, 2, 3]
    assert label_values(9, np.dtype(np.int64)).tolist() == list(range(9))
    assert len(label_values(100, np.dtype(np.uint8))) == 17 and label_values(1, np.dtype(np.uint8)).dtype == np.uint8
