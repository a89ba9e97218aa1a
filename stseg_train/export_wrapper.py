"""The module that is exported: a fixed-signature wrapper with no data-dependent branches."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .model import UNet3D


class ExportWrapper(nn.Module):
    """``flow: (B, 2, 3, H, W)`` float32 pixels → ``(proba (B, L, 3, H, W), features (B, C, 3, H, W))``.

    Both outputs come from one forward pass; a runtime that asks only for ``proba`` pays
    nothing extra, since features are an intermediate of the same graph.
    """

    def __init__(self, model: UNet3D) -> None:
        super().__init__()
        self.model = model

    def forward(self, flow: Tensor) -> tuple[Tensor, Tensor]:
        return self.model.forward_with_features(flow)


def example_input(batch: int, height: int, width: int, seed: int = 0) -> Tensor:
    """A smooth random flow window (B, 2, 3, H, W): parity checks need non-trivial motion."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(batch * 3, 2, max(2, height // 8), max(2, width // 8), generator=gen) * 4.0
    fine = nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    noise = 0.1 * torch.randn(batch * 3, 2, height, width, generator=gen)
    return (fine + noise).reshape(batch, 3, 2, height, width).transpose(1, 2).contiguous()
