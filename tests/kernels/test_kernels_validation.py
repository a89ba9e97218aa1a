"""Bad inputs fail early with a message that says what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from stseg_kernels import frame_chunks, jaccard, link_windows, select_labels, select_masks, unravel_windows

W = np.zeros((2, 3, 4, 5), np.uint8)  # valid windows
F = np.zeros((4, 4, 5), np.uint8)  # valid frames
G = np.zeros((4, 4, 5), bool)
HAS = np.ones(4, bool)


def _with(arr, index, value, dtype=None):
    out = arr.astype(dtype or arr.dtype, copy=True)
    out[index] = value
    return out


CASES = [
    # linking
    (link_windows, (W.astype(float), 4), TypeError, "window_labels must have an integer dtype, got float64"),
    (link_windows, (W.astype(bool), 4), TypeError, "integer dtype, got bool"),
    (link_windows, (W[0], 4), ValueError, r"window_labels must have shape \(N, 3, H, W\), got 3-D"),
    (link_windows, (np.zeros((2, 2, 4, 5), np.uint8), 4), ValueError, r"shape \(N, 3, H, W\), got shape \(2, 2, 4, 5\)"),
    (link_windows, (W[:0], 4), ValueError, "at least one window"),
    (link_windows, (_with(W, (1, 2, 3, 4), 4), 4), ValueError, r"holds label 4, outside the valid range \[0, 4\)"),
    (link_windows, (_with(W, (0, 0, 0, 0), 200), 4), ValueError, "holds label 200"),
    (link_windows, (_with(W, (1, 1, 0, 0), 9), 8), ValueError, "holds label 9"),  # scatter path
    (link_windows, (_with(W, (1, 1, 0, 0), 99), 20), ValueError, "holds label 99"),  # lookup path
    (link_windows, (_with(W, (0, 1, 2, 3), -1, np.int32), 4), ValueError, "holds label -1"),
    (link_windows, (_with(W, (0, 1, 2, 3), 7, np.int64), 4), ValueError, "holds label 7"),
    (link_windows, (W, 0), ValueError, "n_labels must be >= 1, got 0"),
    (link_windows, (W, 300), ValueError, r"n_labels = 300 does not fit window_labels' dtype uint8 \(largest value 255\)"),
    (link_windows, (W.astype(np.int8), 129), ValueError, "does not fit window_labels' dtype int8"),
    (link_windows, (W, 2.5), TypeError, "n_labels must be an integer"),
    (link_windows, (W, True), TypeError, "n_labels must be an integer"),
    (link_windows, (W, 4, 0), ValueError, "cut_size must be >= 1 or None, got 0"),
    (link_windows, (W, 4, 1.5), TypeError, "cut_size must be None or an integer"),
    (link_windows, (W, 4, None, "hungarian"), ValueError, r"method must be one of \('naive', 'optimal'\), got 'hungarian'"),
    # unravelling
    (unravel_windows, (W[:0],), ValueError, "at least one window"),
    (unravel_windows, (np.zeros((2, 4, 3)),), ValueError, r"shape \(N, 3, \.\.\.\)"),
    # selection
    (select_masks, (F.astype(np.float32), G, HAS, 4), TypeError, "frame_labels must have an integer dtype"),
    (select_masks, (F[0], G[0], HAS, 4), ValueError, r"frame_labels must have shape \(F, H, W\)"),
    (select_masks, (F[:0], G[:0], HAS[:0], 4), ValueError, "at least one frame"),
    (select_masks, (F, G[:, :3], HAS, 4), ValueError, "gt must have the shape of frame_labels"),
    (select_masks, (F, G.astype(float), HAS, 4), TypeError, "gt must be a bool or integer mask"),
    (select_masks, (F, G, HAS[:3], 4), ValueError, r"has_gt must have shape \(F,\) = \(4,\)"),
    (select_masks, (F, G, HAS.astype(float), 4), TypeError, "has_gt must be a bool array"),
    (select_masks, (_with(F, (3, 3, 4), 4), G, HAS, 4), ValueError, "frame_labels holds label 4"),
    (select_masks, (_with(F, (3, 3, 4), 4), G, ~HAS, 4), ValueError, "frame_labels holds label 4"),
    (select_masks, (_with(F, (1, 0, 0), -3, np.int16), G, HAS, 4), ValueError, "holds label -3"),
    (select_masks, (F, G, HAS, 4, 0), ValueError, "cut_size must be >= 1"),
    (select_masks, (F, G, HAS, -1), ValueError, "n_labels must be >= 1"),
    (select_labels, (_with(F, (0, 0, 0), 5), G, HAS, 4), ValueError, "holds label 5"),
    (frame_chunks, (10, 0), ValueError, "cut_size must be >= 1"),
    (frame_chunks, (-1, None), ValueError, "n_frames must be >= 0"),
    # scores
    (jaccard, (G, G[:2]), ValueError, "gt and pred must have the same shape"),
    (jaccard, (G[0, 0], G[0, 0]), ValueError, r"shape \(F, H, W\) or \(H, W\)"),
    (jaccard, (G.astype(float), G), TypeError, "gt must be a bool or integer mask"),
]


@pytest.mark.parametrize(("fn", "args", "exc", "message"), CASES, ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_bad_input_raises(fn, args, exc, message):
    with pytest.raises(exc, match=message):
        fn(*args)
