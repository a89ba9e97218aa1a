"""Mask selection for binary benchmarks: which labels make the foreground, per chunk.

Uses the ground truth by design (it measures how well the segments can explain the
object, as the paper evaluates). One parallel pass counts, per frame with ground truth,
the pixels of each label inside and outside the ground truth; the greedy selection then
works on those (L, 2) tables, and a second parallel pass paints the foreground.
"""

from __future__ import annotations

import operator

import numba
import numpy as np
from numba import njit, prange

from ._counting import pair_table
from ._remap import label_values, remap_frames
from ._validate import (
    check_cut_size,
    check_n_labels,
    check_shape,
    label_array,
    mask_array,
    raise_label_range,
    work_labels,
)

__all__ = ["frame_chunks", "select_labels", "select_masks"]

# Frames handed to a thread at a time (dynamic hand-out, see linking._WINDOWS_PER_TASK).
_FRAMES_PER_TASK = 8


def frame_chunks(n_frames: int, cut_size: int | None) -> np.ndarray:
    """Chunk index of every frame, matching the window chunks of ``link_windows``.

    With N = n_frames - 2 windows, window chunk j covers windows jc..jc+c-1, whose middle
    frames are jc+1..jc+c; frame 0 joins the first chunk and frame n_frames-1 the last.
    So chunk 0 is frames 0..c, chunk j is frames jc+1..(j+1)c, and the last chunk runs to
    the last frame. None (or fewer than 3 frames): a single chunk.

    Returns (n_frames,) int64, non-decreasing from 0.
    """
    cut_size = check_cut_size(cut_size)
    n_frames = operator.index(n_frames)
    if n_frames < 0:
        raise ValueError(f"n_frames must be >= 0, got {n_frames}")
    n_win = n_frames - 2
    if cut_size is None or n_win < 1:
        return np.zeros(n_frames, np.int64)
    n_chunks = -(-n_win // cut_size)
    return np.clip((np.arange(n_frames) - 1) // cut_size, 0, n_chunks - 1).astype(np.int64)


@njit(cache=True, parallel=True)
def _frame_counts(labels, gt, has_gt, n_labels):
    """Per-frame (label, ground truth) pixel counts.

    labels: (F, P) uint8 or int64; gt: (F, P) uint8 0/1; has_gt: (F,) bool.
    Returns (F, L, 2) int64, [f, l, g] = #pixels of label l with gt == g (zeros on frames
    without ground truth).
    """
    n_frames = labels.shape[0]
    counts = np.zeros((n_frames, n_labels, 2), np.int64)
    for f in prange(n_frames):
        if has_gt[f]:
            pair_table(labels[f], gt[f], n_labels, 2, counts[f])
    return counts


@njit(cache=True)
def _greedy(counts, has_gt, chunk_of_frame, n_chunks):
    """Greedy label choice per chunk, pooled over the chunk's frames with ground truth.

    n_labels rounds: add the label whose union with the chosen ones has the best IoU with
    the ground truth (first label on ties; re-choosing a label changes nothing). IoU of two
    empty sets is 1. A chunk without ground-truth frames chooses nothing.
    Returns chosen (n_chunks, L) bool.
    """
    n_labels = counts.shape[1]
    chosen = np.zeros((n_chunks, n_labels), np.bool_)
    inside = np.zeros((n_chunks, n_labels), np.int64)
    size = np.zeros((n_chunks, n_labels), np.int64)
    n_gt_frames = np.zeros(n_chunks, np.int64)
    for f in range(counts.shape[0]):
        if has_gt[f]:
            g = chunk_of_frame[f]
            n_gt_frames[g] += 1
            for lab in range(n_labels):
                inside[g, lab] += counts[f, lab, 1]
                size[g, lab] += counts[f, lab, 0] + counts[f, lab, 1]
    for g in range(n_chunks):
        if n_gt_frames[g] == 0:
            continue
        gt_size = 0
        for lab in range(n_labels):
            gt_size += inside[g, lab]  # every pixel has exactly one label
        cur_inter = 0
        cur_size = 0
        for _ in range(n_labels):
            best = -1.0
            best_lab = 0
            for lab in range(n_labels):
                inter = cur_inter
                pred = cur_size
                if not chosen[g, lab]:
                    inter += inside[g, lab]
                    pred += size[g, lab]
                union = pred + gt_size - inter
                iou = 1.0 if union == 0 else inter / union
                if iou > best:
                    best = iou
                    best_lab = lab
            if not chosen[g, best_lab]:
                chosen[g, best_lab] = True
                cur_inter += inside[g, best_lab]
                cur_size += size[g, best_lab]
    return chosen


def _prepare(frame_labels, gt, has_gt, n_labels, cut_size):
    n_labels = check_n_labels(n_labels)
    cut_size = check_cut_size(cut_size)
    arr = label_array(frame_labels, "frame_labels")
    check_shape(arr, "frame_labels", (None, None, None), "(F, H, W)")
    n_frames, height, width = arr.shape
    if n_frames == 0:
        raise ValueError("frame_labels must hold at least one frame (F >= 1), got F = 0")
    gt8 = mask_array(gt, "gt")
    if gt8.shape != arr.shape:
        raise ValueError(f"gt must have the shape of frame_labels {arr.shape}, got {gt8.shape}")
    has = np.asarray(has_gt)
    if has.dtype != np.bool_:
        if not np.issubdtype(has.dtype, np.integer):
            raise TypeError(f"has_gt must be a bool array, got dtype {has.dtype}")
        has = has != 0
    if has.shape != (n_frames,):
        raise ValueError(f"has_gt must have shape (F,) = ({n_frames},), got {has.shape}")
    work, unchecked = work_labels(arr, "frame_labels", n_labels)
    n_pix = height * width
    flat = work.reshape(n_frames, n_pix)
    with numba.parallel_chunksize(_FRAMES_PER_TASK):
        counts = _frame_counts(flat, gt8.reshape(n_frames, n_pix), np.ascontiguousarray(has), n_labels)
    chunk_of_frame = frame_chunks(n_frames, cut_size)
    n_chunks = int(chunk_of_frame[-1]) + 1
    chosen = _greedy(counts, has, chunk_of_frame, n_chunks)
    return work, flat, has, chunk_of_frame, chosen, n_labels, unchecked


def _paint(flat, has, chunk_of_frame, chosen, n_labels, unchecked):
    """(F, P) bool foreground: frame f's pixels whose label its chunk chose (all False
    without ground truth). Also where uint8 labels get their range check (see work_labels)."""
    n_chunks = chosen.shape[0]
    # One extra all-False table for the frames without ground truth.
    luts = np.zeros((n_chunks + 1, n_labels), np.uint8)
    luts[:n_chunks] = chosen
    lut_of_frame = np.where(has, chunk_of_frame, n_chunks).astype(np.int64)
    out = np.empty(flat.shape, np.bool_)
    with numba.parallel_chunksize(_FRAMES_PER_TASK):
        top = remap_frames(flat, label_values(n_labels, flat.dtype), luts, lut_of_frame, out.view(np.uint8))
    if unchecked and top.max() >= n_labels:
        raise_label_range("frame_labels", top.max(), n_labels)
    return out


def select_labels(
    frame_labels: np.ndarray,
    gt: np.ndarray,
    has_gt: np.ndarray,
    n_labels: int,
    cut_size: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The labels chosen as foreground in each chunk (see :func:`select_masks`).

    Returns ``(chunk_of_frame, chosen)``: (F,) int64 chunk index of each frame (as
    :func:`frame_chunks`), and (n_chunks, n_labels) bool, all False for a chunk without
    ground-truth frames.
    """
    _, flat, has, chunk_of_frame, chosen, n_labels, unchecked = _prepare(frame_labels, gt, has_gt, n_labels, cut_size)
    if unchecked:
        _paint(flat, has, chunk_of_frame, chosen, n_labels, unchecked)  # range check only
    return chunk_of_frame, chosen


def select_masks(
    frame_labels: np.ndarray,
    gt: np.ndarray,
    has_gt: np.ndarray,
    n_labels: int,
    cut_size: int | None = None,
) -> np.ndarray:
    """Binary foreground from labels, choosing the labels per chunk with the ground truth.

    Parameters
    ----------
    frame_labels
        (F, H, W) integer labels in [0, n_labels), F >= 1.
    gt
        (F, H, W) ground-truth masks, bool or integer (non-zero is foreground).
    has_gt
        (F,) bool, which frames have ground truth; the others do not take part in the
        selection and come out all False.
    n_labels
        Number of labels L (>= 1): also the number of greedy rounds.
    cut_size
        Chunks as :func:`frame_chunks` (the frame chunks of linking with this cut size);
        None: one chunk.

    Per chunk, pooled over its frames with ground truth: n_labels greedy rounds each add
    the label whose union with those already chosen has the best IoU with the ground truth
    (first label on ties; IoU of two empty sets is 1). The foreground is the union of the
    chosen labels.

    Returns
    -------
    (F, H, W) bool.
    """
    work, flat, has, chunk_of_frame, chosen, n_labels, unchecked = _prepare(
        frame_labels, gt, has_gt, n_labels, cut_size
    )
    return _paint(flat, has, chunk_of_frame, chosen, n_labels, unchecked).reshape(work.shape)
