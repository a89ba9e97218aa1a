"""Preprocessing shared by training and inference: flow resizing and 3-frame windows.

Training imports these very functions so a model never sees different input at inference.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

WINDOW = 3  # frames per window: t-1, t, t+1
# Largest model input side (pixels) a command accepts: above DCI 4K (4096 x 2160), the largest
# frames a user plausibly segments at full size, and far below sizes whose first tensors
# (the motion basis, the first feature maps) would need hundreds of GB.
MAX_IMAGE_SIDE = 4096


# How a flow field is brought to the model's input size. "antialias": bilinear, antialiased
# when shrinking, vectors rescaled to the new pixel grid (this package's choice since its
# first model). "plain": the original research code's, bilinear sampling without
# antialiasing (half-pixel centres, like torch's align_corners=False) and the vectors left in
# the source grid's pixels. A model records the mode it was trained with; inference follows it.
RESIZE_MODES = ("antialias", "plain")
DEFAULT_RESIZE = "antialias"


def resize_flow(flow: np.ndarray, size: tuple[int, int], mode: str = DEFAULT_RESIZE) -> np.ndarray:
    """Resize a flow field to a model's input size.

    Args:
        flow: (2, H, W) float32, pixels.
        size: (h, w) target size.
        mode: one of ``RESIZE_MODES`` (see there).

    Returns:
        (2, h, w) float32. With ``"antialias"`` the vectors are in pixels of the new grid
        (u scaled by w/W, v by h/H); with ``"plain"`` they keep the source grid's pixels.
        Deterministic and torch-free.
    """
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow must have shape (2, H, W), got {flow.shape}")
    if mode not in RESIZE_MODES:
        raise ValueError(f"unknown resize mode {mode!r}; valid: {', '.join(RESIZE_MODES)}")
    h, w = int(size[0]), int(size[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"target size must be positive, got {size}")
    _, height, width = flow.shape
    if (height, width) == (h, w):
        return np.ascontiguousarray(flow, dtype=np.float32)
    if mode == "plain":
        return _bilinear_plain(np.asarray(flow, dtype=np.float32), h, w)
    out = np.empty((2, h, w), dtype=np.float32)
    scales = (w / width, h / height)
    for c in range(2):
        channel = Image.fromarray(np.ascontiguousarray(flow[c], dtype=np.float32), mode="F")
        out[c] = np.asarray(channel.resize((w, h), Image.Resampling.BILINEAR)) * scales[c]
    return out


def _source_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two source indices and the weight of the second, for each of ``n_out`` samples.

    Half-pixel centres: sample k reads source position (k + 0.5)·n_in/n_out − 0.5, clamped
    at 0 below and at the last pixel above (two taps only, so no antialiasing).
    """
    pos = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    lo = np.minimum(np.floor(pos).astype(np.int64), n_in - 1)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (pos - lo).astype(np.float32)


def _bilinear_plain(flow: np.ndarray, h: int, w: int) -> np.ndarray:
    """``flow: (2, H, W)`` → ``(2, h, w)`` bilinear without antialiasing, values unchanged."""
    r0, r1, wr = _source_taps(flow.shape[1], h)
    c0, c1, wc = _source_taps(flow.shape[2], w)
    rows = flow[:, r0] * (1 - wr)[:, None] + flow[:, r1] * wr[:, None]  # (2, h, W)
    out = rows[:, :, c0] * (1 - wc) + rows[:, :, c1] * wc
    return np.ascontiguousarray(out, dtype=np.float32)


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label map.

    Args:
        labels: (H, W) uint8 labels.
        size: (h, w) target size.

    Returns:
        (h, w) uint8.
    """
    if labels.ndim != 2:
        raise ValueError(f"labels must have shape (H, W), got {labels.shape}")
    h, w = int(size[0]), int(size[1])
    if labels.shape == (h, w):
        return np.ascontiguousarray(labels, dtype=np.uint8)
    image = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8), mode="L")
    return np.asarray(image.resize((w, h), Image.Resampling.NEAREST))


def flow_windows(flows: np.ndarray) -> np.ndarray:
    """Stack consecutive flows into overlapping 3-frame windows.

    Args:
        flows: (F, 2, H, W) float32 with F >= 3.

    Returns:
        (F - 2, 2, 3, H, W) float32 view-free copy; window w holds frames w, w+1, w+2.
    """
    if flows.ndim != 4 or flows.shape[1] != 2:
        raise ValueError(f"flows must have shape (F, 2, H, W), got {flows.shape}")
    if flows.shape[0] < WINDOW:
        raise ValueError(f"need at least {WINDOW} flow frames to build a window, got {flows.shape[0]}")
    views = np.lib.stride_tricks.sliding_window_view(flows, WINDOW, axis=0)  # (N, 2, H, W, 3)
    return np.ascontiguousarray(views.transpose(0, 1, 4, 2, 3), dtype=np.float32)
