"""Compiled counting primitive: the joint label histogram of two frames.

These are the only places that read every pixel for linking and selection; everything
downstream works on the small tables they produce. The functions here are plain
``@njit`` helpers meant to be called from the parallel kernels in ``linking`` and
``selection`` (one frame per call, one thread per window or frame).

Arrays are 1-D views of one frame (``H * W`` pixels), uint8 or int64 (see
``_validate.work_labels``). All helpers are memory-safe for any label values: an
out-of-range label gives wrong counts, never an out-of-bounds write, and the callers
reject such inputs (from the maxima ``_remap.remap_frame`` reports) before returning.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["pair_table", "prefetch"]

# The small-label path counts codes (a << 2) | b in byte-wide counters laid out as
# _LANES lanes, so that LLVM turns each "count code c" line into one 64-byte vector
# compare + subtract. _ROWS rows of _LANES pixels are folded per step to halve the
# counter loads/stores, and counters are flushed to int64 before a byte can wrap.
_LANES = 64
_ROWS = 4  # the unrolled counting body in _hist16 is written for exactly 4
_STEPS_PER_FLUSH = 255 // _ROWS


@njit(cache=True)
def _hist16(a, b, out):
    """``out[(a << 2) | b] += 1`` for every pixel; a and b take values in 0..3.

    a, b: (P,) same length, uint8 or int64. out: (16,) int64, accumulated into.
    Values outside 0..3 are counted in some bin of 0..15 (never out of bounds).
    """
    n_pix = a.shape[0]
    step = _LANES * _ROWS
    n_steps = n_pix // step
    a3 = a[: n_steps * step].reshape(n_steps, _ROWS, _LANES)
    b3 = b[: n_steps * step].reshape(n_steps, _ROWS, _LANES)
    acc = np.zeros((16, _LANES), np.uint8)
    code = np.empty((_ROWS, _LANES), np.uint8)
    n_blocks = (n_steps + _STEPS_PER_FLUSH - 1) // _STEPS_PER_FLUSH
    for blk in range(n_blocks):
        # Indexing from ranges that start at 0 lets LLVM drop numba's negative-index
        # wraparound, which otherwise turns every load into a gather.
        first = blk * _STEPS_PER_FLUSH
        for i in range(min(n_steps - first, _STEPS_PER_FLUSH)):
            ar = a3[first + i]
            br = b3[first + i]
            for r in range(_ROWS):
                for j in range(_LANES):
                    code[r, j] = (ar[r, j] << 2) | br[r, j]
            # One line per code with constant operands keeps the compares byte-wide; the
            # four codes of a lane held in locals (not re-read from `code`) stay in
            # registers across the sixteen lines, which is worth about a third of the time.
            for j in range(_LANES):
                x0 = code[0, j]
                x1 = code[1, j]
                x2 = code[2, j]
                x3 = code[3, j]
                acc[0, j] += (x0 == 0) + (x1 == 0) + (x2 == 0) + (x3 == 0)
                acc[1, j] += (x0 == 1) + (x1 == 1) + (x2 == 1) + (x3 == 1)
                acc[2, j] += (x0 == 2) + (x1 == 2) + (x2 == 2) + (x3 == 2)
                acc[3, j] += (x0 == 3) + (x1 == 3) + (x2 == 3) + (x3 == 3)
                acc[4, j] += (x0 == 4) + (x1 == 4) + (x2 == 4) + (x3 == 4)
                acc[5, j] += (x0 == 5) + (x1 == 5) + (x2 == 5) + (x3 == 5)
                acc[6, j] += (x0 == 6) + (x1 == 6) + (x2 == 6) + (x3 == 6)
                acc[7, j] += (x0 == 7) + (x1 == 7) + (x2 == 7) + (x3 == 7)
                acc[8, j] += (x0 == 8) + (x1 == 8) + (x2 == 8) + (x3 == 8)
                acc[9, j] += (x0 == 9) + (x1 == 9) + (x2 == 9) + (x3 == 9)
                acc[10, j] += (x0 == 10) + (x1 == 10) + (x2 == 10) + (x3 == 10)
                acc[11, j] += (x0 == 11) + (x1 == 11) + (x2 == 11) + (x3 == 11)
                acc[12, j] += (x0 == 12) + (x1 == 12) + (x2 == 12) + (x3 == 12)
                acc[13, j] += (x0 == 13) + (x1 == 13) + (x2 == 13) + (x3 == 13)
                acc[14, j] += (x0 == 14) + (x1 == 14) + (x2 == 14) + (x3 == 14)
                acc[15, j] += (x0 == 15) + (x1 == 15) + (x2 == 15) + (x3 == 15)
        for c in range(16):
            total = 0
            for j in range(_LANES):
                total += acc[c, j]
            out[c] += total
        acc[:, :] = 0
    for p in range(n_steps * step, n_pix):
        out[((a[p] << 2) | b[p]) & 15] += 1


@njit(cache=True)
def _hist_scatter(a, b, n_b, out):
    """``out[a * n_b + b] += 1`` for any number of labels; out: (M,) int64, M a power of 2.

    Four interleaved sub-histograms break the store-to-load dependency that a single
    histogram hits on runs of equal codes (blocky labels are all runs).
    """
    mask = out.shape[0] - 1
    sub = np.zeros((4, out.shape[0]), np.int64)
    n_pix = a.shape[0]
    n4 = n_pix // 4
    a4 = a[: n4 * 4].reshape(n4, 4)
    b4 = b[: n4 * 4].reshape(n4, 4)
    for i in range(n4):
        ar = a4[i]
        br = b4[i]
        # The mask keeps the write in bounds whatever the label values are.
        sub[0, (np.int64(ar[0]) * n_b + np.int64(br[0])) & mask] += 1
        sub[1, (np.int64(ar[1]) * n_b + np.int64(br[1])) & mask] += 1
        sub[2, (np.int64(ar[2]) * n_b + np.int64(br[2])) & mask] += 1
        sub[3, (np.int64(ar[3]) * n_b + np.int64(br[3])) & mask] += 1
    for p in range(n4 * 4, n_pix):
        sub[0, (np.int64(a[p]) * n_b + np.int64(b[p])) & mask] += 1
    for m in range(out.shape[0]):
        out[m] += sub[0, m] + sub[1, m] + sub[2, m] + sub[3, m]


@njit(cache=True)
def pair_table(a, b, n_a, n_b, table):
    """Joint histogram of two label frames: ``table[i, j] = #{p : a[p] == i and b[p] == j}``.

    a, b: (P,) uint8 or int64, values in [0, n_a) and [0, n_b). table: (n_a, n_b) int64,
    overwritten. Pixels with a label outside those ranges are dropped or miscounted, never
    written out of bounds.
    """
    if n_a <= 4 and n_b <= 4:
        h = np.zeros(16, np.int64)
        _hist16(a, b, h)
        for i in range(n_a):
            for j in range(n_b):
                table[i, j] = h[i * 4 + j]
    else:
        size = 1
        while size < n_a * n_b:
            size *= 2
        h = np.zeros(size, np.int64)
        _hist_scatter(a, b, n_b, h)
        for i in range(n_a):
            for j in range(n_b):
                table[i, j] = h[i * n_b + j]


@njit(cache=True)
def prefetch(x):
    """Read every byte of ``x`` (any contiguous array) and return its largest value.

    A plain streaming read runs at full memory bandwidth, whereas the counting loops,
    busy with their arithmetic, leave the memory system idle much of the time. Reading a
    window just before counting it, so that the counting runs from cache, makes linking
    about a quarter faster. The caller must keep the result (e.g. in a scratch array) or
    the compiler drops the reads.
    """
    flat = x.ravel()
    top = np.zeros(1, flat.dtype)[0]  # a zero of the input dtype keeps the max byte-wide
    for p in range(flat.shape[0]):
        top = max(top, flat[p])
    return top
