"""Vector distances and the per-sample coherence term built on them.

Shared by the loss (:mod:`stseg_train.losses`) and by the θ solver that minimises the very
same term (``lbfgs-paper`` in :mod:`stseg_train.solvers`), so the two cannot drift apart.
Distances follow the original research code's ``VectorDistance``: ``f1`` is the parametric
flow, ``f2`` the observed one, and the "normed" variants divide by their norms.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

__all__ = ["DISTANCES", "SCALE_EPS", "vector_distance", "coherence_per_sample"]

# Keeps the scale division finite on a zero flow (pixels).
SCALE_EPS = 1e-6
# Only keeps sqrt away from 0, where its gradient is infinite.
L2_EPS = 1e-10
# The original's constants: Charbonnier's ε² and the normed distances' denominator floor.
CHARB_EPS = 1e-8
NORM_EPS = 1e-10


def _norm(x: Tensor, dim: int) -> Tensor:
    return x.pow(2).sum(dim=dim).sqrt()


Distance = Callable[[Tensor, Tensor, int], Tensor]

DISTANCES: dict[str, Distance] = {
    "l1": lambda f1, f2, dim: (f1 - f2).abs().sum(dim=dim),
    "l2": lambda f1, f2, dim: torch.sqrt((f1 - f2).pow(2).sum(dim=dim) + L2_EPS),
    "squared": lambda f1, f2, dim: (f1 - f2).pow(2).sum(dim=dim),
    "charb": lambda f1, f2, dim: ((f1 - f2).pow(2) + CHARB_EPS).sqrt().sum(dim=dim),
    "l2_normed": lambda f1, f2, dim: _norm(f1 - f2, dim) / (_norm(f1, dim) + _norm(f2, dim) + NORM_EPS),
    "l2_normed_alt": lambda f1, f2, dim: _norm(f1 - f2, dim) / (_norm(f2, dim) + NORM_EPS),
    "squared_normed_alt": lambda f1, f2, dim: (f1 - f2).pow(2).sum(dim=dim) / (_norm(f2, dim) + NORM_EPS),
}


def vector_distance(name: str, f1: Tensor, f2: Tensor, dim: int) -> Tensor:
    """Distance between flow vectors whose (u, v) components lie on axis ``dim``.

    ``f1`` and ``f2`` broadcast together; the result drops axis ``dim``. Units: pixels for
    l1, l2, charb; pixels² for squared; unitless or pixels for the normed variants.
    """
    try:
        fn = DISTANCES[name]
    except KeyError:
        raise ValueError(f"unknown distance {name!r}; valid: {', '.join(DISTANCES)}") from None
    return fn(f1, f2, dim)


def coherence_per_sample(
    flow: Tensor, proba: Tensor, param_flow: Tensor, distance: str = "l1", scale: bool = True
) -> Tensor:
    """``Σ_l p_l · d(f_θl, F)`` per pixel, averaged over (T, H, W): ``(B,)``.

    Args:
        flow: ``(B, 2, T, H, W)`` observed flow, pixels.
        proba: ``(B, L, T, H, W)``.
        param_flow: ``(B, L, 2, T, H, W)`` each segment's parametric flow, pixels.
        distance: a name of ``DISTANCES``.
        scale: divide each frame by the mean over (H, W) of ``d(F, 0)`` (+ ``SCALE_EPS``),
            the original's "pieceFitScale", which makes the term invariant to the flow's
            magnitude.
    """
    per_pixel = (proba * vector_distance(distance, param_flow, flow.unsqueeze(1), dim=2)).sum(dim=1)
    if scale:
        norm = vector_distance(distance, flow, torch.zeros_like(flow), dim=1)  # (B, T, H, W)
        per_pixel = per_pixel / (norm.mean(dim=(-2, -1), keepdim=True) + SCALE_EPS)
    return per_pixel.flatten(1).mean(dim=1)
