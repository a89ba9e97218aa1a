"""Fitting the parametric motion of each segment (θ) for fixed probabilities.

For probabilities ``p: (B, L, T, H, W)`` and flow ``F: (B, 2, T, H, W)`` (pixels), θ_l
minimises ``Σ_x p_l(x) · ‖f_θl(x) − F(x)‖₁`` over the window. The L1 norm separates the u and
v components, so each (sample, segment, component) is an independent weighted L1 regression on
the K basis terms. Four solvers share one entry point, :func:`fit_theta`:

- ``"lstsq"``: weighted least squares (weights p); not the L1 minimiser, but a start.
- ``"lbfgs"``: the original method: lstsq, then L-BFGS with strong-Wolfe line search on the
  L1 objective of all samples and segments at once.
- ``"lbfgs-paper"``: exactly the original's: least squares without ridge (a failed or NaN
  solve gives 0), then one ``torch.optim.LBFGS`` step with strong-Wolfe line search and
  torch's default settings (max_iter 20, max_eval 25, tolerance_grad 1e-7, tolerance_change
  1e-9) on the training loss's own coherence term (its distance, scaled per frame when the
  loss is) averaged over the batch, all samples jointly.
- ``"irls"``: iteratively reweighted least squares, ``w = p / max(|r|, eps)``; each step is
  a majorise-minimise step of the (eps-smoothed) L1 objective, so it never increases it.

A coupled motion model (``expansion``, see :mod:`stseg_train.motion`) ties u and v, so its
systems are solved jointly in its P parameters; every solver takes one.

Every solver runs under ``torch.no_grad`` (L-BFGS builds its own local graph) and returns a
detached ``theta: (B, L, 2, K)``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .coherence import coherence_per_sample
from .motion import flow_from_theta

__all__ = ["SOLVERS", "DEFAULT_SOLVER", "fit_theta", "l1_objective"]

SOLVERS = ("irls", "lstsq", "lbfgs", "lbfgs-paper")
# What method="default" means: the fastest solver whose L1 objective is within 1% of L-BFGS
# (python -m stseg_train.bench.solvers). Training runs saved before the presets store
# "default" for it; new runs name their solver (TrainConfig.solver, lbfgs-paper since it
# measured best on real flow).
DEFAULT_SOLVER = "irls"
DEFAULT_IRLS_ITERS = 10


def l1_objective(flow: Tensor, proba: Tensor, basis: Tensor, theta: Tensor) -> Tensor:
    """Weighted L1 fitting error per sample.

    Args:
        flow: ``(B, 2, T, H, W)`` pixels.
        proba: ``(B, L, T, H, W)``.
        basis: ``(K, T, H, W)``.
        theta: ``(B, L, 2, K)``.

    Returns:
        ``(B,)``: ``mean_x Σ_l p_l(x) (|Δu| + |Δv|)``, pixels (the mean is over the T·H·W
        grid points, so the value does not grow with the image size).
    """
    pred = flow_from_theta(theta, basis)  # (B, L, 2, T, H, W)
    err = (pred - flow.unsqueeze(1)).abs().sum(dim=2)  # (B, L, T, H, W)
    return (proba * err).sum(dim=1).flatten(1).mean(dim=1)


def _pair_products(design: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Distinct products of basis pairs ``(k ≤ m)`` at each grid point.

    The normal matrices of all (sample, segment, component) systems are then one GEMM of the
    weights ``(S, N)`` with the ``(N, U)`` product matrix, instead of forming ``(S, K, N)``.
    Monomial bases repeat many products (``i · j = ij · 1``), so duplicates are merged first:
    for QuadraticFullPT this takes the GEMM from 78 to 54 columns.

    Returns:
        ``(products (U, N), inverse (P,), rows (P,), cols (P,))``: the upper-triangle entry
        ``(rows[q], cols[q])`` of a normal matrix is column ``inverse[q]`` of the GEMM.
    """
    k = design.shape[0]
    rows, cols = torch.triu_indices(k, k, device=design.device)
    prods = design[rows] * design[cols]
    # Bucket rows by a fixed random projection, then confirm with allclose: equal monomials
    # built in a different order differ by rounding only.
    gen = torch.Generator(device="cpu").manual_seed(0)
    probe = torch.randn(prods.shape[1], generator=gen, dtype=prods.dtype).to(prods.device)
    keys = (prods @ probe).tolist()
    scale = float(prods.abs().sum(dim=1).max()) + 1e-12
    kept: list[int] = []
    inverse: list[int] = []
    for q, key in enumerate(keys):
        for u, first in enumerate(kept):
            if abs(keys[first] - key) <= 1e-5 * scale and torch.allclose(
                prods[first], prods[q], rtol=1e-5, atol=1e-6
            ):
                inverse.append(u)
                break
        else:
            inverse.append(len(kept))
            kept.append(q)
    inv = torch.tensor(inverse, device=design.device)
    return prods[kept], inv, rows, cols


def _normal_matrices(
    weights: Tensor, pairs: tuple[Tensor, Tensor, Tensor, Tensor], k: int, ridge: float
) -> Tensor:
    """Normal matrices ``Σ_n w_sn A_n A_nᵀ`` for every system s: ``(S, K, K)`` float64.

    Args:
        weights: ``(S, N)`` non-negative.
        pairs: output of :func:`_pair_products` for the ``(K, N)`` design.
        ridge: relative Tikhonov term (times the mean diagonal, plus an absolute floor), so an
            empty segment (all weights 0) gives θ = 0 instead of a singular system.
    """
    prods, inverse, rows, cols = pairs
    upper = (weights @ prods.T).double()[:, inverse]  # (S, P)
    # K is small: solve in float64 so poorly conditioned bases (e.g. t and t·i² on 3 frames)
    # and near-empty segments stay accurate.
    normal = weights.new_zeros(weights.shape[0], k, k, dtype=torch.float64)
    normal[:, rows, cols] = upper
    normal[:, cols, rows] = upper
    diag_mean = normal.diagonal(dim1=-2, dim2=-1).mean(dim=-1)
    eye = torch.eye(k, dtype=torch.float64, device=weights.device)
    return normal + (ridge * diag_mean + 1e-12)[:, None, None] * eye


def _solve_coupled(normal: Tensor, rhs: Tensor, expansion: Tensor, b: int, l: int) -> Tensor:
    """Weighted least squares in a coupled model's P parameters.

    ``normal: (B·L, 2, K, K)`` and ``rhs: (B·L, 2, K)`` float64 are each component's normal
    equations in the separable layout; with ``θ_c = E_c p`` the joint system is
    ``Σ_c E_cᵀ N_c E_c p = Σ_c E_cᵀ r_c``. Returns ``θ: (B, L, 2, K)`` float64.
    """
    e = expansion.double()
    joint = torch.einsum("ckp,sckq,cqr->spr", e, normal, e)
    right = torch.einsum("ckp,sck->sp", e, rhs)
    params = torch.linalg.solve(joint, right.unsqueeze(-1))[..., 0]  # (B·L, P)
    return torch.einsum("ckp,sp->sck", e, params).reshape(b, l, 2, e.shape[1])


def _lstsq(
    flow: Tensor,
    proba: Tensor,
    basis: Tensor,
    ridge: float = 1e-6,
    pairs: tuple[Tensor, Tensor, Tensor, Tensor] | None = None,
    expansion: Tensor | None = None,
) -> Tensor:
    b, l = proba.shape[:2]
    k = basis.shape[0]
    design = basis.reshape(k, -1)
    if pairs is None:
        pairs = _pair_products(design)
    # Both components share the weights p: B·L systems with 2 right-hand sides each.
    weights = proba.reshape(b * l, -1)
    normal = _normal_matrices(weights, pairs, k, ridge)
    weighted = proba.reshape(b, l, 1, -1) * flow.reshape(b, 1, 2, -1)  # (B, L, 2, N)
    rhs = (weighted.reshape(b * l * 2, -1) @ design.T).view(b * l, 2, k)
    if expansion is not None:
        both = normal.unsqueeze(1).expand(-1, 2, -1, -1)
        return _solve_coupled(both, rhs.double(), expansion, b, l).to(basis.dtype)
    theta = torch.linalg.solve(normal, rhs.transpose(1, 2).double())  # (S, K, 2)
    return theta.transpose(1, 2).reshape(b, l, 2, k).to(basis.dtype)


def _irls(
    flow: Tensor,
    proba: Tensor,
    basis: Tensor,
    iters: int = DEFAULT_IRLS_ITERS,
    eps: float = 1e-3,
    ridge: float = 1e-6,
    init: Tensor | None = None,
    eps0: float = 0.3,
    decay: float = 0.7,
    expansion: Tensor | None = None,
) -> Tensor:
    """IRLS for the weighted L1 fit, starting from lstsq (or ``init``).

    Each iteration solves the weighted least squares with ``w = p / max(|r|, floor)``, a
    majorise-minimise step of the L1 objective smoothed (Huber-like) below ``floor``. The floor
    is relative to the sample's mean |F| (plus 1e-6 px) and shrinks as
    ``max(eps, eps0 · decay^it)``: a large floor first damps the start from the lstsq fit (whose
    residuals are dominated by outliers), a small one at the end approaches the exact L1 fit.
    Defaults (10 iterations) are tuned with python -m stseg_train.bench.solvers.
    """
    b, l = proba.shape[:2]
    k = basis.shape[0]
    s = b * l * 2
    design = basis.reshape(k, -1)
    pairs = _pair_products(design)
    theta = _lstsq(flow, proba, basis, ridge, pairs, expansion) if init is None else init
    y = flow.reshape(b, 1, 2, -1)  # (B, 1, 2, N)
    p = proba.reshape(b, l, 1, -1)  # (B, L, 1, N)
    scale = flow.abs().flatten(1).mean(dim=1).view(b, 1, 1, 1)
    # The per-pixel work is a few passes over (S, N) arrays; reusing two buffers in place
    # avoids allocating (and page-faulting) tens of MB per iteration on CPU.
    weights = design.new_empty(s, design.shape[1])
    weighted_y = torch.empty_like(weights)
    w4 = weights.view(b, l, 2, -1)
    for it in range(iters):
        floor = max(eps, eps0 * decay**it) * scale + 1e-6
        torch.matmul(theta.reshape(s, k), design, out=weights)
        w4.sub_(y).abs_()
        torch.maximum(w4, floor, out=w4)
        torch.div(p, w4, out=w4)  # now p / max(|r|, floor)
        torch.mul(w4, y, out=weighted_y.view(b, l, 2, -1))
        normal = _normal_matrices(weights, pairs, k, ridge)
        rhs = (weighted_y @ design.T).double()  # (S, K)
        if expansion is not None:
            theta = _solve_coupled(normal.view(b * l, 2, k, k), rhs.view(b * l, 2, k), expansion, b, l)
        else:
            theta = torch.linalg.solve(normal, rhs.unsqueeze(-1)).view(b, l, 2, k)
        theta = theta.to(basis.dtype)
    return theta


def _lbfgs(
    flow: Tensor,
    proba: Tensor,
    basis: Tensor,
    max_iter: int = 100,
    lr: float = 1.0,
    ridge: float = 1e-6,
    init: Tensor | None = None,
    expansion: Tensor | None = None,
) -> Tensor:
    theta0 = _lstsq(flow, proba, basis, ridge, expansion=expansion) if init is None else init
    return _lbfgs_step(
        theta0, expansion, lambda theta: l1_objective(flow, proba, basis, theta).sum(),
        lr=lr, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
    )


def _lbfgs_paper(
    flow: Tensor,
    proba: Tensor,
    basis: Tensor,
    distance: str = "l1",
    scale: bool = True,
    expansion: Tensor | None = None,
) -> Tensor:
    try:
        theta0 = _lstsq(flow, proba, basis, ridge=0.0, expansion=expansion)
    except RuntimeError:  # a singular system (an empty segment); the original starts from 0
        theta0 = flow.new_zeros(proba.shape[0], proba.shape[1], 2, basis.shape[0])
    # torch's default L-BFGS settings, as the original leaves them.
    return _lbfgs_step(
        theta0.nan_to_num(0.0), expansion,
        lambda theta: coherence_per_sample(flow, proba, flow_from_theta(theta, basis), distance, scale).mean(),
    )


def _lbfgs_step(theta0: Tensor, expansion: Tensor | None, objective, **settings: Any) -> Tensor:
    """One ``torch.optim.LBFGS`` step (strong-Wolfe line search, ``settings`` otherwise) on
    ``objective(θ) → scalar`` from ``theta0``, in the model's free parameters
    (:func:`_free_parameters`). Returns θ ``(B, L, 2, K)`` detached."""
    free, to_theta = _free_parameters(theta0, expansion)
    optimiser = torch.optim.LBFGS([free], line_search_fn="strong_wolfe", **settings)

    def closure() -> Tensor:
        optimiser.zero_grad()
        loss = objective(to_theta(free))
        loss.backward()
        return loss

    with torch.enable_grad():
        optimiser.step(closure)
    return to_theta(free).detach()


def _free_parameters(theta: Tensor, expansion: Tensor | None):
    """The tensor L-BFGS optimises, and the map from it to θ: θ itself for a separable model,
    the P parameters of a coupled one (recovered exactly from a θ that lies in its span)."""
    if expansion is None:
        return theta.clone().requires_grad_(True), lambda free: free
    e = expansion.to(theta.dtype)
    b, l = theta.shape[:2]
    stacked = e.reshape(-1, e.shape[-1])  # (2K, P), full column rank
    params = torch.linalg.lstsq(stacked, theta.reshape(b * l, -1).T).solution.T.reshape(b, l, -1)
    return params.clone().requires_grad_(True), lambda free: torch.einsum("ckp,blp->blck", e, free)


@torch.no_grad()
def fit_theta(
    flow: Tensor,
    proba: Tensor,
    basis: Tensor,
    method: str = "default",
    *,
    expansion: Tensor | None = None,
    **opts: Any,
) -> Tensor:
    """Fit each segment's motion model.

    Args:
        flow: ``(B, 2, T, H, W)`` float, pixels.
        proba: ``(B, L, T, H, W)`` probabilities (detached here; no gradient flows to them).
        basis: ``(K, T, H, W)`` from :func:`stseg_train.motion.basis`.
        method: one of ``SOLVERS`` or ``"default"`` (= ``DEFAULT_SOLVER``).
        expansion: ``(2, K, P)`` from :func:`stseg_train.motion.expansion` for a coupled
            model (θ constrained to ``E p``), None for a separable one.
        **opts: solver options: ``ridge`` (all, relative Tikhonov term); ``iters``, ``eps``,
            ``eps0``, ``decay`` (irls); ``max_iter``, ``lr`` (lbfgs); ``init`` (irls, lbfgs: a
            starting θ instead of lstsq); ``distance``, ``scale`` (lbfgs-paper: the
            coherence term it minimises).

    Returns:
        ``theta: (B, L, 2, K)`` detached, same dtype as ``basis``.
    """
    if method == "default":
        method = DEFAULT_SOLVER
    if flow.dim() != 5 or flow.shape[1] != 2:
        raise ValueError(f"flow must be (B, 2, T, H, W), got {tuple(flow.shape)}")
    if proba.dim() != 5 or proba.shape[0] != flow.shape[0] or proba.shape[2:] != flow.shape[2:]:
        raise ValueError(
            f"proba must be (B, L, T, H, W) matching flow {tuple(flow.shape)}, "
            f"got {tuple(proba.shape)}"
        )
    if basis.shape[1:] != flow.shape[2:]:
        raise ValueError(
            f"basis grid {tuple(basis.shape[1:])} does not match flow {tuple(flow.shape[2:])}"
        )
    flow = flow.detach().to(basis.dtype)
    proba = proba.detach().to(basis.dtype)
    if expansion is not None and expansion.shape[:2] != (2, basis.shape[0]):
        raise ValueError(f"expansion {tuple(expansion.shape)} does not fit a basis of {basis.shape[0]} terms")
    if method == "lstsq":
        return _lstsq(flow, proba, basis, expansion=expansion, **opts)
    if method == "irls":
        return _irls(flow, proba, basis, expansion=expansion, **opts)
    if method == "lbfgs":
        return _lbfgs(flow, proba, basis, expansion=expansion, **opts)
    if method == "lbfgs-paper":
        return _lbfgs_paper(flow, proba, basis, expansion=expansion, **opts)
    raise ValueError(f"unknown solver {method!r}; valid: {', '.join(SOLVERS)} or 'default'")
