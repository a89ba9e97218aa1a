"""ST-MS training losses: parametric motion coherence plus temporal regularisation.

All functions take ``flow: (B, 2, T, H, W)`` (pixels) and ``proba: (B, L, T, H, W)`` (softmax
output of the network). θ is fitted without gradient; the network learns through ``proba``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from .motion import flow_from_theta
from .solvers import fit_theta

__all__ = [
    "DISTANCES",
    "REGULARISERS",
    "DEFAULT_REGULARISATION",
    "coherence_loss",
    "temporal_regulariser",
    "total_loss",
]

DISTANCES = ("l1", "l2", "squared")
# Keeps the scale division finite on a zero flow (pixels).
SCALE_EPS = 1e-6
# Only keeps sqrt away from 0; no gradient flows through the distance (θ, F detached).
L2_EPS = 1e-10


def _distance(diff: Tensor, distance: str) -> Tensor:
    """``diff: (..., 2, T, H, W)`` → ``(..., T, H, W)`` per-pixel distance (pixels or px²)."""
    if distance == "l1":
        return diff.abs().sum(dim=-4)
    if distance == "l2":
        return torch.sqrt(diff.pow(2).sum(dim=-4) + L2_EPS)
    if distance == "squared":
        return diff.pow(2).sum(dim=-4)
    raise ValueError(f"unknown distance {distance!r}; valid: {', '.join(DISTANCES)}")


def coherence_loss(
    flow: Tensor,
    proba: Tensor,
    theta: Tensor,
    basis: Tensor,
    distance: str = "l1",
    scale: bool = True,
) -> Tensor:
    """Parametric motion coherence loss ("pieceFitScale", or "pieceFit" with ``scale=False``).

    Per pixel ``Σ_l p_l · d(f_θl − F)``; with ``scale`` divided by the mean ``|u| + |v|`` of
    that sample's frame (+ ``SCALE_EPS``), making the loss unitless and invariant to the flow
    magnitude; then averaged over pixels, frames and batch.

    Args:
        flow: ``(B, 2, T, H, W)`` pixels.
        proba: ``(B, L, T, H, W)``; the only input that receives a gradient.
        theta: ``(B, L, 2, K)``, detached here.
        basis: ``(K, T, H, W)``.
        distance: ``"l1"`` (|du| + |dv|), ``"l2"`` (sqrt(du² + dv² + eps)) or ``"squared"``.
        scale: divide by the per-frame mean flow L1 magnitude.

    Returns:
        Scalar tensor.
    """
    flow = flow.detach()
    pred = flow_from_theta(theta.detach(), basis)  # (B, L, 2, T, H, W)
    dist = _distance(pred - flow.unsqueeze(1), distance)  # (B, L, T, H, W)
    per_pixel = (proba * dist).sum(dim=1)  # (B, T, H, W)
    if scale:
        norm = flow.abs().sum(dim=1).mean(dim=(-2, -1), keepdim=True) + SCALE_EPS  # (B, T, 1, 1)
        per_pixel = per_pixel / norm
    return per_pixel.mean()


def _row_quantile(x: Tensor, q: float) -> Tensor:
    """Linear-interpolation quantile of each row of ``x: (B, N)`` → ``(B,)``.

    Same definition as ``torch.quantile``, but via ``kthvalue``, which has no input size
    limit (``torch.quantile`` refuses more than 2^24 elements: 10 full-HD windows).
    """
    n = x.shape[1]
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    lower = torch.kthvalue(x, lo + 1, dim=1).values
    upper = torch.kthvalue(x, hi + 1, dim=1).values
    return lower + (pos - lo) * (upper - lower)


def temporal_regulariser(flow: Tensor, proba: Tensor, quantile: float = 0.99) -> Tensor:
    """Temporal consistency of the segmentation ("EulerPottsl1R3").

    Mean over segments of ``|p(t+1) − p(t)|``, counted only where the temporal flow change
    ``Σ_c |F(t+1) − F(t)|`` is at most its per-sample ``quantile`` (so the largest changes,
    where a motion boundary legitimately moves, are not penalised). Per sample the mean is over
    the counted pixels of all consecutive-frame pairs; then over the batch. Ties at the
    threshold are counted, so a temporally constant flow counts every pixel.

    Args:
        flow: ``(B, 2, T, H, W)`` pixels (no gradient).
        proba: ``(B, L, T, H, W)``.
        quantile: in [0, 1].

    Returns:
        Scalar tensor; 0 when T < 2.
    """
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    b, l, t = proba.shape[:3]
    if t < 2:
        return proba.sum() * 0.0  # keeps the graph (and device) of proba
    flow = flow.detach()
    change = (flow[:, :, 1:] - flow[:, :, :-1]).abs().sum(dim=1)  # (B, T-1, H, W)
    threshold = _row_quantile(change.flatten(1), quantile)  # (B,)
    mask = (change <= threshold.view(b, 1, 1, 1)).to(proba.dtype)
    jump = (proba[:, :, 1:] - proba[:, :, :-1]).abs().mean(dim=1)  # (B, T-1, H, W)
    counted = mask.flatten(1).sum(dim=1).clamp_min(1.0)
    return ((jump * mask).flatten(1).sum(dim=1) / counted).mean()


Regulariser = Callable[[Tensor, Tensor], Tensor]

REGULARISERS: dict[str, Regulariser] = {
    "EulerPottsl1R3": temporal_regulariser,
}

DEFAULT_REGULARISATION: dict[str, float] = {"EulerPottsl1R3": 1.0}


def total_loss(
    flow: Tensor,
    proba: Tensor,
    basis: Tensor,
    *,
    distance: str = "l1",
    scale: bool = True,
    regularisation: Mapping[str, float] | None = None,
    solver: str = "default",
    solver_options: Mapping[str, object] | None = None,
) -> tuple[Tensor, dict[str, Tensor], Tensor]:
    """Fit θ on the detached probabilities, then coherence + Σ weight · regulariser.

    Args:
        flow: ``(B, 2, T, H, W)`` pixels (the augmented flow, the one the network saw).
        proba: ``(B, L, T, H, W)`` network output.
        basis: ``(K, T, H, W)`` of the parametric model.
        distance, scale: see :func:`coherence_loss`.
        regularisation: name → weight, names from ``REGULARISERS``;
            ``None`` → ``DEFAULT_REGULARISATION``, ``{}`` → none.
        solver: :func:`stseg_train.solvers.fit_theta` method.
        solver_options: extra keyword options for the solver.

    Returns:
        ``(loss, parts, theta)``: scalar loss; ``parts`` maps ``"coherence"`` and each
        regulariser name to its unweighted scalar value; ``theta: (B, L, 2, K)`` detached.
    """
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; valid: {', '.join(DISTANCES)}")
    regularisation = DEFAULT_REGULARISATION if regularisation is None else regularisation
    unknown = [name for name in regularisation if name not in REGULARISERS]
    if unknown:
        raise ValueError(
            f"unknown regulariser(s) {unknown}; valid: {', '.join(sorted(REGULARISERS))}"
        )
    theta = fit_theta(flow.detach(), proba.detach(), basis, solver, **dict(solver_options or {}))
    coherence = coherence_loss(flow, proba, theta, basis, distance=distance, scale=scale)
    parts: dict[str, Tensor] = {"coherence": coherence}
    loss = coherence
    for name, weight in regularisation.items():
        value = REGULARISERS[name](flow, proba)
        parts[name] = value
        loss = loss + weight * value
    return loss, parts, theta
