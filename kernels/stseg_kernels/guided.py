"""The last step of a fast guided filter, fused: coarse coefficients upsampled, applied to
the full-size guide, and the argmax over segments taken, one pixel at a time.

Done with numpy it upsamples 4 (L + 3L) planes to full size and writes L filtered planes
before the argmax reads them back: about 30 ms a 480p frame for L = 4. Here nothing but
the label map is written, and the GIL is released so the pipeline's reader and writer
threads run beside it.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["guided_coefficients", "guided_labels"]


@njit(cache=True, nogil=True)
def _taps(n_out, n_in):
    """Bilinear source taps as OpenCV's INTER_LINEAR places them (pixel centres aligned,
    clamped at the borders): index of the first tap and the second tap's weight."""
    first = np.empty(n_out, np.int64)
    weight = np.empty(n_out, np.float32)
    scale = n_in / n_out
    for i in range(n_out):
        pos = (i + 0.5) * scale - 0.5
        lo = int(np.floor(pos))
        frac = pos - lo
        if lo < 0:
            lo, frac = 0, 0.0
        if lo >= n_in - 1:
            lo, frac = n_in - 1, 0.0
        first[i] = lo
        weight[i] = frac
    return first, weight


@njit(cache=True, nogil=True)
def _guided_labels(coef, guide, segment, zero, out):
    """coef (h, w, C, 4): per channel the three guide coefficients and the offset; guide
    (H, W, 3) uint8; segment (C,) int64, increasing: the segment channel c stands for;
    zero: the first segment with no channel, whose value is 0 everywhere (-1: none);
    out (H, W) uint8 ← the first segment with the largest sum_k A_ck · guide_k / 255 + B_c."""
    h, w, n, _ = coef.shape
    big_h, big_w = out.shape
    rows, row_w = _taps(big_h, h)
    cols, col_w = _taps(big_w, w)
    line = np.empty((w, n, 4), np.float32)
    scale = np.float32(1.0 / 255.0)
    for y in range(big_h):
        y0 = rows[y]
        y1 = min(y0 + 1, h - 1)
        wy = row_w[y]
        for x in range(w):
            for c in range(n):
                for k in range(4):
                    line[x, c, k] = coef[y0, x, c, k] + wy * (coef[y1, x, c, k] - coef[y0, x, c, k])
        for x in range(big_w):
            x0 = cols[x]
            x1 = min(x0 + 1, w - 1)
            wx = col_w[x]
            g0 = guide[y, x, 0] * scale
            g1 = guide[y, x, 1] * scale
            g2 = guide[y, x, 2] * scale
            best = np.float32(-np.inf)
            label = 0
            for c in range(n):
                a0 = line[x0, c, 0] + wx * (line[x1, c, 0] - line[x0, c, 0])
                a1 = line[x0, c, 1] + wx * (line[x1, c, 1] - line[x0, c, 1])
                a2 = line[x0, c, 2] + wx * (line[x1, c, 2] - line[x0, c, 2])
                b = line[x0, c, 3] + wx * (line[x1, c, 3] - line[x0, c, 3])
                q = a0 * g0 + a1 * g1 + a2 * g2 + b
                if q > best:
                    best = q
                    label = segment[c]
            # The empty segments' value is 0; the first of them wins where nothing is above
            # 0, or where a later segment only ties it.
            if zero >= 0 and (best < 0 or (best == 0 and zero < label)):
                label = zero
            out[y, x] = label


def guided_labels(
    a: np.ndarray, b: np.ndarray, guide: np.ndarray, segments: np.ndarray | None = None, n_segments: int | None = None
) -> np.ndarray:
    """Label map of a guided filter given its coefficients on a coarse grid.

    a: (h, w, C, 3) float32, the averaged linear coefficients per segment and guide
    channel; b: (h, w, C) float32, the averaged offsets; guide: (H, W, 3) uint8, the
    full-size colour guide (its colours are read as value / 255). The coefficients are
    upsampled bilinearly (OpenCV's INTER_LINEAR placement) to (H, W), and each pixel takes
    the first segment with the largest ``sum_k a_k · guide_k + b``. Returns (H, W) uint8.

    ``segments`` (C,) increasing and ``n_segments``: the segment each coefficient channel
    stands for, out of ``n_segments``; every other segment is empty (its probability is 0
    everywhere, so its filtered value is exactly 0) and is not computed, but takes the pixels
    it would win: the result is the one all ``n_segments`` channels would give. Default: the
    C channels are the segments 0 … C − 1.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    if a.ndim != 4 or a.shape[3] != 3 or b.shape != a.shape[:3]:
        raise ValueError(f"a must be (h, w, L, 3) and b (h, w, L), got {a.shape} and {b.shape}")
    if guide.ndim != 3 or guide.shape[2] != 3 or guide.dtype != np.uint8:
        raise ValueError(f"guide must be (H, W, 3) uint8, got {guide.dtype} {guide.shape}")
    n = a.shape[2]
    if segments is None:
        segments = np.arange(n)
        n_segments = n if n_segments is None else n_segments
    segments = np.asarray(segments)
    if segments.shape != (n,) or not (np.issubdtype(segments.dtype, np.integer) or n == 0):
        raise ValueError(f"segments must be {n} increasing indices, one per coefficient channel, got {segments.dtype} {segments.shape}")
    segments = segments.astype(np.int64)
    if n_segments is None:
        if n == 0:
            raise ValueError("n_segments is needed when no segment has coefficients")
        n_segments = int(segments[-1]) + 1
    if not 1 <= n_segments <= 256:
        raise ValueError(f"the coefficients must cover 1 to 256 segments, got {n_segments}")
    if n and (segments[0] < 0 or segments[-1] >= n_segments or np.any(np.diff(segments) <= 0)):
        raise ValueError(f"segments must be {n} increasing indices in [0, {n_segments}), got {segments.tolist()}")
    empty = np.setdiff1d(np.arange(n_segments), segments)
    coef = np.empty((*a.shape[:3], 4), np.float32)
    coef[..., :3] = a
    coef[..., 3] = b
    out = np.empty(guide.shape[:2], np.uint8)
    _guided_labels(coef, np.ascontiguousarray(guide), segments, int(empty[0]) if empty.size else -1, out)
    return out


@njit(cache=True, nogil=True)
def _coefficients(mean_i, mean_p, box_products, box_cross, eps, a, b):
    h, w, n = mean_p.shape
    for y in range(h):
        for x in range(w):
            m0 = mean_i[y, x, 0]
            m1 = mean_i[y, x, 1]
            m2 = mean_i[y, x, 2]
            # The guide's covariance in float32 (as its box means are), then its inverse in
            # float64: with a small eps and a nearly grey guide the cofactors cancel.
            s00 = np.float64(box_products[y, x, 0] - m0 * m0) + eps
            s01 = np.float64(box_products[y, x, 1] - m0 * m1)
            s02 = np.float64(box_products[y, x, 2] - m0 * m2)
            s11 = np.float64(box_products[y, x, 3] - m1 * m1) + eps
            s12 = np.float64(box_products[y, x, 4] - m1 * m2)
            s22 = np.float64(box_products[y, x, 5] - m2 * m2) + eps
            c00 = s11 * s22 - s12 * s12
            c01 = s02 * s12 - s01 * s22
            c02 = s01 * s12 - s02 * s11
            c11 = s00 * s22 - s02 * s02
            c12 = s01 * s02 - s00 * s12
            c22 = s00 * s11 - s01 * s01
            inv_det = 1.0 / (s00 * c00 + s01 * c01 + s02 * c02)
            i00, i01, i02 = c00 * inv_det, c01 * inv_det, c02 * inv_det
            i11, i12, i22 = c11 * inv_det, c12 * inv_det, c22 * inv_det
            for c in range(n):
                p = mean_p[y, x, c]
                v0 = box_cross[y, x, 3 * c] - m0 * p
                v1 = box_cross[y, x, 3 * c + 1] - m1 * p
                v2 = box_cross[y, x, 3 * c + 2] - m2 * p
                a0 = np.float32(v0 * i00 + v1 * i01 + v2 * i02)
                a1 = np.float32(v0 * i01 + v1 * i11 + v2 * i12)
                a2 = np.float32(v0 * i02 + v1 * i12 + v2 * i22)
                a[y, x, 3 * c] = a0
                a[y, x, 3 * c + 1] = a1
                a[y, x, 3 * c + 2] = a2
                b[y, x, c] = p - (a0 * m0 + a1 * m1 + a2 * m2)


def guided_coefficients(
    mean_i: np.ndarray, mean_p: np.ndarray, box_products: np.ndarray, box_cross: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """A colour-guided filter's per-pixel linear coefficients from its box means (He et al.).

    mean_i: (h, w, 3) float32, box mean of the guide; mean_p: (h, w, C) float32, of the
    source; box_products: (h, w, 6) float32, of the guide's products I0I0, I0I1, I0I2, I1I1,
    I1I2, I2I2; box_cross: (h, w, 3C) float32, of I_k · p_c (c major); eps: the
    regularisation. Returns a (h, w, 3C) float32, (Σ + eps)⁻¹ cov(I, p) per source channel,
    and b (h, w, C) float32, mean_p − a · mean_i: the coefficients before their own box mean.
    """
    h, w, n = mean_p.shape
    if mean_i.shape != (h, w, 3) or box_products.shape != (h, w, 6) or box_cross.shape != (h, w, 3 * n):
        raise ValueError(
            f"expected mean_i (h, w, 3), box_products (h, w, 6), box_cross (h, w, 3C) for mean_p {mean_p.shape}, got "
            f"{mean_i.shape}, {box_products.shape}, {box_cross.shape}"
        )
    arrays = [np.ascontiguousarray(x, dtype=np.float32) for x in (mean_i, mean_p, box_products, box_cross)]
    a = np.empty((h, w, 3 * n), np.float32)
    b = np.empty((h, w, n), np.float32)
    _coefficients(*arrays, float(eps), a, b)
    return a, b
