"""Segmentation scores."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._validate import mask_array

__all__ = ["jaccard"]


@njit(cache=True, parallel=True)
def _jaccard(a, b):
    """a, b: (F, P) uint8 holding 0/1. Returns (F,) float64."""
    n_frames = a.shape[0]
    out = np.empty(n_frames)
    for f in prange(n_frames):
        x = a[f]
        y = b[f]
        inter = 0
        union = 0
        for p in range(x.shape[0]):
            inter += x[p] & y[p]
            union += x[p] | y[p]
        out[f] = 1.0 if union == 0 else inter / union
    return out


def jaccard(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-frame Jaccard index J = |A ∩ B| / |A ∪ B| (1.0 when both masks are empty).

    gt, pred: (F, H, W) or a single (H, W) frame, bool or integer (non-zero is True), same
    shape. Returns (F,) float64 ((1,) for a single frame).
    """
    a = mask_array(gt, "gt")
    b = mask_array(pred, "pred")
    if a.shape != b.shape:
        raise ValueError(f"gt and pred must have the same shape, got {a.shape} and {b.shape}")
    if a.ndim == 2:
        a = a[None]
        b = b[None]
    elif a.ndim != 3:
        raise ValueError(f"gt and pred must have shape (F, H, W) or (H, W), got {a.ndim}-D shape {a.shape}")
    n_frames, height, width = a.shape
    return _jaccard(a.reshape(n_frames, height * width), b.reshape(n_frames, height * width))
