"""The ST-MS space-time 3D U-Net.

Maps a window of optical flows ``(B, 2, T, H, W)`` (float32, pixels) to softmax
probabilities over L motion segments ``(B, L, T, H, W)``. Down- and upsampling act on space
only, so T is preserved through the network. Normalisation never keeps running statistics,
so a sample's output does not depend on the rest of its batch: per frame over space with an
affine (``norm="frame"``, this package's default) or, as the original, ``nn.InstanceNorm3d``
without affine over the whole window (``norm="instance3d"``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["NORMS", "FrameNorm", "DoubleConv", "UNet3D"]

# Normalisation layers by name; the description is what exported models say about themselves.
NORMS: dict[str, str] = {
    "frame": "per-frame instance (no running statistics)",
    "instance3d": "instance over (T, H, W), no affine, no running statistics (the original's InstanceNorm3d)",
}


def _norm_layer(norm: str, channels: int) -> nn.Module:
    if norm == "frame":
        return FrameNorm(channels)
    if norm == "instance3d":
        return nn.InstanceNorm3d(channels, affine=False, track_running_stats=False)
    raise ValueError(f"unknown normalisation {norm!r}; valid: {', '.join(NORMS)}")


class FrameNorm(nn.Module):
    """Instance-style normalisation per frame over space, with a learnable per-channel affine.

    For ``x: (B, C, T, H, W)`` each ``(b, c, t)`` slice is normalised by its own mean and
    (biased) variance over ``(H, W)``. No running statistics: train and eval behave alike and
    each sample is independent of the others in its batch.
    """

    def __init__(self, num_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor) -> Tensor:
        """``x: (B, C, T, H, W)`` → same shape."""
        mean = x.mean(dim=(-2, -1), keepdim=True)
        var = (x - mean).pow(2).mean(dim=(-2, -1), keepdim=True)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        return y * self.weight.view(1, -1, 1, 1, 1) + self.bias.view(1, -1, 1, 1, 1)

    def extra_repr(self) -> str:
        return f"{self.num_channels}, eps={self.eps}"


class DoubleConv(nn.Module):
    """(Conv3d 3×3×3 pad 1 → normalisation → ReLU) × 2.

    ``(B, Cin, T, H, W)`` → ``(B, Cout, T, H, W)``; ``norm`` names one of ``NORMS``.
    """

    def __init__(self, in_channels: int, out_channels: int, norm: str = "frame") -> None:
        super().__init__()
        # The conv bias is redundant right before a normalisation that removes the mean.
        self.block = nn.Sequential(
            nn.Conv3d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
            _norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv3d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            _norm_layer(norm, out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.block(x)


class UNet3D(nn.Module):
    """3D U-Net over flow windows.

    Args:
        n_labels: number of segments L (output channels).
        num_layers: number of resolution levels; features double per level
            (``features_start · 2^k`` for ``k < num_layers``).
        features_start: channels of the top level (and of the returned features).
        in_channels: input channels (2: u, v).
        norm: normalisation, one of ``NORMS``.

    ``forward(x)``: ``x: (B, in_channels, T, H, W)`` float32 (flow in pixels) →
    ``(B, n_labels, T, H, W)`` softmax probabilities (sum to 1 over dim 1). Any H, W ≥ 1 are
    accepted: they are padded up to a multiple of ``2^(num_layers-1)`` and cropped back.
    """

    def __init__(
        self,
        n_labels: int = 4,
        num_layers: int = 3,
        features_start: int = 32,
        in_channels: int = 2,
        norm: str = "frame",
    ) -> None:
        super().__init__()
        if norm not in NORMS:
            raise ValueError(f"unknown normalisation {norm!r}; valid: {', '.join(NORMS)}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if n_labels < 1 or features_start < 1 or in_channels < 1:
            raise ValueError(
                "n_labels, features_start and in_channels must be positive, got "
                f"{n_labels}, {features_start}, {in_channels}"
            )
        self.n_labels = int(n_labels)
        self.num_layers = int(num_layers)
        self.features_start = int(features_start)
        self.in_channels = int(in_channels)
        self.norm = norm
        self.size_multiple = 2 ** (self.num_layers - 1)

        feats = [self.features_start * 2**k for k in range(self.num_layers)]
        self.inc = DoubleConv(self.in_channels, feats[0], norm)
        self.downs = nn.ModuleList()
        self.down_convs = nn.ModuleList()
        for k in range(1, self.num_layers):
            self.downs.append(
                nn.Conv3d(feats[k - 1], feats[k - 1], kernel_size=(1, 2, 2), stride=(1, 2, 2))
            )
            self.down_convs.append(DoubleConv(feats[k - 1], feats[k], norm))
        self.ups = nn.ModuleList()
        self.up_convs = nn.ModuleList()
        for k in range(self.num_layers - 1, 0, -1):
            self.ups.append(
                nn.ConvTranspose3d(feats[k], feats[k - 1], kernel_size=(1, 2, 2), stride=(1, 2, 2))
            )
            # Input is the upsampled map concatenated with the skip: 2 × feats[k-1] channels.
            self.up_convs.append(DoubleConv(2 * feats[k - 1], feats[k - 1], norm))
        self.head = nn.Conv3d(feats[0], self.n_labels, kernel_size=1)

    @property
    def config(self) -> dict[str, int | str]:
        """Constructor arguments; ``UNet3D(**model.config)`` rebuilds the architecture."""
        return {
            "n_labels": self.n_labels,
            "num_layers": self.num_layers,
            "features_start": self.features_start,
            "in_channels": self.in_channels,
            "norm": self.norm,
        }

    def _pad(self, x: Tensor) -> Tensor:
        """Replicate-pad H, W of ``x: (B, C, T, H, W)`` up to a multiple of ``size_multiple``.

        Replicate rather than zero: zero flow is a real motion ("static"), so a zero border
        would add a spurious motion boundary and drag the per-frame normalisation statistics
        towards it; repeating the edge continues the border motion instead.

        The pad amounts are shape arithmetic on the (possibly symbolic) sizes, so they become
        graph computations in an export with dynamic H, W. When nothing is needed the pad is 0
        and the op is a no-op; there is no Python branch on the size.
        """
        m = self.size_multiple
        h, w = x.shape[-2], x.shape[-1]
        # Written as m·ceil(n/m) − n rather than (−n) % m: the padded size is then visibly a
        # multiple of m to torch.export's symbolic shapes, which must prove that each
        # upsampled map matches its skip (2·(P//2^k) == P//2^(k-1)) for every dynamic H, W.
        pad_h = m * ((h + m - 1) // m) - h
        pad_w = m * ((w + m - 1) // m) - w
        # 5-D replicate padding takes (W_left, W_right, H_top, H_bottom, T_front, T_back).
        return F.pad(x, (0, pad_w, 0, pad_h, 0, 0), mode="replicate")

    @staticmethod
    def _crop(y: Tensor, h: int, w: int) -> Tensor:
        """Keep the first ``h`` rows and ``w`` columns of ``y: (B, C, T, Hp, Wp)``.

        ``index_select`` with ``arange`` instead of slicing: a slice makes torch.export guard
        on ``h <= Hp`` and on whether the slice is the whole axis, facts it cannot prove for a
        symbolic H, which would pin H, W to the example's residue mod ``size_multiple``.
        """
        rows = torch.arange(h, device=y.device)
        cols = torch.arange(w, device=y.device)
        return y.index_select(-2, rows).index_select(-1, cols)

    def forward_with_features(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x: (B, in_channels, T, H, W)`` → ``(proba, features)``.

        ``proba``: ``(B, n_labels, T, H, W)`` softmax probabilities.
        ``features``: ``(B, features_start, T, H, W)``, the activations fed to the final
        1×1×1 convolution, cropped back to the input size.
        """
        h, w = x.shape[-2], x.shape[-1]
        y = self._pad(x)
        y = self.inc(y)
        skips = [y]
        for down, conv in zip(self.downs, self.down_convs):
            y = conv(down(y))
            skips.append(y)
        skips.pop()  # the deepest level is not a skip, it is the bottom of the U
        for up, conv in zip(self.ups, self.up_convs):
            y = up(y)
            y = conv(torch.cat([skips.pop(), y], dim=1))
        features = self._crop(y, h, w)
        proba = torch.softmax(self.head(features), dim=1)
        return proba, features

    def forward(self, x: Tensor) -> Tensor:
        """``x: (B, in_channels, T, H, W)`` float32 → ``(B, n_labels, T, H, W)`` probabilities."""
        return self.forward_with_features(x)[0]
