"""Hypothesis strategies for label volumes shaped like real predictions and like worst cases.

Sizes and styles are drawn by hypothesis; the pixel content comes from a numpy generator
seeded by hypothesis, which keeps generation fast while staying reproducible.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

DTYPES = (np.uint8, np.int32, np.int64)
# random: i.i.d. pixels; blocky: coarse blocks (many exact IoU ties); constant: one label
# per frame (ties everywhere); sparse: only a few of the labels occur at all; video:
# consistent frames with every window's labels shuffled, as a network would output.
STYLES = ("random", "blocky", "constant", "sparse", "video")


def _frames(rng: np.random.Generator, style: str, n: int, h: int, w: int, n_labels: int) -> np.ndarray:
    """(n, h, w) int64 labels in [0, n_labels) of the given style."""
    if style == "random":
        return rng.integers(0, n_labels, (n, h, w))
    if style == "blocky":
        bh, bw = rng.integers(1, 5, 2)
        coarse = rng.integers(0, n_labels, (n, -(-h // bh), -(-w // bw)))
        return coarse.repeat(bh, 1).repeat(bw, 2)[:, :h, :w]
    if style == "constant":
        return np.broadcast_to(rng.integers(0, n_labels, (n, 1, 1)), (n, h, w)).copy()
    if style == "sparse":
        used = rng.choice(n_labels, size=rng.integers(1, min(3, n_labels) + 1), replace=False)
        return used[rng.integers(0, len(used), (n, h, w))]
    raise ValueError(style)


@st.composite
def window_cases(draw, max_windows: int = 8, max_side: int = 12, labels=(2, 8)):
    """(window_labels (N, 3, H, W), n_labels, cut_size)."""
    n_labels = draw(st.integers(*labels))
    n_win = draw(st.integers(1, max_windows))
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    style = draw(st.sampled_from(STYLES))
    dtype = draw(st.sampled_from(DTYPES))
    cut = draw(st.one_of(st.none(), st.integers(1, n_win + 1)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if style == "video":
        base = _frames(rng, draw(st.sampled_from(("blocky", "random"))), n_win + 2, h, w, n_labels)
        windows = np.stack([base[:-2], base[1:-1], base[2:]], axis=1)
        perms = np.stack([rng.permutation(n_labels) for _ in range(n_win)])
        windows = perms[np.arange(n_win)[:, None, None, None], windows]
    else:
        windows = _frames(rng, style, n_win * 3, h, w, n_labels).reshape(n_win, 3, h, w)
    return windows.astype(dtype), n_labels, cut


@st.composite
def selection_cases(draw, max_frames: int = 12, max_side: int = 12, labels=(2, 8)):
    """(frame_labels (F, H, W), gt (F, H, W) bool or 0/1 ints, has_gt (F,), n_labels, cut_size)."""
    n_labels = draw(st.integers(*labels))
    n_frames = draw(st.integers(1, max_frames))
    h = draw(st.integers(1, max_side))
    w = draw(st.integers(1, max_side))
    style = draw(st.sampled_from(STYLES[:4]))
    dtype = draw(st.sampled_from(DTYPES))
    cut = draw(st.one_of(st.none(), st.integers(1, n_frames + 1)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    labels_ = _frames(rng, style, n_frames, h, w, n_labels).astype(dtype)
    gt_style = draw(st.sampled_from(("labels", "random", "empty", "full")))
    if gt_style == "labels":  # the union of some labels, so a perfect selection exists
        gt = np.isin(labels_, rng.choice(n_labels, size=rng.integers(1, n_labels + 1), replace=False))
    elif gt_style == "random":
        gt = rng.random((n_frames, h, w)) < rng.uniform(0.1, 0.9)
    elif gt_style == "empty":
        gt = np.zeros((n_frames, h, w), bool)
    else:
        gt = np.ones((n_frames, h, w), bool)
    if draw(st.booleans()):
        gt = gt.astype(np.uint8)
    has_style = draw(st.sampled_from(("all", "some", "none")))
    if has_style == "all":
        has_gt = np.ones(n_frames, bool)
    elif has_style == "none":
        has_gt = np.zeros(n_frames, bool)
    else:
        has_gt = rng.random(n_frames) < 0.6
    return labels_, gt, has_gt, n_labels, cut
