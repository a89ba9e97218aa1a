"""Tests for the parametric motion models (stseg_train.motion)."""

from __future__ import annotations

import pytest
import torch

from stseg_train.motion import MOTION_MODELS, basis, flow_from_theta, n_params


def test_parameter_counts() -> None:
    assert {name: n_params(name) for name in MOTION_MODELS} == {
        "Affine": 6,
        "AffinePT": 12,
        "QuadraticFull": 12,
        "QuadraticFullPT": 24,
    }


@pytest.mark.parametrize("name", sorted(MOTION_MODELS))
def test_basis_shape_and_range(name: str) -> None:
    b = basis(name, 3, 5, 7)
    assert b.shape == (len(MOTION_MODELS[name]), 3, 5, 7)
    assert b.dtype == torch.float32
    assert b.abs().max() <= 1.0 + 1e-6
    # Terms are distinct functions: the design matrix has full column rank.
    assert torch.linalg.matrix_rank(b.reshape(b.shape[0], -1).double()) == b.shape[0]


def test_basis_terms_values() -> None:
    T, H, W = 3, 4, 5
    b = basis("QuadraticFullPT", T, H, W, dtype=torch.float64)
    t = torch.linspace(-1, 1, T, dtype=torch.float64).view(T, 1, 1).expand(T, H, W)
    i = torch.linspace(-1, 1, H, dtype=torch.float64).view(1, H, 1).expand(T, H, W)
    j = torch.linspace(-1, 1, W, dtype=torch.float64).view(1, 1, W).expand(T, H, W)
    expected = [t, t * i * j, t * i**2, t * j**2, t * i, t * j, i * j, i**2, j**2, i, j, t * 0 + 1]
    for k, e in enumerate(expected):
        assert torch.allclose(b[k], e), MOTION_MODELS["QuadraticFullPT"][k]
    affine_pt = basis("AffinePT", T, H, W, dtype=torch.float64)
    assert torch.allclose(affine_pt[1], i * t) and torch.allclose(affine_pt[2], j * t)
    # Corners: i is the row coordinate, j the column one.
    aff = basis("Affine", 1, H, W)
    assert aff[0, 0, 0, 0] == -1 and aff[0, 0, -1, 0] == 1
    assert aff[1, 0, 0, 0] == -1 and aff[1, 0, 0, -1] == 1


def test_unknown_model() -> None:
    with pytest.raises(ValueError, match="QuadraticFullPT"):
        basis("Quadratic", 3, 4, 5)


def test_flow_from_theta() -> None:
    b = basis("Affine", 2, 3, 4)
    theta = torch.zeros(2, 3, 2, 3)
    theta[0, 1, 0, 2] = 1.5  # constant u translation of segment 1 of sample 0
    theta[1, 2, 1, 1] = 2.0  # v = 2·j for segment 2 of sample 1
    f = flow_from_theta(theta, b)
    assert f.shape == (2, 3, 2, 2, 3, 4)
    assert torch.allclose(f[0, 1, 0], torch.full((2, 3, 4), 1.5))
    assert torch.allclose(f[0, 1, 1], torch.zeros(2, 3, 4))
    assert torch.allclose(f[1, 2, 1], 2.0 * b[1])
    with pytest.raises(ValueError):
        flow_from_theta(torch.zeros(1, 1, 2, 6), b)
