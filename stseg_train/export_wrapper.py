"""The module that is exported: a fixed-signature wrapper with no data-dependent branches."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .framewise import framewise
from .model import UNet3D


def labels_of(proba: Tensor) -> Tensor:
    """``proba (B, L, 3, H, W)`` → ``(B, 3, H, W)`` uint8: the first most probable segment."""
    return proba.argmax(dim=1).to(torch.uint8)


class ExportWrapper(nn.Module):
    """``flow: (B, 2, 3, H, W)`` float32 pixels → ``(proba (B, L, 3, H, W), features
    (B, C, 3, H, W), labels (B, 3, H, W) uint8)``: what is exported.

    All three come from one forward pass, and a runtime fetches only what it asks for:
    ``labels`` (the argmax over segments, inside the graph) spares the pipeline copying L
    float maps per pixel off the device and reducing them on the CPU when probabilities are
    not wanted; features are an intermediate of the same graph.

    The network runs as :class:`~stseg_train.framewise.FramewiseUNet`, the window's frames as
    separate 2-D maps, so that runtimes use their 2-D convolution kernels and skip the
    temporal padding's zero taps (see :mod:`stseg_train.framewise`). Only the framewise
    weights are held (a copy, made here): the export is checked against
    :class:`ReferenceWrapper`, the network as trained.
    """

    def __init__(self, model: UNet3D) -> None:
        super().__init__()
        self.net = framewise(model)

    def forward(self, flow: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        logits, features = self.net(flow)
        # The softmax over segments written out: onnxruntime's Softmax on an axis other than
        # the last transposes the tensor there and back.
        exp = torch.exp(logits - logits.amax(dim=1, keepdim=True))
        proba = exp / exp.sum(dim=1, keepdim=True)
        return proba, features, labels_of(proba)


class ReferenceWrapper(nn.Module):
    """:class:`ExportWrapper`'s signature on the network as trained (``UNet3D``): the
    reference the export is checked against, and torch eager's baseline in stseg-bench."""

    def __init__(self, model: UNet3D) -> None:
        super().__init__()
        self.model = model

    def forward(self, flow: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        proba, features = self.model.forward_with_features(flow)
        return proba, features, labels_of(proba)


def example_input(batch: int, height: int, width: int, seed: int = 0) -> Tensor:
    """A smooth random flow window (B, 2, 3, H, W): parity checks need non-trivial motion."""
    gen = torch.Generator().manual_seed(seed)
    coarse = torch.randn(batch * 3, 2, max(2, height // 8), max(2, width // 8), generator=gen) * 4.0
    fine = nn.functional.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
    noise = 0.1 * torch.randn(batch * 3, 2, height, width, generator=gen)
    return (fine + noise).reshape(batch, 3, 2, height, width).transpose(1, 2).contiguous()
