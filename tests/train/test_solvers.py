"""Tests for the θ solvers (stseg_train.solvers)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from piecewise import piecewise_flow as shared_piecewise_flow

from stseg_train.motion import basis as make_basis
from stseg_train.motion import flow_from_theta
from stseg_train.solvers import DEFAULT_SOLVER, SOLVERS, fit_theta, l1_objective

B, L, T, H, W = 2, 3, 3, 24, 32


def piecewise_flow(seed: int, model: str = "QuadraticFullPT"):
    return shared_piecewise_flow(seed, (B, L, T, H, W), model)


def noisy_case(seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flow with noise and 10% gross outliers, soft probabilities."""
    flow, proba, A, _ = piecewise_flow(seed)
    g = torch.Generator().manual_seed(seed + 100)
    flow = flow + 0.2 * torch.randn(flow.shape, generator=g)
    outliers = torch.rand(B, 1, T, H, W, generator=g) < 0.1
    flow = torch.where(outliers, flow + 30 * (torch.rand(flow.shape, generator=g) - 0.5), flow)
    logits = 3 * proba + torch.randn(proba.shape, generator=g)
    return flow, torch.softmax(logits, dim=1), A


@pytest.mark.parametrize("method", SOLVERS)
@pytest.mark.parametrize("model", ["Affine", "QuadraticFullPT"])
def test_exact_recovery(method: str, model: str) -> None:
    flow, proba, A, theta = piecewise_flow(0, model)
    est = fit_theta(flow, proba, A, method=method)
    assert est.shape == theta.shape
    assert not est.requires_grad
    assert torch.allclose(est, theta, atol=1e-3)
    assert l1_objective(flow, proba, A, est).max() < 1e-3


@pytest.mark.parametrize("method", SOLVERS)
def test_small_segment_flow_recovered(method: str) -> None:
    """On a small segment θ is ill-conditioned but the fitted flow must still match."""
    flow, proba, A, _ = piecewise_flow(6)
    labels = proba.argmax(dim=1)
    labels[:, :, 2:8, 3:9] = 2  # a 6×6 patch with its own motion
    g = torch.Generator().manual_seed(60)
    theta = torch.randn(B, L, 2, A.shape[0], generator=g)
    proba = F.one_hot(labels, L).permute(0, 4, 1, 2, 3).float()
    flow = (flow_from_theta(theta, A) * proba.unsqueeze(2)).sum(dim=1)
    est = fit_theta(flow, proba, A, method=method)
    fitted = (flow_from_theta(est, A) * proba.unsqueeze(2)).sum(dim=1)
    assert (fitted - flow).abs().max() < 1e-3


def test_irls_beats_lstsq_and_matches_lbfgs() -> None:
    flow, proba, A = noisy_case(1)
    obj = {m: l1_objective(flow, proba, A, fit_theta(flow, proba, A, m)).mean() for m in SOLVERS}
    assert obj["irls"] <= obj["lstsq"]
    assert obj["irls"] <= 1.01 * obj["lbfgs"]
    assert DEFAULT_SOLVER == "irls"
    default = l1_objective(flow, proba, A, fit_theta(flow, proba, A)).mean()
    assert torch.allclose(default, obj["irls"])


def test_irls_is_monotone_in_iterations() -> None:
    flow, proba, A = noisy_case(2)
    objs = [
        l1_objective(flow, proba, A, fit_theta(flow, proba, A, "irls", iters=n)).mean().item()
        for n in (0, 2, 5, 10)
    ]
    assert all(b <= a * (1 + 1e-4) for a, b in zip(objs, objs[1:]))


@pytest.mark.parametrize("method", SOLVERS)
def test_empty_segment_and_zero_flow(method: str) -> None:
    flow, proba, A, _ = piecewise_flow(3)
    proba = torch.cat([proba, torch.zeros(B, 1, T, H, W)], dim=1)  # segment 3 never used
    est = fit_theta(flow, proba, A, method=method)
    assert torch.isfinite(est).all()
    assert est[:, 3].abs().max() < 1e-6
    zero = fit_theta(torch.zeros_like(flow), proba, A, method=method)
    assert torch.isfinite(zero).all() and zero.abs().max() < 1e-6


def test_no_gradient_to_inputs() -> None:
    flow, proba, A, _ = piecewise_flow(4)
    proba = proba.clone().requires_grad_(True)
    est = fit_theta(flow, proba, A, "lbfgs", max_iter=5)
    assert not est.requires_grad
    assert proba.grad is None


def test_bad_inputs() -> None:
    flow, proba, A, _ = piecewise_flow(5)
    with pytest.raises(ValueError, match="irls"):
        fit_theta(flow, proba, A, method="newton")
    with pytest.raises(ValueError):
        fit_theta(flow[:, :1], proba, A)
    with pytest.raises(ValueError):
        fit_theta(flow, proba, A[:, :, :-1])


def test_l1_objective_value() -> None:
    A = make_basis("Affine", 1, 2, 2)
    theta = torch.zeros(1, 1, 2, 3)
    flow = torch.ones(1, 2, 1, 2, 2)
    proba = torch.full((1, 1, 1, 2, 2), 0.5)
    # |0 - 1| + |0 - 1| = 2 per pixel, weighted by 0.5.
    assert torch.allclose(l1_objective(flow, proba, A, theta), torch.tensor([1.0]))


# -- lbfgs-paper: the original's θ --------------------------------------------------------


def _original_theta(flow: torch.Tensor, proba: torch.Tensor, model: str) -> torch.Tensor:
    """The original's solver written out: θ over the joint (u, v) parameter vector of a
    block-diagonal grid, least squares with sqrt(p) weights, then one default LBFGS step
    (strong Wolfe) on the scaled l1 coherence loss averaged over the batch."""
    b, l, t, h, w = proba.shape
    k_basis = make_basis(model, t, h, w, dtype=flow.dtype)  # (K, T, H, W)
    k = k_basis.shape[0]
    grid = torch.zeros(2, t, h, w, 2 * k, dtype=flow.dtype)
    grid[0, ..., :k] = k_basis.permute(1, 2, 3, 0)
    grid[1, ..., k:] = k_basis.permute(1, 2, 3, 0)
    design = grid.reshape(-1, 2 * k)  # rows ordered (c, t, i, j)
    theta0 = torch.zeros(b, l, 2 * k, dtype=flow.dtype)
    for s in range(b):
        for m in range(l):
            wsq = proba[s, m].reshape(1, -1).repeat(2, 1).reshape(-1, 1).sqrt()
            theta0[s, m] = torch.linalg.lstsq(design * wsq, flow[s].reshape(-1, 1) * wsq).solution[:, 0]

    def coherence(theta: torch.Tensor) -> torch.Tensor:
        param = (design @ theta.reshape(-1, 2 * k).T).T.reshape(b, l, 2, t, h, w)
        per_pixel = (proba * (param - flow[:, None]).abs().sum(dim=2)).sum(dim=1)
        mu = flow.abs().sum(dim=1).mean(dim=(-2, -1), keepdim=True)
        return (per_pixel / mu).flatten(1).mean(dim=1).mean()

    theta = theta0.clone().requires_grad_(True)
    optimiser = torch.optim.LBFGS([theta], line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = coherence(theta)
        loss.backward()
        return loss

    optimiser.step(closure)
    return theta.detach().reshape(b, l, 2, k)


def test_lbfgs_paper_is_the_original_solver() -> None:
    flow, proba, _ = noisy_case(5)
    flow, proba = flow.double(), proba.double()
    A = make_basis("QuadraticFullPT", T, H, W, dtype=torch.float64)
    ours = fit_theta(flow, proba, A, "lbfgs-paper", distance="l1", scale=True)
    theirs = _original_theta(flow, proba, "QuadraticFullPT")
    # Same start (up to a 1e-12 ridge floor) and the same L-BFGS: equal to rounding.
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-6)
    # The L-BFGS step improves on its least-squares start.
    start = fit_theta(flow, proba, A, "lstsq", ridge=0.0)
    assert l1_objective(flow, proba, A, ours).sum() < l1_objective(flow, proba, A, start).sum()


# -- coupled motion models ----------------------------------------------------------------------


@pytest.mark.parametrize("method", sorted(SOLVERS))
@pytest.mark.parametrize("name", ["QuadraticPlanar", "QuadraticPlanarPT"])
def test_coupled_models_are_fitted_in_their_own_parameters(name: str, method: str) -> None:
    """Exact planar flows are recovered; on noisy flow the fit stays in the model's span
    (u and v tied), where an unconstrained fit of the same layout would leave it."""
    from stseg_train.motion import expansion

    gen = torch.Generator().manual_seed(2)
    E = expansion(name)
    A = make_basis(name, T, H, W)
    params = torch.randn(B, L, E.shape[-1], generator=gen)
    theta = torch.einsum("ckp,blp->blck", E, params)
    labels = torch.randint(0, L, (B, T, H, W), generator=gen)
    hard = F.one_hot(labels, L).permute(0, 4, 1, 2, 3).float()
    flow = (flow_from_theta(theta, A) * hard[:, :, None]).sum(dim=1)
    options = {"distance": "l1", "scale": True} if method == "lbfgs-paper" else {}
    est = fit_theta(flow, hard, A, method, expansion=E, **options)
    torch.testing.assert_close(est, theta, rtol=1e-4, atol=1e-4)
    noisy = flow + torch.randn(flow.shape, generator=gen)
    est = fit_theta(noisy, hard, A, method, expansion=E, **options)
    stacked = E.reshape(-1, E.shape[-1])
    back = torch.linalg.lstsq(stacked, est.reshape(B * L, -1).T).solution
    torch.testing.assert_close((stacked @ back).T.reshape(est.shape), est, rtol=1e-4, atol=1e-4)
    free = fit_theta(noisy, hard, A, "lstsq")
    residual = free.reshape(B * L, -1).T - stacked @ torch.linalg.lstsq(stacked, free.reshape(B * L, -1).T).solution
    assert residual.abs().max() > 1e-2
