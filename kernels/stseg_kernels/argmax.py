"""The label map of segment probabilities: argmax over the label axis, as uint8.

numpy's ``argmax(axis=1)`` on (B, L, T, H, W) walks L strided planes per pixel and holds
the GIL throughout; this kernel reads the L planes side by side in one pass and releases
the GIL, so it runs beside the pipeline's reader and writer threads. It is what a model
without an in-graph argmax (an older export, TorchScript) costs the pipeline.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["argmax_labels"]


@njit(cache=True, nogil=True)
def _argmax(proba, out):
    """proba (N, L, P) float, out (N, P) uint8: index of the first largest value."""
    n_labels = proba.shape[1]
    for n in range(proba.shape[0]):
        planes = proba[n]
        best = planes[0].copy()
        label = out[n]
        label[:] = 0
        for k in range(1, n_labels):
            plane = planes[k]
            for p in range(plane.shape[0]):
                if plane[p] > best[p]:
                    best[p] = plane[p]
                    label[p] = k


def argmax_labels(proba: np.ndarray) -> np.ndarray:
    """Labels of probabilities: ``proba`` (B, L, ...) float32 or float64, L <= 256 → (B, ...)
    uint8, the index of the first largest value over axis 1 (numpy's ``argmax(axis=1)``
    for NaN-free input; a NaN never wins)."""
    proba = np.asarray(proba)
    if proba.ndim < 2 or proba.dtype not in (np.float32, np.float64):
        raise ValueError(f"proba must be (B, L, ...) float32 or float64, got {proba.dtype} {proba.shape}")
    if not 1 <= proba.shape[1] <= 256:
        raise ValueError(f"proba must have 1 to 256 labels on axis 1, got {proba.shape[1]}")
    b, n_labels = proba.shape[:2]
    flat = np.ascontiguousarray(proba).reshape(b, n_labels, -1)
    out = np.empty((b, flat.shape[2]), np.uint8)
    _argmax(flat, out)
    return out.reshape((b, *proba.shape[2:]))
