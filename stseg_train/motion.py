"""Parametric motion models on a normalised space-time grid.

The grid has coordinates ``t`` (frame), ``i`` (row) and ``j`` (column), each spanning
[-1, 1] (``linspace`` over T, H, W; a size of 1 gives the single value -1, as linspace does).
A motion model is a list of basis terms, shared by the two flow components; segment l has
coefficients ``theta[l, c, k]`` for component c (0 = u horizontal, 1 = v vertical) and term k,
so the flow it predicts is ``f[c] = Σ_k theta[c, k] · basis[k]`` (pixels).

Coupled models (the original's QuadraticPlanar family, the motion of a plane under a moving
camera) tie u and v together: one parameter multiplies one term in u and another in v. Their
flows lie in the span of a separable model, so θ keeps that model's ``(2, K)`` layout, and
:func:`expansion` maps the model's P free parameters into it: ``θ = E p``.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["MOTION_MODELS", "COUPLED_MODELS", "basis", "expansion", "flow_from_theta", "n_params"]

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

# name -> (the separable model whose layout θ uses, the term each parameter multiplies in u,
# the term it multiplies in v; "0": none), parameter by parameter in the original's order.
COUPLED_MODELS: dict[str, tuple[str, list[str], list[str]]] = {
    "QuadraticPlanar": (
        "QuadraticFull",
        ["ij", "j2", "0", "0", "0", "i", "j", "1"],
        ["i2", "ij", "i", "j", "1", "0", "0", "0"],
    ),
    "QuadraticPlanarPT": (
        "QuadraticFullPT",
        ["ij", "tij", "j2", "tj2", "0", "0", "0", "i", "ti", "j", "tj", "1", "t"],
        ["i2", "ti2", "ij", "tij", "i", "ti", "j", "tj", "1", "t", "0", "0", "0"],
    ),
}
for _name, (_layout, _u, _v) in COUPLED_MODELS.items():
    MOTION_MODELS[_name] = MOTION_MODELS[_layout]



def _terms(name: str) -> list[str]:
    try:
        return MOTION_MODELS[name]
    except KeyError:
        valid = ", ".join(sorted(MOTION_MODELS))
        raise ValueError(f"unknown motion model {name!r}; valid names: {valid}") from None


def n_params(name: str) -> int:
    """Free parameters of the model for both components: ``2 · K``, or P for a coupled one."""
    if name in COUPLED_MODELS:
        return len(COUPLED_MODELS[name][1])
    return 2 * len(_terms(name))


def expansion(
    name: str, device: torch.device | str | None = None, dtype: torch.dtype = torch.float32
) -> Tensor | None:
    """``E: (2, K, P)`` with ``θ[c, k] = Σ_p E[c, k, p] · p_p`` for a coupled model; None for a
    separable one, whose 2·K coefficients are all free."""
    if name not in COUPLED_MODELS:
        _terms(name)  # the error for an unknown name
        return None
    layout, u_terms, v_terms = COUPLED_MODELS[name]
    terms = MOTION_MODELS[layout]
    out = torch.zeros(2, len(terms), len(u_terms), device=device, dtype=dtype)
    for c, per_param in enumerate((u_terms, v_terms)):
        for p, term in enumerate(per_param):
            if term != "0":
                out[c, terms.index(term), p] = 1.0
    return out


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
