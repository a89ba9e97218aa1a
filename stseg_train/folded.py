"""The exported form of :class:`~stseg_train.model.UNet3D`: the same function on 4-D tensors,
the window's frames folded into the channels.

Why: the network's 3×3×3 convolutions over a window of T = 3 frames run in onnxruntime's CPU
provider as generic N-d convolutions (im2col and one GEMM), while 2-D convolutions get its
blocked, vectorised kernels; measured on this project's 2-core VM, a 3×3×3 convolution of 32
channels on (16, 32, 3, 32, 56) took 28 ms as Conv3d and 14 ms as the equivalent Conv2d below.

How, with frames folded t-major (channel ``t·C + c`` holds channel c of frame t):

- a 3×3×3 convolution with temporal padding 1 is one 2-D convolution from ``T·Cin`` to
  ``T·Cout`` channels whose weight block (output frame t, input frame s) is the original's
  temporal tap ``s − t + 1`` (zero where that tap falls outside the kernel: the padding);
- the per-frame layers (the (1, 2, 2) down- and up-sampling, the 1×1×1 head) are grouped 2-D
  layers, one group per frame, sharing the original's weights;
- per-frame normalisation is ``instance_norm`` of the folded tensor (one (frame, channel)
  plane each), the affine repeated per frame; ``instance3d`` normalises each channel over its
  T planes together.

Nothing is retrained: :func:`fold` builds it from a trained model's weights, and the export
checks it against the original within the export's tolerances. Sums run in another order, so
outputs differ from the original's by float rounding only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model import DoubleConv, FrameNorm, UNet3D

T = 3  # frames in a window: fixed by the exported signature (B, 2, 3, H, W)


def fold_conv333(conv: nn.Conv3d, frames: int = T) -> nn.Conv2d:
    """A 3×3×3, padding 1, stride 1 convolution as one 2-D convolution on t-major folded frames."""
    if tuple(conv.kernel_size) != (3, 3, 3) or tuple(conv.padding) != (1, 1, 1) or tuple(conv.stride) != (1, 1, 1) or conv.groups != 1:
        raise ValueError(f"fold_conv333 folds 3x3x3 convolutions with padding 1, stride 1, one group; got {conv}")
    weight = conv.weight.detach()
    out_c, in_c = weight.shape[:2]
    folded = torch.zeros(frames * out_c, frames * in_c, 3, 3, dtype=weight.dtype)
    for t in range(frames):
        for s in range(frames):
            tap = s - t + 1
            if 0 <= tap < 3:
                folded[t * out_c : (t + 1) * out_c, s * in_c : (s + 1) * in_c] = weight[:, :, tap]
    layer = nn.Conv2d(frames * in_c, frames * out_c, 3, padding=1, bias=conv.bias is not None)
    layer.weight.data = folded
    if conv.bias is not None:
        layer.bias.data = conv.bias.detach().repeat(frames)
    return layer


def fold_per_frame(conv: nn.Conv3d | nn.ConvTranspose3d, frames: int = T) -> nn.Conv2d | nn.ConvTranspose2d:
    """A layer acting on each frame alone (temporal kernel 1) as a grouped 2-D layer, one group a frame."""
    if conv.kernel_size[0] != 1 or conv.stride[0] != 1 or conv.padding[0] != 0 or conv.groups != 1:
        raise ValueError(f"fold_per_frame folds layers with a temporal kernel of 1; got {conv}")
    weight = conv.weight.detach()[:, :, 0]
    transpose = isinstance(conv, nn.ConvTranspose3d)
    kind = nn.ConvTranspose2d if transpose else nn.Conv2d
    layer = kind(
        frames * conv.in_channels,
        frames * conv.out_channels,
        tuple(conv.kernel_size[1:]),
        stride=tuple(conv.stride[1:]),
        padding=tuple(conv.padding[1:]),
        groups=frames,
        bias=conv.bias is not None,
    )
    # Grouped weights stack the groups along dim 0 (Conv2d: (T·Cout, Cin, k, k); ConvTranspose2d:
    # (T·Cin, Cout, k, k)): every frame's group is the original weight.
    layer.weight.data = weight.repeat(frames, 1, 1, 1)
    if conv.bias is not None:
        layer.bias.data = conv.bias.detach().repeat(frames)
    return layer


class FoldedFrameNorm(nn.Module):
    """:class:`~stseg_train.model.FrameNorm` on t-major folded frames: each (frame, channel)
    plane normalised over space, the per-channel affine repeated per frame."""

    def __init__(self, norm: FrameNorm, frames: int = T) -> None:
        super().__init__()
        self.eps = norm.eps
        self.weight = nn.Parameter(norm.weight.detach().repeat(frames))
        self.bias = nn.Parameter(norm.bias.detach().repeat(frames))

    def forward(self, x: Tensor) -> Tensor:
        return F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)


class FoldedInstance3d(nn.Module):
    """``nn.InstanceNorm3d`` (no affine) on t-major folded frames: each channel normalised over
    its T planes together."""

    def __init__(self, norm: nn.InstanceNorm3d, frames: int = T) -> None:
        super().__init__()
        if norm.affine or norm.track_running_stats:
            raise ValueError(f"only InstanceNorm3d without affine or running statistics folds; got {norm}")
        self.eps = norm.eps
        self.frames = frames

    def forward(self, x: Tensor) -> Tensor:
        b, tc, h, w = x.shape
        y = x.reshape(b, self.frames, tc // self.frames, h, w)
        mean = y.mean(dim=(1, 3, 4), keepdim=True)
        var = (y - mean).pow(2).mean(dim=(1, 3, 4), keepdim=True)
        return ((y - mean) * torch.rsqrt(var + self.eps)).reshape(b, tc, h, w)


def _fold_norm(norm: nn.Module, frames: int) -> nn.Module:
    if isinstance(norm, FrameNorm):
        return FoldedFrameNorm(norm, frames)
    if isinstance(norm, nn.InstanceNorm3d):
        return FoldedInstance3d(norm, frames)
    raise ValueError(f"no folded form of normalisation {norm}")


def _fold_double(block: DoubleConv, frames: int) -> nn.Sequential:
    conv1, norm1, _, conv2, norm2, _ = block.block
    return nn.Sequential(
        fold_conv333(conv1, frames), _fold_norm(norm1, frames), nn.ReLU(inplace=True),
        fold_conv333(conv2, frames), _fold_norm(norm2, frames), nn.ReLU(inplace=True),
    )


def _cat_frames(a: Tensor, b: Tensor, frames: int) -> Tensor:
    """Channel concatenation per frame of two t-major folded tensors (UNet3D's skip concat)."""
    n, _, h, w = a.shape
    return torch.cat([a.reshape(n, frames, -1, h, w), b.reshape(n, frames, -1, h, w)], dim=2).reshape(n, -1, h, w)


class FoldedUNet(nn.Module):
    """:meth:`UNet3D.forward_with_features` on t-major folded frames: ``(B, T·Cin, H, W)`` →
    ``(logits (B, T·L, H, W), features (B, T·C, H, W))``, both t-major; the softmax over
    segments is the caller's (:class:`~stseg_train.export_wrapper.ExportWrapper`), as it needs
    the segments on an axis of their own."""

    def __init__(self, model: UNet3D, frames: int = T) -> None:
        super().__init__()
        self.frames = frames
        self.size_multiple = model.size_multiple
        self.inc = _fold_double(model.inc, frames)
        self.downs = nn.ModuleList(fold_per_frame(d, frames) for d in model.downs)
        self.down_convs = nn.ModuleList(_fold_double(c, frames) for c in model.down_convs)
        self.ups = nn.ModuleList(fold_per_frame(u, frames) for u in model.ups)
        self.up_convs = nn.ModuleList(_fold_double(c, frames) for c in model.up_convs)
        self.head = fold_per_frame(model.head, frames)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h, w = x.shape[-2], x.shape[-1]
        m = self.size_multiple
        # The same replicate padding and index_select crop as UNet3D (see its _pad and _crop).
        y = F.pad(x, (0, m * ((w + m - 1) // m) - w, 0, m * ((h + m - 1) // m) - h), mode="replicate")
        y = self.inc(y)
        skips = [y]
        for down, conv in zip(self.downs, self.down_convs):
            y = conv(down(y))
            skips.append(y)
        skips.pop()
        for up, conv in zip(self.ups, self.up_convs):
            y = conv(_cat_frames(skips.pop(), up(y), self.frames))
        rows = torch.arange(h, device=y.device)
        cols = torch.arange(w, device=y.device)
        features = y.index_select(-2, rows).index_select(-1, cols)
        return self.head(features), features


def fold(model: UNet3D, frames: int = T) -> FoldedUNet:
    """The folded form of a trained model (its weights copied; the model is left as it is)."""
    return FoldedUNet(model, frames).eval()
