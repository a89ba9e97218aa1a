"""stseg_kernels.motionfit: fits named by pixel place agree with the basis fits of the same pixels
(numpy references), in any pixel order and for either model; the patch consensus is the
plain loop over patches; bad input is refused."""

from __future__ import annotations

import numpy as np
import pytest

from stseg_kernels import MotionGrid, quadratic_terms
from stseg_kernels.reference import fit_blocks_reference, robust_fit_blocks_reference

T, H, W = 3, 9, 11


def _basis(terms: int) -> np.ndarray:
    """(terms·T, T·H·W): each frame's first ``terms`` of 1, i, j, ij, i², j², written out."""
    ii, jj = np.meshgrid(np.linspace(-1, 1, H), np.linspace(-1, 1, W), indexing="ij")
    rows = np.stack([np.ones_like(ii), ii, jj, ii * jj, ii**2, jj**2])[:terms].reshape(terms, -1)
    basis = np.zeros((terms * T, T, H * W))
    for f in range(T):
        basis[terms * f : terms * (f + 1), f] = rows
    return basis.reshape(terms * T, -1)


def _flow(seed: int) -> np.ndarray:
    """(2, T, H, W): a quadratic motion per frame, noise, and 10 % outliers of 20 px."""
    rng = np.random.default_rng(seed)
    basis = _basis(6)
    values = rng.normal(size=(2, basis.shape[0])) @ basis + rng.normal(scale=0.02, size=(2, basis.shape[1]))
    values[:, rng.random(basis.shape[1]) < 0.1] += 20.0
    return values.reshape(2, T, H, W)


def test_the_terms_are_the_quadratic_model_on_the_unit_square() -> None:
    terms = quadratic_terms(3, 5).reshape(6, 3, 5)
    i, j = np.meshgrid([-1.0, 0.0, 1.0], [-1.0, -0.5, 0.0, 0.5, 1.0], indexing="ij")
    np.testing.assert_array_equal(terms, np.stack([np.ones_like(i), i, j, i * j, i * i, j * j]))


@pytest.mark.parametrize("terms, ridge", [(6, 1e-3), (6, 0.0), (3, 0.0)])
@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_a_fit_by_place_is_the_basis_fit_of_the_same_pixels(terms: int, ridge: float, order: str) -> None:
    rng = np.random.default_rng(terms)
    flow = _flow(1)
    grid = MotionGrid(flow)
    pixels = np.flatnonzero(rng.random(T * H * W) < 0.7)
    if order == "shuffled":  # no frame in one run: every pixel its own run
        pixels = rng.permutation(pixels)
    basis, values = _basis(terms)[:, pixels], flow.reshape(2, -1)[:, pixels]
    for iterations in (1, 4):
        theta, residual = grid.fit(pixels, iterations, terms=terms, ridge=ridge, jitter=1e-6, floor=1e-3)
        ref_theta, ref_residual = robust_fit_blocks_reference(basis, values, iterations, terms, ridge, 1e-6, 1e-3)
        np.testing.assert_allclose(theta, ref_theta, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(residual, ref_residual, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(grid.residual(pixels, theta), ref_residual, rtol=1e-7, atol=1e-9)
    if terms == 6:  # after 4 reweightings
        clean = residual < 1.0  # the L1 fit passes through the inliers and leaves the outliers
        assert clean.mean() > 0.85 and np.median(residual[clean]) < 0.05 and residual[~clean].min() > 10


def test_the_first_fit_takes_the_weights_given_and_leaves_them_unchanged() -> None:
    rng = np.random.default_rng(5)
    flow = _flow(2)
    grid = MotionGrid(flow)
    pixels = np.flatnonzero(rng.random(T * H * W) < 0.8)
    weights = rng.uniform(0.0, 2.0, pixels.size)
    kept = weights.copy()
    theta, residual = grid.fit(pixels, 1, ridge=1e-3, jitter=1e-6, weights=weights)
    basis, values = _basis(6)[:, pixels], flow.reshape(2, -1)[:, pixels]
    np.testing.assert_allclose(theta, fit_blocks_reference(basis, values, weights, 6, 1e-3, 1e-6), rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(residual, np.abs(values - theta @ basis).sum(axis=0), rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(weights, kept)
    with pytest.raises(ValueError, match=rf"weights must have shape \({pixels.size},\)"):
        grid.fit(pixels, 1, weights=weights[:-1])


def test_least_squares_recovers_a_motion_and_a_frame_without_pixels_gets_zero() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(size=(2, 6 * T))
    grid = MotionGrid((truth @ _basis(6)).reshape(2, T, H, W))
    theta, residual = grid.fit(np.arange(T * H * W), 1)
    np.testing.assert_allclose(theta, truth, atol=1e-9)
    np.testing.assert_allclose(residual, 0.0, atol=1e-9)
    middle = np.arange(H * W, 2 * H * W)  # frame 1 only
    theta, _ = grid.fit(middle, 2, ridge=1e-3)
    assert theta[:, 6:12].any() and not theta[:, :6].any() and not theta[:, 12:].any()
    np.testing.assert_array_equal(grid.residual(np.arange(H * W), theta), np.abs(grid.flow[:, : H * W]).sum(axis=0))


@pytest.mark.parametrize("which", ["all", "a subset without frame 1, shuffled"])
def test_the_consensus_is_the_patch_with_most_inliers(which: str) -> None:
    """Two translations side by side, the left one larger: the patches on the left agree with
    most pixels, so the left motion's pixels are the inliers; checked against the plain loop
    (fit each patch by place, count inliers, keep the first best)."""
    rng = np.random.default_rng(4)
    flow = np.zeros((2, T, H, W))
    flow[0, :, :, :7] = 2.0
    flow[1, :, :, 7:] = -3.0
    flow += rng.normal(scale=0.01, size=flow.shape)
    grid = MotionGrid(flow)
    pixels = np.arange(T * H * W)
    if which != "all":
        pixels = rng.permutation(pixels[(pixels // (H * W) != 1) & (rng.random(pixels.size) < 0.7)])
    centers = np.unique(np.linspace(0, pixels.size - 1, 16).astype(np.int64))
    best = grid.consensus(pixels, centers, 2, 0.3, jitter=1e-6)
    rows, cols = pixels % (H * W) // W, pixels % W
    expected, most = None, -1
    for c in centers:
        near = (np.abs(rows - rows[c]) <= 2) & (np.abs(cols - cols[c]) <= 2)
        theta, _ = grid.fit(pixels[near], 1, terms=3, jitter=1e-6)
        inliers = grid.residual(pixels, theta) <= 0.3
        if inliers.sum() > most:
            expected, most = inliers, int(inliers.sum())
    np.testing.assert_array_equal(best, expected)
    np.testing.assert_array_equal(best, cols < 7)  # the left, larger motion


def test_bad_input_is_refused() -> None:
    grid = MotionGrid(np.zeros((2, T, H, W), np.float32))
    assert grid.flow.dtype == np.float64 and grid.shape == (T, H, W)
    with pytest.raises(ValueError, match=r"flow must be \(2, T, h, w\)"):
        MotionGrid(np.zeros((3, T, H, W)))
    with pytest.raises(ValueError, match="outside the grid"):
        grid.fit(np.array([0, T * H * W]), 1)
    with pytest.raises(ValueError, match="outside the grid"):
        grid.residual(np.array([-1]), np.zeros((2, 6 * T)))
    with pytest.raises(ValueError, match="terms must be 3 or 6"):
        grid.fit(np.arange(10), 1, terms=4)
    with pytest.raises(ValueError, match="iterations must be a whole number >= 1"):
        grid.fit(np.arange(10), 0)
    with pytest.raises(ValueError, match=r"theta must be \(2, 9\) or \(2, 18\)"):
        grid.residual(np.arange(10), np.zeros((2, 7)))
    with pytest.raises(ValueError, match="1-D array of flat integer indices"):
        grid.fit(np.zeros(4), 1)
    with pytest.raises(ValueError, match="centers must be positions in pixels"):
        grid.consensus(np.arange(10), np.array([10]), 2, 0.1)
    with pytest.raises(ValueError, match="singular normal equations"):
        grid.fit(np.arange(10), 1)  # one row: i, i·j and i² repeat 1 and j
    with pytest.raises(ValueError, match="singular normal equations"):
        grid.fit(np.arange(2 * W), 1)  # two rows: i² repeats a mix of 1 and i, to rounding
    assert np.isfinite(grid.fit(np.arange(2 * W), 1, jitter=1e-6)[0]).all()
    with pytest.raises(ValueError, match="pixels must be a 1-D array"):
        grid.fit([[0, 1]], 1)
    with pytest.raises(ValueError, match="centers must be a 1-D array"):
        grid.consensus(np.arange(10), np.array([0.5]), 2, 0.1)
    with pytest.raises(ValueError, match="weights must be finite and >= 0"):
        grid.fit(np.arange(10), 1, weights=np.full(10, np.nan))
    with pytest.raises(ValueError, match="terms must be 3 or 6"):
        grid.fit(np.arange(10), 1, terms=3.0)
    np.testing.assert_array_equal(grid.fit(list(range(2 * W)), 1, jitter=1e-6)[0], grid.fit(np.arange(2 * W), 1, jitter=1e-6)[0])
    assert grid.residual([0, 1], np.zeros((2, 6 * T)).tolist()).shape == (2,)
    np.testing.assert_array_equal(grid.fit(np.arange(10, dtype=np.int32), 1, jitter=1e-6)[0], grid.fit(np.arange(10), 1, jitter=1e-6)[0])
