"""Exact piecewise-parametric flows shared by the solver and loss tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from stseg_train.motion import basis as make_basis
from stseg_train.motion import flow_from_theta


def piecewise_flow(
    seed: int, shape: tuple[int, int, int, int, int], model: str = "QuadraticFullPT"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(flow (B,2,T,H,W), one-hot proba (B,L,T,H,W), basis, true theta) for shape (B,L,T,H,W).

    Three segments (left half, top-right and bottom-right quarters), large enough for the
    quadratic terms to be well determined, so θ itself can be compared.
    """
    b, n_labels, t, h, w = shape
    g = torch.Generator().manual_seed(seed)
    A = make_basis(model, t, h, w)
    theta = torch.randn(b, n_labels, 2, A.shape[0], generator=g) * 2
    labels = torch.zeros(b, t, h, w, dtype=torch.long)
    labels[:, :, :, w // 2 :] = 1
    labels[:, :, h // 2 :, w // 2 :] = 2
    proba = F.one_hot(labels, n_labels).permute(0, 4, 1, 2, 3).float()
    flow = (flow_from_theta(theta, A) * proba.unsqueeze(2)).sum(dim=1)
    return flow, proba, A, theta
