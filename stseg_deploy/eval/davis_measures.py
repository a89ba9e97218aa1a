"""The DAVIS benchmark's measures, as its evaluator defines them (Perazzi et al., CVPR 2016).

- J, region similarity: |P ∩ G| / |P ∪ G| per frame, 1 where both are empty.
- F, contour accuracy: boundary precision and recall, a boundary pixel counting as matched
  when the other mask's boundary lies within ``ceil(0.008 × image diagonal)`` pixels (a disk
  dilation), combined as 2PR / (P + R).
- Per sequence, each as Mean, Recall (share of frames above 0.5) and Decay (mean of the first
  quarter minus mean of the last, with the evaluator's own four overlapping bins).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import ArrayLike

BOUND_TH = 0.008


def region_similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """J of two (H, W) bool masks; 1.0 when both are empty."""
    union = np.count_nonzero(pred | gt)
    return 1.0 if union == 0 else np.count_nonzero(pred & gt) / union


def boundary_map(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool, one pixel wide: pixels whose right, lower or lower-right neighbour differs
    (the evaluator's seg2bmap, whose boundaries sit half a pixel towards the origin)."""
    seg = mask.astype(bool)
    east = np.zeros_like(seg)
    south = np.zeros_like(seg)
    south_east = np.zeros_like(seg)
    east[:, :-1] = seg[:, 1:]
    south[:-1, :] = seg[1:, :]
    south_east[:-1, :-1] = seg[1:, 1:]
    bmap = (seg ^ east) | (seg ^ south) | (seg ^ south_east)
    # The last row and column compare only along themselves, as the evaluator does.
    bmap[-1, :] = seg[-1, :] ^ east[-1, :]
    bmap[:, -1] = seg[:, -1] ^ south[:, -1]
    bmap[-1, -1] = False
    return bmap


def disk(radius: int) -> np.ndarray:
    """(2r+1, 2r+1) uint8 disk: offsets (dy, dx) with dy² + dx² <= r²."""
    r = int(radius)
    y, x = np.ogrid[-r : r + 1, -r : r + 1]
    return (x * x + y * y <= r * r).astype(np.uint8)


def boundary_radius(shape: tuple[int, ...], bound_th: float = BOUND_TH) -> int:
    """Match tolerance in pixels for an (H, W) image: ``ceil(bound_th × diagonal)`` when
    ``bound_th`` < 1, else ``bound_th`` pixels."""
    return int(bound_th) if bound_th >= 1 else math.ceil(bound_th * math.hypot(shape[0], shape[1]))


def boundary_f_counts(n_pred: ArrayLike, n_gt: ArrayLike, pred_hits: ArrayLike, gt_hits: ArrayLike) -> np.ndarray:
    """F from boundary pixel counts, elementwise over broadcastable arrays (float64).

    ``n_pred``/``n_gt``: boundary pixels of the prediction / ground truth; ``pred_hits``:
    prediction boundary pixels within the tolerance of the ground truth's boundary;
    ``gt_hits``: the reverse. Both boundaries empty: 1; only the prediction's: P = 1, R = 0;
    only the ground truth's: P = 0, R = 1 (F = 0 for either).
    """
    n_pred, n_gt = np.asarray(n_pred), np.asarray(n_gt)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(n_pred == 0, 1.0, np.where(n_gt == 0, 0.0, np.asarray(pred_hits) / n_pred))
        recall = np.where(n_gt == 0, 1.0, np.where(n_pred == 0, 0.0, np.asarray(gt_hits) / n_gt))
        total = precision + recall
        return np.where(total == 0, 0.0, 2 * precision * recall / total)


def boundary_f(pred: np.ndarray, gt: np.ndarray, bound_th: float = BOUND_TH) -> float:
    """F of two (H, W) bool masks' boundaries. ``bound_th`` < 1 is a share of the image
    diagonal, >= 1 a number of pixels."""
    pred_b, gt_b = boundary_map(pred), boundary_map(gt)
    kernel = disk(boundary_radius(pred.shape, bound_th))
    pred_near = cv2.dilate(pred_b.astype(np.uint8), kernel).astype(bool)
    gt_near = cv2.dilate(gt_b.astype(np.uint8), kernel).astype(bool)
    n_pred, n_gt = np.count_nonzero(pred_b), np.count_nonzero(gt_b)
    hits = np.count_nonzero(pred_b & gt_near), np.count_nonzero(gt_b & pred_near)
    return float(boundary_f_counts(n_pred, n_gt, *hits))


def statistics(values: np.ndarray) -> tuple[float, float, float]:
    """(Mean, Recall, Decay) of one sequence's per-frame values, in frame order.

    Decay: bins ``values[ids[i] : ids[i + 1] + 1]`` for i in 0..3, with ``ids`` the rounded
    ``linspace(1, n, 5) - 1``, so neighbouring bins share their edge frame; mean of the first
    bin minus mean of the last.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(np.mean(values))
    recall = float(np.mean(values > 0.5))
    ids = (np.round(np.linspace(1, len(values), 5) + 1e-10) - 1).astype(int)
    bins = [values[ids[i] : ids[i + 1] + 1] for i in range(4)]
    decay = float(np.mean(bins[0]) - np.mean(bins[3]))
    return mean, recall, decay
