"""Compiled relabelling: ``dst[f, p] = luts[lut_of_frame[f], src[f, p]]``, in parallel over frames.

Used to rename window labels after linking and to paint the selected labels as a binary
foreground. A plain table lookup is a scalar gather per pixel; for the small label counts
of this project a chain of byte-wide compare/selects vectorises instead and runs at close
to copy speed, so lookups are only used for many labels.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = ["remap_frame", "remap_frames", "label_values"]

# Up to this many labels, relabel with one vectorised select pass per label.
_MAX_SELECT_LABELS = 16


def label_values(n_labels: int, dtype: np.dtype) -> np.ndarray:
    """The label values :func:`remap_frame` compares against, in the labels' dtype (which
    keeps the compares narrow): ``arange(k)`` with k = n_labels clipped to [4, 17]."""
    return np.arange(min(max(n_labels, 4), _MAX_SELECT_LABELS + 1)).astype(dtype)


@njit(cache=True)
def remap_frame(src, vals, lut, dst):
    """dst[p] = lut[src[p]] for one frame, and the largest label seen (int64).

    src values must be >= 0; values >= len(lut) are not translated (dst is then
    meaningless) but reported through the returned maximum, never read out of bounds.
    Computing the maximum here, while the pixels stream through anyway, is what lets
    uint8 inputs skip a separate validation pass.
    """
    n_labels = lut.shape[0]
    n_pix = src.shape[0]
    top = vals[0]  # zero in the dtype of src, so the max reduction stays byte-wide
    identity = True
    for k in range(n_labels):
        if lut[k] != k:
            identity = False
    if identity:
        for p in range(n_pix):
            x = src[p]
            dst[p] = x
            top = max(top, x)
    elif n_labels <= 4:
        # One pass: labels past n_labels do not occur in valid input, so padding the
        # table with lut[0] never changes a valid pixel.
        m0 = lut[0]
        m1 = lut[1] if n_labels > 1 else m0
        m2 = lut[2] if n_labels > 2 else m0
        m3 = lut[3] if n_labels > 3 else m0
        v1 = vals[1]
        v2 = vals[2]
        v3 = vals[3]
        for p in range(n_pix):
            x = src[p]
            r = m1 if x == v1 else m0
            r = m2 if x == v2 else r
            r = m3 if x == v3 else r
            dst[p] = r
            top = max(top, x)
    elif n_labels <= _MAX_SELECT_LABELS:
        m0 = lut[0]
        for p in range(n_pix):
            x = src[p]
            dst[p] = m0
            top = max(top, x)
        for k in range(1, n_labels):
            mk = lut[k]
            vk = vals[k]
            for p in range(n_pix):
                dst[p] = mk if src[p] == vk else dst[p]
    else:
        for p in range(n_pix):
            top = max(top, src[p])
        if top < n_labels:
            for p in range(n_pix):
                dst[p] = lut[src[p]]
    return np.int64(top)


@njit(cache=True, parallel=True)
def remap_frames(src, vals, luts, lut_of_frame, dst):
    """Relabel every frame through its own lookup table; return each frame's largest label.

    src: (F, P) uint8 or int64 labels, >= 0. vals: label_values(L, src.dtype).
    luts: (G, L) output values, dtype of dst. lut_of_frame: (F,) int64 in [0, G).
    dst: (F, P), written. Returns (F,) int64 maxima of src: if one is >= L, that
    frame's dst is unspecified and the caller must reject the input.
    """
    top = np.zeros(src.shape[0], np.int64)
    for f in prange(src.shape[0]):
        top[f] = remap_frame(src[f], vals, luts[lut_of_frame[f]], dst[f])
    return top
