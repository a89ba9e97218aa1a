"""ST-MS training losses: parametric motion coherence plus temporal regularisation.

All functions take ``flow: (B, 2, T, H, W)`` (pixels) and ``proba: (B, L, T, H, W)`` (softmax
output of the network). θ is fitted without gradient; the network learns through ``proba``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from .coherence import DISTANCES, SCALE_EPS, coherence_per_sample
from .config import DEFAULT_REGULARISATION, POTTS_MASKS
from .motion import flow_from_theta
from .solvers import fit_theta

__all__ = [
    "DISTANCES",
    "REGULARISERS",
    "DEFAULT_REGULARISATION",
    "coherence_loss",
    "temporal_regulariser",
    "temporal_regulariser_per_sample",
    "label_cost_per_sample",
    "MOVER_CAP",
    "mover_weights",
    "total_loss",
]

# A pixel's mover weight stops growing at this many times its frame's mean residual, so one
# outlier (a flow error) cannot take a frame's whole weight.
MOVER_CAP = 10.0


def coherence_loss(
    flow: Tensor,
    proba: Tensor,
    theta: Tensor,
    basis: Tensor,
    distance: str = "l1",
    scale: bool = True,
) -> Tensor:
    """Parametric motion coherence loss ("pieceFitScale", or "pieceFit" with ``scale=False``).

    Per pixel ``Σ_l p_l · d(f_θl, F)``; with ``scale`` each frame is divided by the mean of
    ``d(F, 0)`` over its pixels (``|u| + |v|`` for l1), making the loss unitless and invariant
    to the flow magnitude; then averaged over pixels, frames and batch
    (:func:`stseg_train.coherence.coherence_per_sample`). For a known θ; :func:`total_loss`
    fits θ itself and works per sample.

    Args:
        flow: ``(B, 2, T, H, W)`` pixels.
        proba: ``(B, L, T, H, W)``; the only input that receives a gradient.
        theta: ``(B, L, 2, K)``, detached here.
        basis: ``(K, T, H, W)``.
        distance: a name of ``stseg_train.coherence.DISTANCES``.
        scale: divide by the per-frame mean distance of the flow to zero.

    Returns:
        Scalar tensor.
    """
    flow = flow.detach()
    pred = flow_from_theta(theta.detach(), basis)  # (B, L, 2, T, H, W)
    return coherence_per_sample(flow, proba, pred, distance, scale).mean()


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


def temporal_regulariser(
    flow: Tensor, proba: Tensor, quantile: float = 0.99, mask: str = "counted"
) -> Tensor:
    """The batch mean of :func:`temporal_regulariser_per_sample` (see there): a scalar.
    For use on its own; :func:`total_loss` works per sample."""
    return temporal_regulariser_per_sample(flow, proba, quantile, mask).mean()


def temporal_regulariser_per_sample(
    flow: Tensor, proba: Tensor, quantile: float = 0.99, mask: str = "counted"
) -> Tensor:
    """Temporal consistency of the segmentation ("EulerPottsl1R3").

    Mean over segments of ``|p(t+1) − p(t)|``, counted only where the temporal flow change
    ``Σ_c |F(t+1) − F(t)|`` is below its per-sample ``quantile`` (so the largest changes,
    where a motion boundary legitimately moves, are not penalised).

    - ``mask="counted"``: pixels at most the quantile count, and the mean is over the
      counted pixels of all consecutive-frame pairs, so a temporally constant flow (every
      change equal to the quantile) counts every pixel instead of none.
    - ``mask="all"`` (the original's): pixels strictly below the quantile count, and the sum
      is divided by all pixels, so the term shrinks where many pixels tie at the threshold.

    Args:
        flow: ``(B, 2, T, H, W)`` pixels (no gradient).
        proba: ``(B, L, T, H, W)``.
        quantile: in [0, 1].
        mask: ``"counted"`` or ``"all"``.

    Returns:
        ``(B,)`` one value per sample; zeros when T < 2.
    """
    if not 0.0 <= quantile <= 1.0:
        raise ValueError(f"quantile must be in [0, 1], got {quantile}")
    if mask not in POTTS_MASKS:
        raise ValueError(f"mask must be one of {', '.join(POTTS_MASKS)}, got {mask!r}")
    b, _, t = proba.shape[:3]
    if t < 2:
        return proba.flatten(1).sum(dim=1) * 0.0  # keeps the graph (and device) of proba
    flow = flow.detach()
    change = (flow[:, :, 1:] - flow[:, :, :-1]).abs().sum(dim=1)  # (B, T-1, H, W)
    threshold = _row_quantile(change.flatten(1), quantile)  # (B,)
    jump = (proba[:, :, 1:] - proba[:, :, :-1]).abs().mean(dim=1)  # (B, T-1, H, W)
    if mask == "all":
        below = (change < threshold.view(b, 1, 1, 1)).to(proba.dtype)
        return (jump * below).flatten(1).mean(dim=1)
    counted_mask = (change <= threshold.view(b, 1, 1, 1)).to(proba.dtype)
    counted = counted_mask.flatten(1).sum(dim=1).clamp_min(1.0)
    return (jump * counted_mask).flatten(1).sum(dim=1) / counted


def label_cost_per_sample(flow: Tensor, proba: Tensor, mask: str = "counted", eps: float = 1e-4) -> Tensor:
    """Label cost ("LabelCost"): how many segments a window uses, as a concave sum of areas.

    With ``a_l`` the share of the window (T, H, W) that segment l holds,
    ``(Σ_l sqrt(a_l + eps) − 1) / (sqrt(L) − 1)``: about 0 when one segment holds
    everything, 1 when all L hold equal shares. Being concave, it prefers a segment empty
    to a segment shared: one motion cut into several segments costs something, which the
    coherence term alone never charges (each piece fits the same θ), while a segment that
    takes an object of its own pays back through the coherence it gains.

    Why it exists: the model spends every segment on the background and objects moving
    differently then share one (docs/model-merging.md). The original has no such term.

    Args:
        flow: ``(B, 2, T, H, W)``; unused (the registry's signature).
        proba: ``(B, L, T, H, W)``.
        mask: unused (the registry's signature).
        eps: keeps the gradient of the square root finite at an empty segment.

    Returns:
        ``(B,)`` one value per sample; zeros when L = 1.
    """
    del flow, mask
    n_labels = proba.shape[1]
    if n_labels < 2:
        return proba.flatten(1).sum(dim=1) * 0.0
    shares = proba.flatten(2).mean(dim=2)  # (B, L)
    roots = (shares + eps).sqrt().sum(dim=1)
    return (roots - 1.0) / (n_labels**0.5 - 1.0)


def mover_weights(
    flow: Tensor, basis: Tensor, strength: float, *, expansion: Tensor | None = None, cap: float = MOVER_CAP
) -> Tensor:
    """Per-pixel weights that favour what the window's dominant motion does not explain.

    Why: the coherence term is a mean over pixels, so an object that holds 2 % of a frame
    costs at most 2 % of it when the network lets the background's segment take it; small
    and thin movers are what the network loses (issue 25). One robust (L1, IRLS) motion
    fit of the whole window gives each pixel a residual ``r``; with ``ρ = r / mean_frame(r)``
    the weight is ``1 + strength · min(ρ, cap)``, then divided by its frame mean, so a frame's
    total weight, and the balance with the regularisers, stay as without weights. A frame with
    one motion gets weights near 1 everywhere.

    Args:
        flow: ``(B, 2, T, H, W)`` pixels.
        basis: ``(K, T, H, W)`` of the parametric model.
        strength: ``>= 0``; 0 gives all ones.
        expansion: a coupled model's ``(2, K, P)``, as in :func:`total_loss`.
        cap: the largest ``ρ`` that counts.

    Returns:
        ``(B, 1, T, H, W)`` detached, mean 1 over each frame's pixels.
    """
    if strength < 0:
        raise ValueError(f"mover weight strength must be >= 0, got {strength}")
    flow = flow.detach()
    b, _, t, h, w = flow.shape
    ones = flow.new_ones(b, 1, t, h, w)
    if strength == 0:
        return ones
    theta = fit_theta(flow, ones, basis, "irls", expansion=expansion)  # the whole window as one segment
    residual = (flow_from_theta(theta, basis)[:, 0] - flow).abs().sum(dim=1, keepdim=True)  # (B, 1, T, H, W)
    rho = residual / (residual.mean(dim=(-2, -1), keepdim=True) + SCALE_EPS)
    weights = 1.0 + strength * rho.clamp(max=cap)
    return (weights / weights.mean(dim=(-2, -1), keepdim=True)).to(flow.dtype)


# Called as fn(flow, proba, mask=...) → (B,), one value per sample.
Regulariser = Callable[..., Tensor]

REGULARISERS: dict[str, Regulariser] = {
    "EulerPottsl1R3": temporal_regulariser_per_sample,
    "LabelCost": label_cost_per_sample,
}


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
    potts_mask: str = "counted",
    expansion: Tensor | None = None,
    mover_weight: float = 0.0,
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
        solver_options: extra keyword options for the solver (``lbfgs-paper`` also gets
            ``distance`` and ``scale``: it minimises this very coherence term).
        potts_mask: the regularisers' ``mask`` (see :func:`temporal_regulariser`).
        expansion: a coupled motion model's ``(2, K, P)`` (:func:`stseg_train.motion.expansion`).
        mover_weight: > 0 weighs each pixel's coherence, in the θ fit and in the loss, by
            :func:`mover_weights` of this strength; 0 (the original's) weighs all alike.

    Returns:
        ``(loss, parts, theta)``: scalar loss (the batch mean); ``parts`` maps
        ``"coherence"`` and each regulariser name to its unweighted scalar value, and
        ``"per_sample"`` to the ``(B,)`` loss of each sample; ``theta: (B, L, 2, K)`` detached.
    """
    if distance not in DISTANCES:
        raise ValueError(f"unknown distance {distance!r}; valid: {', '.join(DISTANCES)}")
    regularisation = DEFAULT_REGULARISATION if regularisation is None else regularisation
    unknown = [name for name in regularisation if name not in REGULARISERS]
    if unknown:
        raise ValueError(
            f"unknown regulariser(s) {unknown}; valid: {', '.join(sorted(REGULARISERS))}"
        )
    options = dict(solver_options or {})
    if solver == "lbfgs-paper":
        options = {"distance": distance, "scale": scale, **options}
    # Weighted pixels enter the θ fit too, so each θ minimises the very term the network sees.
    weighted = proba
    if mover_weight:
        weighted = proba * mover_weights(flow, basis, mover_weight, expansion=expansion)
    theta = fit_theta(flow.detach(), weighted.detach(), basis, solver, expansion=expansion, **options)
    pred = flow_from_theta(theta, basis)
    per_sample = coherence_per_sample(flow.detach(), weighted, pred, distance, scale)
    parts: dict[str, Tensor] = {"coherence": per_sample.mean()}
    for name, weight in regularisation.items():
        value = REGULARISERS[name](flow.detach(), proba, mask=potts_mask)
        parts[name] = value.mean()
        per_sample = per_sample + weight * value
    parts["per_sample"] = per_sample
    loss = per_sample.mean()
    return loss, parts, theta
