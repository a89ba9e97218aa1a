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
        "QuadraticPlanar": 8,
        "QuadraticPlanarPT": 13,
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


# -- coupled models (the original's QuadraticPlanar family) ---------------------------------

# The original's grid strings, per parameter: the factors of the term in u and in v.
ORIGINAL_PLANAR = {
    "QuadraticPlanar": ("ij jj 0 0 0 i j 1", "ii ij i j 1 0 0 0"),
    "QuadraticPlanarPT": ("ij ijt jj jjt 0 0 0 i it j jt 1 t", "ii iit ij ijt i it j jt 1 t 0 0 0"),
}


@pytest.mark.parametrize("name", sorted(ORIGINAL_PLANAR))
def test_coupled_models_give_the_originals_flows(name: str) -> None:
    """Build the original's (2, T, H, W, P) grid from its strings (each letter a factor,
    '0' a zero column) and compare its flow with E·p laid out on our basis."""
    from stseg_train.motion import COUPLED_MODELS, expansion, n_params

    T, H, W = 3, 7, 9
    t, i, j = torch.meshgrid(torch.linspace(-1, 1, T), torch.linspace(-1, 1, H), torch.linspace(-1, 1, W), indexing="ij")
    factors = {"t": t, "i": i, "j": j, "1": torch.ones_like(t)}
    u_spec, v_spec = (spec.split() for spec in ORIGINAL_PLANAR[name])
    assert n_params(name) == len(u_spec) == len(v_spec) == len(COUPLED_MODELS[name][1])
    grid = torch.zeros(2, T, H, W, len(u_spec))
    for c, spec in enumerate((u_spec, v_spec)):
        for p, term in enumerate(spec):
            if term != "0":
                grid[c, ..., p] = torch.stack([factors[f] for f in term]).prod(dim=0)
    params = torch.randn(5, len(u_spec), generator=torch.Generator().manual_seed(0))
    theirs = torch.einsum("cthwp,np->ncthw", grid, params)
    theta = torch.einsum("ckp,np->nck", expansion(name), params)
    ours = flow_from_theta(theta[:, None], basis(name, T, H, W))[:, 0]
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)


def test_separable_models_have_no_expansion() -> None:
    from stseg_train.motion import expansion

    assert expansion("QuadraticFullPT") is None
    with pytest.raises(ValueError, match="QuadraticPlanarPT"):
        expansion("Planar")
