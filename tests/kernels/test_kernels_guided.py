"""stseg_kernels.guided: the fused last step of a guided filter against its numpy
reference, for several grids, upsampling factors and segment counts."""

from __future__ import annotations

import numpy as np
import pytest

from stseg_kernels import guided_labels
from stseg_kernels.reference import guided_labels_reference


@pytest.mark.parametrize(
    "coarse, full, n_labels",
    [((6, 8), (24, 32), 4), ((5, 7), (37, 53), 3), ((12, 20), (12, 20), 2), ((1, 1), (4, 6), 5), ((9, 13), (60, 101), 1)],
)
def test_equals_the_reference_where_segments_are_not_tied(coarse, full, n_labels) -> None:
    rng = np.random.default_rng(sum(full) + n_labels)
    a = rng.normal(size=(*coarse, n_labels, 3)).astype(np.float32)
    b = rng.normal(size=(*coarse, n_labels)).astype(np.float32)
    guide = rng.integers(0, 256, size=(*full, 3), dtype=np.uint8)
    got = guided_labels(a, b, guide)
    expected, values = guided_labels_reference(a, b, guide)
    assert got.shape == full and got.dtype == np.uint8
    ordered = np.sort(values, axis=2)
    clear = ordered[..., -1] - ordered[..., -2] > 1e-4 if n_labels > 1 else np.ones(full, bool)
    assert clear.mean() > 0.99  # the comparison covers nearly every pixel
    np.testing.assert_array_equal(got[clear], expected[clear])


def test_constant_coefficients_give_the_segment_with_the_largest_offset() -> None:
    a = np.zeros((3, 4, 3, 3), np.float32)
    b = np.zeros((3, 4, 3), np.float32)
    b[..., 2] = 0.5
    b[..., 1] = 0.5  # tied with 2: the first wins
    guide = np.full((9, 12, 3), 77, np.uint8)
    np.testing.assert_array_equal(guided_labels(a, b, guide), 1)
    a[..., 0, 0] = 2.0  # segment 0 grows with red: 2 · red / 255 beats 0.5 where red > 63.75
    guide[:, :6, 0] = 30
    guide[:, 6:, 0] = 200
    labels = guided_labels(a, b, guide)
    assert (labels[:, :6] == 1).all() and (labels[:, 6:] == 0).all()


def test_empty_segments_left_out_give_the_labels_of_all_segments() -> None:
    """Segments 1, 3 and 4 are empty (coefficients 0: value 0 everywhere). Given only the
    others' coefficients they still win exactly where they would: where every other value is
    below 0, and on ties at 0 where they come first."""
    rng = np.random.default_rng(7)
    n, present = 6, np.array([0, 2, 5])
    a = np.zeros((5, 7, n, 3), np.float32)
    b = np.zeros((5, 7, n), np.float32)
    a[:, :, present] = rng.normal(size=(5, 7, 3, 3)).astype(np.float32)
    b[:, :, present] = rng.normal(size=(5, 7, 3)).astype(np.float32)
    b[:2, :, 0] = 0.0  # segment 0 at exactly 0 on the top rows: ties with the empty ones,
    a[:2, :, 0] = 0.0  # and wins them (it comes first) where the others are below 0
    b[:2, :, [2, 5]] = -1.0
    a[:2, :, [2, 5]] = 0.0
    guide = rng.integers(0, 256, size=(20, 28, 3), dtype=np.uint8)
    full = guided_labels(a, b, guide)
    left_out = guided_labels(a[:, :, present], b[:, :, present], guide, present, n)
    np.testing.assert_array_equal(left_out, full)
    assert set(np.unique(full)) >= {0, 1}  # the empty segment 1 wins somewhere, 0 too
    b[:, :, 0] = -5.0  # now 0 never wins: segment 1 takes its place
    full = guided_labels(a, b, guide)
    np.testing.assert_array_equal(guided_labels(a[:, :, present], b[:, :, present], guide, present, n), full)
    empty = guided_labels(a[:, :, :0], b[:, :, :0], guide, np.array([], np.int64), n)
    np.testing.assert_array_equal(empty, 0)  # nothing computed: all 0, the first segment wins
    with pytest.raises(ValueError, match="segments must be 3 increasing indices in"):
        guided_labels(a[:, :, present], b[:, :, present], guide, present[::-1], n)
    with pytest.raises(ValueError, match="segments must be 3 increasing indices in"):
        guided_labels(a[:, :, present], b[:, :, present], guide, present, 5)
    with pytest.raises(ValueError, match="segments must be 3 increasing indices, one per coefficient channel"):
        guided_labels(a[:, :, present], b[:, :, present], guide, present[None], n)
    with pytest.raises(ValueError, match="n_segments is needed"):
        guided_labels(a[:, :, :0], b[:, :, :0], guide, np.array([], np.int64))
    with pytest.raises(ValueError, match="cover 1 to 256 segments, got 300"):
        guided_labels(a[:, :, present], b[:, :, present], guide, present, 300)


def test_bad_arguments_are_named() -> None:
    guide = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match=r"a must be \(h, w, L, 3\)"):
        guided_labels(np.zeros((2, 2, 3, 2), np.float32), np.zeros((2, 2, 3), np.float32), guide)
    with pytest.raises(ValueError, match="guide must be"):
        guided_labels(np.zeros((2, 2, 3, 3), np.float32), np.zeros((2, 2, 3), np.float32), guide.astype(np.float32))


def test_taps_are_where_opencv_puts_them() -> None:
    """The reference shares the kernel's idea of the taps; OpenCV's bilinear resize does not."""
    cv2 = pytest.importorskip("cv2")
    rng = np.random.default_rng(7)
    for coarse, full in (((6, 8), (24, 32)), ((5, 7), (37, 53)), ((9, 13), (60, 101))):
        b = rng.normal(size=(*coarse, 1)).astype(np.float32)
        a = np.zeros((*coarse, 1, 3), np.float32)
        expected = cv2.resize(b[..., 0], (full[1], full[0]), interpolation=cv2.INTER_LINEAR)
        _, values = guided_labels_reference(a, b, np.zeros((*full, 3), np.uint8))
        np.testing.assert_allclose(values[..., 0], expected, atol=1e-5)
        # The kernel with two segments, one a constant: the label says on which side of it
        # the upsampled offsets fall, so the kernel's taps are checked too.
        a2 = np.zeros((*coarse, 2, 3), np.float32)
        b2 = np.concatenate([np.zeros_like(b), b], axis=2)
        labels = guided_labels(a2, b2, np.zeros((*full, 3), np.uint8))
        clear = np.abs(expected) > 1e-4
        np.testing.assert_array_equal(labels[clear], (expected > 0)[clear])


def test_guided_coefficients_match_a_per_pixel_inverse() -> None:
    from stseg_kernels import guided_coefficients
    from stseg_kernels.reference import guided_coefficients_reference

    rng = np.random.default_rng(3)
    h, w, n = 5, 7, 3
    guide = rng.random((h, w, 3), dtype=np.float32)
    mean_i = guide * 0.9 + 0.05
    mean_p = rng.random((h, w, n), dtype=np.float32)
    # Box means of products exceed the products of box means (a variance is >= 0).
    box_products = np.stack([mean_i[..., i] * mean_i[..., j] for i, j in ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))], -1)
    box_products[..., [0, 3, 5]] += rng.random((h, w, 3), dtype=np.float32) * 0.05
    box_cross = (mean_p[:, :, :, None] * mean_i[:, :, None, :]).reshape(h, w, 3 * n) + rng.normal(0, 0.01, (h, w, 3 * n)).astype(np.float32)
    for eps in (1e-4, 1e-2):
        a, b = guided_coefficients(mean_i, mean_p, box_products, box_cross, eps)
        ref_a, ref_b = guided_coefficients_reference(mean_i, mean_p, box_products, box_cross, eps)
        np.testing.assert_allclose(a, ref_a, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(b, ref_b, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="expected mean_i"):
        guided_coefficients(mean_i[..., :2], mean_p, box_products, box_cross, 1e-4)
