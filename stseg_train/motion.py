"""Parametric motion models on a normalised space-time grid.

The grid has coordinates ``t`` (frame), ``i`` (row) and ``j`` (column), each spanning
[-1, 1] (``linspace`` over T, H, W; a size of 1 gives the single value -1, as linspace does).
A motion model is a list of basis terms, shared by the two flow components; segment l has
coefficients ``theta[l, c, k]`` for component c (0 = u horizontal, 1 = v vertical) and term k,
so the flow it predicts is ``f[c] = Σ_k theta[c, k] · basis[k]`` (pixels).
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["MOTION_MODELS", "basis", "flow_from_theta", "n_params"]

# Terms per flow component; "i2" is i², "tij" is t·i·j, "1" is the constant. The order is the
# one of the paper's table and fixes the layout of theta's last axis.
MOTION_MODELS: dict[str, list[str]] = {
    "Affine": ["i", "j", "1"],
    "AffinePT": ["t", "it", "jt", "i", "j", "1"],
    "QuadraticFull": ["ij", "i2", "j2", "i", "j", "1"],
    "QuadraticFullPT": [
        "t", "tij", "ti2", "tj2", "ti", "tj", "ij", "i2", "j2", "i", "j", "1",
    ],
}

DEFAULT_MOTION_MODEL = "QuadraticFullPT"


def _terms(name: str) -> list[str]:
    try:
        return MOTION_MODELS[name]
    except KeyError:
        valid = ", ".join(sorted(MOTION_MODELS))
        raise ValueError(f"unknown motion model {name!r}; valid names: {valid}") from None


def n_params(name: str) -> int:
    """Number of parameters of the model for both components (``2 · K``)."""
    return 2 * len(_terms(name))


def _term_value(term: str, t: Tensor, i: Tensor, j: Tensor) -> Tensor:
    """Evaluate a term such as ``"ti2"`` as the product of its factors on the broadcast grid."""
    value = torch.ones_like(t * i * j)
    if term == "1":
        return value
    axes = {"t": t, "i": i, "j": j}
    k = 0
    while k < len(term):
        factor = axes[term[k]]
        power = 1
        if k + 1 < len(term) and term[k + 1].isdigit():
            power = int(term[k + 1])
            k += 1
        value = value * factor**power
        k += 1
    return value


def basis(
    name: str,
    T: int,
    H: int,
    W: int,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> Tensor:
    """Basis of motion model ``name`` on a ``T × H × W`` grid.

    Returns ``(K, T, H, W)`` with ``K = len(MOTION_MODELS[name])``; coordinates are unitless
    in [-1, 1]. Raises ``ValueError`` for an unknown name.
    """
    terms = _terms(name)
    t = torch.linspace(-1.0, 1.0, T, device=device, dtype=dtype).view(T, 1, 1)
    i = torch.linspace(-1.0, 1.0, H, device=device, dtype=dtype).view(1, H, 1)
    j = torch.linspace(-1.0, 1.0, W, device=device, dtype=dtype).view(1, 1, W)
    return torch.stack([_term_value(term, t, i, j) for term in terms], dim=0)


def flow_from_theta(theta: Tensor, basis: Tensor) -> Tensor:
    """Flows of parametric models.

    Args:
        theta: ``(B, L, 2, K)`` coefficients (pixels per unit basis value).
        basis: ``(K, T, H, W)`` from :func:`basis`.

    Returns:
        ``(B, L, 2, T, H, W)`` flow of each segment's model, pixels.
    """
    if theta.shape[-1] != basis.shape[0]:
        raise ValueError(
            f"theta has {theta.shape[-1]} terms per component but basis has {basis.shape[0]}"
        )
    k, *grid = basis.shape
    flat = theta.reshape(-1, k) @ basis.reshape(k, -1)
    return flat.reshape(*theta.shape[:-1], *grid)
