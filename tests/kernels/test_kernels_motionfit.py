"""stseg_kernels.motionfit: block-diagonal weighted and L1 fits agree with one numpy solve per
block, recover a known motion, ignore outliers, and accept column subsets of any strides."""

from __future__ import annotations

import numpy as np
import pytest

from stseg_kernels import block_residual, fit_blocks, robust_fit_blocks
from stseg_kernels.reference import fit_blocks_reference, robust_fit_blocks_reference

TERMS = 6


def _basis(t: int = 3, h: int = 9, w: int = 11) -> np.ndarray:
    """(6·t, t·h·w): per frame 1, i, j, ij, i², j² on its own pixels (the motion split's basis)."""
    ii, jj = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    terms = np.stack([np.ones_like(ii), ii, jj, ii * jj, ii**2, jj**2]).reshape(TERMS, -1)
    basis = np.zeros((TERMS * t, t, h * w))
    for f in range(t):
        basis[TERMS * f : TERMS * (f + 1), f] = terms
    return basis.reshape(TERMS * t, -1)


def test_fit_matches_one_solve_per_block_and_recovers_a_motion() -> None:
    rng = np.random.default_rng(0)
    basis = _basis()
    truth = rng.normal(size=(2, basis.shape[0]))
    values = truth @ basis
    weights = rng.uniform(0.5, 2.0, basis.shape[1])
    theta = fit_blocks(basis, values, weights, TERMS)
    np.testing.assert_allclose(theta, truth, atol=1e-9)
    for ridge, jitter in ((1e-3, 1e-6), (0.5, 0.0)):
        np.testing.assert_allclose(
            fit_blocks(basis, values, weights, TERMS, ridge, jitter),
            fit_blocks_reference(basis, values, weights, TERMS, ridge, jitter), rtol=1e-9, atol=1e-12,
        )
    np.testing.assert_allclose(block_residual(basis, values, theta), 0.0, atol=1e-9)


def test_robust_fit_ignores_outliers_and_matches_the_reference_on_column_subsets() -> None:
    rng = np.random.default_rng(1)
    basis = _basis()
    truth = rng.normal(size=(2, basis.shape[0]))
    values = truth @ basis + rng.normal(scale=0.01, size=(2, basis.shape[1]))
    outliers = rng.random(basis.shape[1]) < 0.1
    values[:, outliers] += 20.0
    # Fancy-indexed columns come Fortran-ordered: the kernel must read them as they are.
    members = rng.random(basis.shape[1]) < 0.8
    sub_basis, sub_values = basis[:, members], values[:, members]
    assert not sub_basis.flags.c_contiguous
    theta, residual = robust_fit_blocks(sub_basis, sub_values, 8, TERMS, 1e-3, 1e-6, 1e-3)
    ref_theta, ref_residual = robust_fit_blocks_reference(sub_basis, sub_values, 8, TERMS, 1e-3, 1e-6, 1e-3)
    np.testing.assert_allclose(theta, ref_theta, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(residual, ref_residual, rtol=1e-7, atol=1e-9)
    assert np.median(residual[~outliers[members]]) < 0.05 and np.min(residual[outliers[members]]) > 10


def test_a_block_without_pixels_gets_zero_and_bad_shapes_are_refused() -> None:
    basis = _basis()
    first_frame = basis[0] != 0
    values = np.ones((2, int(first_frame.sum())))
    theta = fit_blocks(basis[:, first_frame], values, np.ones(values.shape[1]), TERMS)
    assert theta[:, :TERMS].any() and not theta[:, TERMS:].any()
    with pytest.raises(ValueError, match="whole blocks of 4 terms"):
        fit_blocks(basis, np.ones((2, basis.shape[1])), np.ones(basis.shape[1]), 4)
    with pytest.raises(ValueError, match="must share N"):
        fit_blocks(basis, np.ones((2, 3)), np.ones(3), TERMS)
    with pytest.raises(ValueError, match=r"weights must have shape \(297,\), got \(3,\)"):
        fit_blocks(basis, np.ones((2, basis.shape[1])), np.ones(3), TERMS)
    with pytest.raises(ValueError, match="iterations must be >= 1"):
        robust_fit_blocks(basis, np.ones((2, basis.shape[1])), 0, TERMS, 0.0, 0.0, 1e-3)


def test_pixels_in_any_order_give_the_same_fit() -> None:
    """Frames' pixels in runs take the vectorised path, shuffled ones the pixel-by-pixel one:
    the same θ either way (to rounding), and the same as numpy's."""
    rng = np.random.default_rng(2)
    basis = _basis()
    values = rng.normal(size=(2, basis.shape[0])) @ basis + rng.normal(scale=0.05, size=(2, basis.shape[1]))
    order = rng.permutation(basis.shape[1])
    runs = robust_fit_blocks(basis, values, 6, TERMS, 1e-3, 1e-6, 1e-3)
    shuffled = robust_fit_blocks(basis[:, order], values[:, order], 6, TERMS, 1e-3, 1e-6, 1e-3)
    reference = robust_fit_blocks_reference(basis, values, 6, TERMS, 1e-3, 1e-6, 1e-3)
    np.testing.assert_allclose(runs[0], shuffled[0], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(runs[1][order], shuffled[1], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(runs[0], reference[0], rtol=1e-7, atol=1e-9)
