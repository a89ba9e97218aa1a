"""Turning multi-label segmentations into a binary foreground, frame by frame.

- ``exceptbiggest``: every segment but the largest (the largest is taken as background);
  needs no ground truth.
- ``fair``: the segments with more than half of their pixels inside the ground truth.
- ``foreground``: the segments stseg-infer decided are moving objects (``--foreground
  motion``, recorded in sequence.json): what a user without ground truth gets.

The per-chunk ``optimax`` selection lives in :func:`stseg_kernels.select_masks`.
"""

from __future__ import annotations

import numpy as np

BINARISATIONS = ("optimax", "fair", "exceptbiggest", "foreground")


def _counts(labels: np.ndarray, n_labels: int) -> np.ndarray:
    return np.bincount(labels.reshape(-1).astype(np.int64), minlength=n_labels)[:n_labels]


def binarise_exceptbiggest(labels: np.ndarray, n_labels: int) -> np.ndarray:
    """labels: (H, W) ints in [0, n_labels). Returns (H, W) bool: all but the largest segment.

    Ties for the largest go to the lowest label.
    """
    sizes = _counts(labels, n_labels)
    return labels != int(np.argmax(sizes))


def binarise_fair(labels: np.ndarray, gt: np.ndarray, n_labels: int) -> np.ndarray:
    """labels: (H, W) ints; gt: (H, W) bool. Returns (H, W) bool: segments mostly inside gt."""
    sizes = _counts(labels, n_labels)
    inside = _counts(labels[gt.astype(bool)], n_labels)
    chosen = 2 * inside > sizes
    return chosen[labels]
