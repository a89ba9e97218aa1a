"""The exported form of :class:`~stseg_train.model.UNet3D`: the same function on the window's
frames as separate 2-D maps.

Why: onnxruntime's CPU provider runs 3-D convolutions as generic N-d ones (im2col and one GEMM),
while 2-D convolutions get its blocked, vectorised kernels. The first 2-D form (until 2026-12-07,
the frames folded into the channels, one convolution from ``T·Cin`` to ``T·Cout`` channels)
spent 2 of every 9 weight blocks on the temporal padding's zero taps. Here each output frame
sums only the 2-D convolutions of the input frames in its reach, and onnxruntime fuses each
sum into the convolutions (its NCHWc "Sum" fusion), so nothing is spent on zeros. Measured on
this project's 2-core VM in one process (``scripts/ort_options.py --compare``, ms per window):
the published-size network (32 features) runs 1.20× (batch 1) and 1.10× (batch 8) as fast as
the folded form at 128×224, 1.15–1.20× at 64×112; ``mix-small``'s 16 features at 64×112
1.02–1.03×, so every width gains or keeps its speed. The softmax is written out (exp, max,
sum): onnxruntime's Softmax on an axis other than the last transposes the tensor twice. The
crop back to the input's size is a slice (see :meth:`FramewiseUNet.forward`).

How (``T`` = 3 frames, frame t of a ``(B, C, T, H, W)`` tensor is ``x[:, :, t]``):

- a 3×3×3 convolution with temporal padding 1 is three 2-D convolutions, one per temporal
  tap k (the original's ``weight[:, :, k]``); output frame t is ``tap1(x_t) + tap0(x_{t−1}) +
  tap2(x_{t+1})``, the terms whose frame lies outside the window left out (the padding);
- the per-frame layers (the (1, 2, 2) down- and up-sampling, the 1×1×1 head) are the 2-D
  layers with the original's weights, applied to each frame;
- per-frame normalisation is ``instance_norm`` of each frame; ``instance3d`` normalises each
  channel over the T frames together.

Nothing is retrained: :func:`framewise` builds it from a trained model's weights, and the
export checks it against the original within the export's tolerances. Sums run in another
order, so outputs differ from the original's by float rounding only.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .model import DoubleConv, FrameNorm, UNet3D

T = 3  # frames in a window: fixed by the exported signature (B, 2, 3, H, W)


class TapConv(nn.Module):
    """A 3×3×3 convolution (padding 1, stride 1, one group) on a list of T frames
    ``(B, Cin, H, W)`` → a list of T frames ``(B, Cout, H, W)``."""

    def __init__(self, conv: nn.Conv3d, frames: int = T) -> None:
        super().__init__()
        if (
            tuple(conv.kernel_size) != (3, 3, 3)
            or tuple(conv.padding) != (1, 1, 1)
            or tuple(conv.stride) != (1, 1, 1)
            or tuple(conv.dilation) != (1, 1, 1)
            or conv.groups != 1
            or conv.padding_mode != "zeros"
        ):
            raise ValueError(f"TapConv takes 3x3x3 convolutions with zero padding 1, stride 1, no dilation, one group; got {conv}")
        self.frames = frames
        weight = conv.weight.detach()
        out_c, in_c = weight.shape[:2]

        def tap(k: int, bias: Tensor | None = None) -> nn.Conv2d:
            layer = nn.Conv2d(in_c, out_c, 3, padding=1, bias=bias is not None)
            layer.weight.data = weight[:, :, k].clone()
            if bias is not None:
                layer.bias.data = bias.detach().clone()
            return layer

        # The bias goes with the centre tap, the one term every output frame has.
        self.tap0, self.tap1, self.tap2 = tap(0), tap(1, conv.bias), tap(2)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        out: list[Tensor] = []
        for t in range(self.frames):
            y = self.tap1(xs[t])
            if t > 0:
                y = y + self.tap0(xs[t - 1])
            if t + 1 < self.frames:
                y = y + self.tap2(xs[t + 1])
            out.append(y)
        return out


class PerFrame(nn.Module):
    """A layer with a temporal kernel of 1 (``Conv3d`` or ``ConvTranspose3d``) as its 2-D
    layer, applied to each frame of a list."""

    def __init__(self, conv: nn.Conv3d | nn.ConvTranspose3d) -> None:
        super().__init__()
        plain = tuple(conv.dilation) == (1, 1, 1) and conv.padding_mode == "zeros" and not any(getattr(conv, "output_padding", (0, 0, 0)))
        if conv.kernel_size[0] != 1 or conv.stride[0] != 1 or conv.padding[0] != 0 or conv.groups != 1 or not plain:
            raise ValueError(
                f"PerFrame takes layers with a temporal kernel of 1 (no dilation, zero padding, no output padding); got {conv}"
            )
        kind = nn.ConvTranspose2d if isinstance(conv, nn.ConvTranspose3d) else nn.Conv2d
        self.layer = kind(
            conv.in_channels,
            conv.out_channels,
            tuple(conv.kernel_size[1:]),
            stride=tuple(conv.stride[1:]),
            padding=tuple(conv.padding[1:]),
            bias=conv.bias is not None,
        )
        self.layer.weight.data = conv.weight.detach()[:, :, 0].clone()
        if conv.bias is not None:
            self.layer.bias.data = conv.bias.detach().clone()

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        return [self.layer(x) for x in xs]


class FrameNormList(nn.Module):
    """:class:`~stseg_train.model.FrameNorm` then ReLU on a list of frames: each (frame,
    channel) plane normalised over space, with the per-channel affine."""

    def __init__(self, norm: FrameNorm) -> None:
        super().__init__()
        self.eps = norm.eps
        self.weight = nn.Parameter(norm.weight.detach().clone())
        self.bias = nn.Parameter(norm.bias.detach().clone())

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        return [F.relu(F.instance_norm(x, weight=self.weight, bias=self.bias, eps=self.eps)) for x in xs]


class Instance3dList(nn.Module):
    """``nn.InstanceNorm3d`` (no affine) then ReLU on a list of frames: each channel
    normalised over its T planes together."""

    def __init__(self, norm: nn.InstanceNorm3d) -> None:
        super().__init__()
        if norm.affine or norm.track_running_stats:
            raise ValueError(f"only InstanceNorm3d without affine or running statistics is supported; got {norm}")
        self.eps = norm.eps

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        frames = float(len(xs))
        mean = torch.stack([x.mean(dim=(2, 3), keepdim=True) for x in xs]).sum(dim=0) / frames
        var = torch.stack([(x - mean).pow(2).mean(dim=(2, 3), keepdim=True) for x in xs]).sum(dim=0) / frames
        scale = torch.rsqrt(var + self.eps)
        return [F.relu((x - mean) * scale) for x in xs]


def _norm_relu(norm: nn.Module) -> nn.Module:
    if isinstance(norm, FrameNorm):
        return FrameNormList(norm)
    if isinstance(norm, nn.InstanceNorm3d):
        return Instance3dList(norm)
    raise ValueError(f"no framewise form of normalisation {norm}")


class DoubleConvList(nn.Module):
    """:class:`~stseg_train.model.DoubleConv` on a list of frames."""

    def __init__(self, block: DoubleConv, frames: int = T) -> None:
        super().__init__()
        conv1, norm1, _, conv2, norm2, _ = block.block
        self.conv1, self.norm1 = TapConv(conv1, frames), _norm_relu(norm1)
        self.conv2, self.norm2 = TapConv(conv2, frames), _norm_relu(norm2)

    def forward(self, xs: list[Tensor]) -> list[Tensor]:
        return self.norm2(self.conv2(self.norm1(self.conv1(xs))))


class FramewiseUNet(nn.Module):
    """:meth:`UNet3D.forward_with_features` with the frames apart: ``x (B, Cin, T, H, W)`` →
    ``(logits (B, L, T, H, W), features (B, C, T, H, W))``; the softmax over segments is the
    caller's (:class:`~stseg_train.export_wrapper.ExportWrapper`)."""

    def __init__(self, model: UNet3D, frames: int = T) -> None:
        super().__init__()
        self.frames = frames
        self.size_multiple = model.size_multiple
        self.inc = DoubleConvList(model.inc, frames)
        self.downs = nn.ModuleList(PerFrame(d) for d in model.downs)
        self.down_convs = nn.ModuleList(DoubleConvList(c, frames) for c in model.down_convs)
        self.ups = nn.ModuleList(PerFrame(u) for u in model.ups)
        self.up_convs = nn.ModuleList(DoubleConvList(c, frames) for c in model.up_convs)
        self.head = PerFrame(model.head)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.dim() != 5 or x.shape[2] != self.frames:
            raise ValueError("the network takes windows (B, C, " + str(self.frames) + ", H, W), got " + str(list(x.shape)))
        h, w = x.shape[-2], x.shape[-1]
        m = self.size_multiple
        padded_h, padded_w = m * ((h + m - 1) // m), m * ((w + m - 1) // m)
        # The same replicate padding as UNet3D (see its _pad).
        padded = F.pad(x, (0, padded_w - w, 0, padded_h - h, 0, 0), mode="replicate")
        ys = self.inc([padded[:, :, t] for t in range(self.frames)])
        skips = [ys]
        for down, conv in zip(self.downs, self.down_convs):
            ys = conv(down(ys))
            skips.append(ys)
        skips.pop()
        for up, conv in zip(self.ups, self.up_convs):
            skip = skips.pop()
            upsampled = up(ys)
            ys = conv([torch.cat([s, u], dim=1) for s, u in zip(skip, upsampled)])
        # Cropped by slicing, which onnxruntime runs as a plain copy (UNet3D's index_select
        # becomes a Gather, 3 % of the published-size network's time). The checks tell
        # torch.export what it cannot prove for symbolic sizes, that the crop is inside.
        torch._check(h <= padded_h)
        torch._check(w <= padded_w)
        logits = torch.stack(self.head(ys), dim=2)[..., :h, :w]
        features = torch.stack(ys, dim=2)[..., :h, :w]
        return logits, features


def framewise(model: UNet3D, frames: int = T) -> FramewiseUNet:
    """The framewise form of a trained model (its weights copied; the model is left as it is)."""
    return FramewiseUNet(model, frames).eval()
