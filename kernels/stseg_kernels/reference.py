"""Slow, obvious numpy references for the compiled kernels — for tests and benchmarks only.

Written the way research code does it (frame by frame, label by label, boolean masks,
Python loops) straight from the rules in DESIGN.md, without sharing any code with the
kernels, so that agreeing with them means something. Do not use these in a pipeline:
they are hundreds of times slower than the public functions.

Each function has the signature and output of its fast counterpart:
``link_windows_reference`` ~ ``link_windows(method="naive", span=...)``, ``unravel_windows_reference``,
``select_masks_reference``, ``jaccard_reference``, ``guided_labels_reference``.
``fit_blocks_reference`` and ``robust_fit_blocks_reference`` fit ``MotionGrid``'s motion model the
textbook way, through an explicit block-diagonal basis (one block of rows per frame, columns the
pixels), with ``np.linalg.solve``. ``window_scores_reference`` exposes the per-window score
matrix, used to check the optimal linking by brute force.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "iou_reference",
    "window_scores_reference",
    "link_windows_reference",
    "unravel_windows_reference",
    "frame_chunks_reference",
    "select_masks_reference",
    "jaccard_reference",
    "guided_labels_reference",
    "guided_coefficients_reference",
    "fit_blocks_reference",
    "robust_fit_blocks_reference",
]


def iou_reference(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of two boolean masks of any (equal) shape; 1.0 when both are empty."""
    union = np.sum(a | b)
    if union == 0:
        return 1.0
    return np.sum(a & b) / union


def window_scores_reference(
    prev_window: np.ndarray, cur_window: np.ndarray, n_labels: int, before_prev: np.ndarray | None = None
) -> np.ndarray:
    """score[k, l] = sum over the two shared frames of IoU(prev label k, cur label l), plus,
    with ``before_prev`` (the window before prev), IoU on the frame it shares with cur.

    prev_window, cur_window, before_prev: (3, H, W) labels; frames 1, 2 of prev are frames
    0, 1 of cur, frame 2 of before_prev is frame 0 of cur. Returns (n_labels, n_labels)
    float64.
    """
    scores = np.zeros((n_labels, n_labels))
    for k in range(n_labels):
        for l in range(n_labels):
            score = 0.0
            for t in range(2):
                score += iou_reference(prev_window[t + 1] == k, cur_window[t] == l)
            if before_prev is not None:
                score += iou_reference(before_prev[2] == k, cur_window[0] == l)
            scores[k, l] = score
    return scores


def link_windows_reference(
    window_labels: np.ndarray, n_labels: int, cut_size: int | None = None, span: int = 1
) -> np.ndarray:
    """Naive temporal linking, window by window. (N, 3, H, W) -> same shape and dtype.
    span 2 also scores each window against the window two before it, in its chunk."""
    windows = np.array(window_labels, copy=True)
    n_windows = len(windows)
    if cut_size is None:
        cut_size = n_windows
    for start in range(0, n_windows, cut_size):
        for w in range(start + 1, min(start + cut_size, n_windows)):
            previous = windows[w - 1]  # already renamed
            before = windows[w - 2] if span == 2 and w - 2 >= start else None
            current = windows[w].copy()  # not yet renamed
            scores = window_scores_reference(previous, current, n_labels, before)
            renamed = np.zeros_like(current)
            for l in range(n_labels):
                best_score = -1.0
                best_k = 0
                for k in range(n_labels):
                    if scores[k, l] > best_score:
                        best_score = scores[k, l]
                        best_k = k
                renamed[current == l] = best_k
            windows[w] = renamed
    return windows


def unravel_windows_reference(window_labels: np.ndarray) -> np.ndarray:
    """(N, 3, ...) -> (N + 2, ...): first frame of the first window, every middle frame,
    last frame of the last window."""
    frames = [window_labels[0][0]]
    for window in window_labels:
        frames.append(window[1])
    frames.append(window_labels[-1][2])
    return np.stack(frames)


def frame_chunks_reference(n_frames: int, cut_size: int | None) -> list[list[int]]:
    """Frame indices of each chunk: the middle frames of each chunk of ``cut_size``
    windows, plus frame 0 in the first chunk and the last frame in the last."""
    n_windows = n_frames - 2
    if cut_size is None or n_windows < 1:
        return [list(range(n_frames))]
    chunks = []
    for start in range(0, n_windows, cut_size):
        chunks.append([w + 1 for w in range(start, min(start + cut_size, n_windows))])
    chunks[0].insert(0, 0)
    chunks[-1].append(n_frames - 1)
    return chunks


def select_masks_reference(
    frame_labels: np.ndarray,
    gt: np.ndarray,
    has_gt: np.ndarray,
    n_labels: int,
    cut_size: int | None = None,
) -> np.ndarray:
    """Greedy per-chunk label selection with the ground truth. (F, H, W) -> (F, H, W) bool."""
    frame_labels = np.asarray(frame_labels)
    gt = np.asarray(gt) != 0
    out = np.zeros(frame_labels.shape, dtype=bool)
    for chunk in frame_chunks_reference(len(frame_labels), cut_size):
        frames = [f for f in chunk if has_gt[f]]
        if not frames:
            continue
        labels = frame_labels[frames]
        truth = gt[frames]
        chosen: list[int] = []
        for _ in range(n_labels):
            best_iou = -1.0
            best_label = 0
            for l in range(n_labels):
                candidate = np.isin(labels, chosen + [l])
                score = iou_reference(candidate, truth)
                if score > best_iou:
                    best_iou = score
                    best_label = l
            if best_label not in chosen:
                chosen.append(best_label)
        for f in frames:
            out[f] = np.isin(frame_labels[f], chosen)
    return out


def jaccard_reference(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    """Per-frame IoU of (F, H, W) or (H, W) masks (non-zero is True). -> (F,) float64."""
    gt = np.asarray(gt) != 0
    pred = np.asarray(pred) != 0
    if gt.ndim == 2:
        gt = gt[None]
        pred = pred[None]
    return np.array([iou_reference(g, p) for g, p in zip(gt, pred)], dtype=np.float64)


def _bilinear_reference(x: np.ndarray, n_rows: int, n_cols: int) -> np.ndarray:
    """x (h, w, ...) resized to (n_rows, n_cols, ...) bilinearly, pixel centres aligned
    (source position (i + 0.5) · in / out − 0.5), taps clamped at the borders."""

    def taps(n_out: int, n_in: int):
        pos = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
        lo = np.floor(pos).astype(int)
        frac = pos - lo
        frac[lo < 0] = 0.0
        lo[lo < 0] = 0
        frac[lo >= n_in - 1] = 0.0
        lo[lo >= n_in - 1] = n_in - 1
        return lo, np.minimum(lo + 1, n_in - 1), frac

    r0, r1, fr = taps(n_rows, x.shape[0])
    c0, c1, fc = taps(n_cols, x.shape[1])
    fr = fr.reshape(-1, *([1] * (x.ndim - 1)))
    rows = x[r0] * (1 - fr) + x[r1] * fr
    fc = fc.reshape(1, -1, *([1] * (x.ndim - 2)))
    return rows[:, c0] * (1 - fc) + rows[:, c1] * fc


def guided_labels_reference(a: np.ndarray, b: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """``guided_labels``: coefficients a (h, w, L, 3) and b (h, w, L) upsampled to the
    guide's (H, W), the filtered value of every segment computed in float64, then
    ``argmax`` (first on ties). guide: (H, W, 3) uint8, read as value / 255."""
    big_h, big_w = guide.shape[:2]
    a_full = _bilinear_reference(a.astype(np.float64), big_h, big_w)
    b_full = _bilinear_reference(b.astype(np.float64), big_h, big_w)
    colours = guide.astype(np.float64) / 255
    values = np.einsum("hwlk,hwk->hwl", a_full, colours) + b_full
    return values.argmax(axis=2).astype(np.uint8), values


def fit_blocks_reference(
    basis: np.ndarray, values: np.ndarray, weights: np.ndarray, terms: int, ridge: float = 0.0, jitter: float = 0.0
) -> np.ndarray:
    """One ``np.linalg.solve`` per block, on the pixels where its first row is non-zero."""
    theta = np.zeros((values.shape[0], basis.shape[0]))
    for start in range(0, basis.shape[0], terms):
        rows = slice(start, start + terms)
        cols = np.flatnonzero(basis[start])
        if cols.size == 0:
            continue
        block = basis[rows][:, cols]
        weighted = block * weights[cols]
        gram = weighted @ block.T + jitter * np.eye(terms)
        gram[np.arange(1, terms), np.arange(1, terms)] += ridge * weighted[0].sum()
        theta[:, rows] = np.linalg.solve(gram, weighted @ values[:, cols].T).T
    return theta


def robust_fit_blocks_reference(
    basis: np.ndarray, values: np.ndarray, iterations: int, terms: int, ridge: float, jitter: float, floor: float
) -> tuple[np.ndarray, np.ndarray]:
    """Reweighted least squares with :func:`fit_blocks_reference` and a dense residual."""
    weights = np.ones(basis.shape[1])
    for _ in range(iterations):
        theta = fit_blocks_reference(basis, values, weights, terms, ridge, jitter)
        residual = np.abs(values - theta @ basis).sum(axis=0)
        weights = 1.0 / np.maximum(residual, floor)
    return theta, residual


def guided_coefficients_reference(
    mean_i: np.ndarray, mean_p: np.ndarray, box_products: np.ndarray, box_cross: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """The guided filter's coefficients with numpy: covariance, then (Σ + eps)⁻¹ by ``np.linalg.inv``
    per pixel (float64), a = Σ⁻¹ cov, b = mean_p − a · mean_i."""
    h, w, n = mean_p.shape
    pairs = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
    var = box_products - np.stack([mean_i[..., i] * mean_i[..., j] for i, j in pairs], axis=-1)
    sigma = np.empty((h, w, 3, 3))
    for k, (i, j) in enumerate(pairs):
        sigma[..., i, j] = sigma[..., j, i] = var[..., k]
    sigma += eps * np.eye(3)
    cov = box_cross.reshape(h, w, n, 3) - mean_i[:, :, None, :] * mean_p[:, :, :, None]
    a = np.einsum("hwkl,hwcl->hwck", np.linalg.inv(sigma), cov.astype(np.float64)).astype(np.float32)
    b = mean_p - (a * mean_i[:, :, None, :]).sum(axis=-1)
    return a.reshape(h, w, 3 * n), b
