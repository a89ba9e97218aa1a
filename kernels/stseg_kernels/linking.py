"""Temporal linking of per-window labels, and unravelling windows into frames.

Window w covers frames w, w+1, w+2, so windows w-1 and w share two frames (frames 1, 2
of window w-1 are frames 0, 1 of window w), and windows w-2 and w one (frame 2 of window
w-2 is frame 0 of window w). Linking renames each window's labels to agree with the already
renamed earlier windows of its chunk that share a frame with it: the previous one
(``span=1``), or both (``span=2``; see :func:`link_windows`).

Shape of the computation: one pass over the pixels builds, for every window, the joint
label histogram of each shared frame with the previous window's *original* labels.
Renaming the previous window by a mapping only merges rows of that table, so the
sequential chaining runs on the tiny (L, L) tables and never re-reads pixels. A second
pass applies the final mappings. With many chunks, each chunk is one parallel task doing
all three steps (the second pass then reads from cache); otherwise the two pixel passes
are each parallel over windows.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numba
import numpy as np
from numba import njit, prange

from ._counting import pair_table, prefetch
from ._hungarian import assign_max
from ._remap import label_values, remap_frame
from ._validate import (
    check_cut_size,
    check_n_labels,
    check_shape,
    label_array,
    raise_label_range,
    work_labels,
)

__all__ = ["link_windows", "unravel_windows", "is_chunk_start", "LINK_METHODS", "LINK_SPANS", "DEFAULT_CUT_SIZE"]

#: Accepted values of ``link_windows(method=...)``.
LINK_METHODS = ("naive", "optimal")
#: Accepted values of ``link_windows(span=...)``: how many earlier windows (those sharing a
#: frame with it) each window is linked to.
LINK_SPANS = (1, 2)
#: Windows per independently linked chunk, the default of every command that links or
#: selects by chunk (the original's ``-cs 10``).
DEFAULT_CUT_SIZE = 10

# Iterations handed to a thread at a time in the parallel loops. Dynamic hand-out rather
# than one static slice per thread: on a shared machine a thread that loses its core then
# delays the barrier by one small piece of work, not by half of the job.
_WINDOWS_PER_TASK = 4
# Link chunk by chunk (one task per chunk) when there are at least this many chunks per
# thread; with fewer, a thread could be left idle while another works through a chunk.
_MIN_TASKS_PER_THREAD = 4


@njit(cache=True)
def _count_window(labels, n_labels, w, counts, second):
    """counts[w, s] = joint histogram of frame s+1 of window w-1 and frame s of window w
    (s = 0, 1); with ``second[w]``, counts[w, 2] = that of frame 2 of window w-2 and frame 0
    of window w."""
    for s in range(2):
        pair_table(labels[w - 1, s + 1], labels[w, s], n_labels, n_labels, counts[w, s])
    if second[w]:
        pair_table(labels[w - 2, 2], labels[w, 0], n_labels, n_labels, counts[w, 2])


@njit(cache=True)
def _remap_window(labels, w, maps, luts, vals, out, top):
    """Relabel window w through maps[w] (luts[w] is scratch of the label dtype); top[w, t]
    receives the largest original label of frame t."""
    for k in range(maps.shape[1]):
        luts[w, k] = maps[w, k]  # mapped labels are < L, which fits the dtype (checked)
    for t in range(3):
        top[w, t] = remap_frame(labels[w, t], vals, luts[w], out[w, t])


@njit(cache=True)
def _iou(inter, size_a, size_b):
    """IoU from pixel counts (int64), 1.0 for two empty sets; float64."""
    union = size_a + size_b - inter
    if union == 0:
        return 1.0
    return inter / union


@njit(cache=True)
def _chain_mappings(counts, linked, second, optimal, maps, first, stop):
    """Chained renamings for windows first..stop-1 from the tables of :func:`_count_window`.

    maps: (N, L) int64; rows first..stop-1 are written (rows first-2 and first-1 must be
    final when window first is linked): the new label of original label l in window w is
    maps[w, l]. Window w's score for (k, l) is the sum over the two frames it shares with
    window w-1 of IoU(label k of the renamed window w-1, label l of window w), plus, with
    ``second[w]``, the same IoU on the frame it shares with the renamed window w-2; a renamed
    table is the original one with rows a merged into row maps[w-1, a] (maps[w-2, a]).
    """
    n_labels = counts.shape[2]
    merged = np.zeros((3, n_labels, n_labels), np.int64)
    size_prev = np.empty((3, n_labels), np.int64)
    size_cur = np.empty((3, n_labels), np.int64)
    score = np.empty((n_labels, n_labels))
    for w in range(first, stop):
        if not linked[w]:
            for lab in range(n_labels):
                maps[w, lab] = lab
            continue
        n_tables = 3 if second[w] else 2
        merged[:n_tables, :, :] = 0
        for s in range(n_tables):
            back = 2 if s == 2 else 1
            for a in range(n_labels):
                k = maps[w - back, a]
                for lab in range(n_labels):
                    merged[s, k, lab] += counts[w, s, a, lab]
        size_prev[:, :] = 0
        size_cur[:, :] = 0
        for s in range(n_tables):
            for k in range(n_labels):
                for lab in range(n_labels):
                    size_prev[s, k] += merged[s, k, lab]
                    size_cur[s, lab] += merged[s, k, lab]
        for k in range(n_labels):
            for lab in range(n_labels):
                # Frame 0, frame 1, then window w-2's frame: the same float additions as
                # the reference, so the scores (and their ties) are bit-identical.
                score[k, lab] = _iou(merged[0, k, lab], size_prev[0, k], size_cur[0, lab]) + _iou(
                    merged[1, k, lab], size_prev[1, k], size_cur[1, lab]
                )
                if second[w]:
                    score[k, lab] += _iou(merged[2, k, lab], size_prev[2, k], size_cur[2, lab])
        if optimal:
            maps[w] = assign_max(score.T.copy())
        else:
            for lab in range(n_labels):
                best_k = 0
                best = score[0, lab]
                for k in range(1, n_labels):
                    if score[k, lab] > best:  # strict: the first k wins ties
                        best = score[k, lab]
                        best_k = k
                maps[w, lab] = best_k


@njit(cache=True, parallel=True)
def _link_by_chunk(labels, bounds, linked, second, optimal, counts, maps, luts, vals, out, top, sink):
    """Link with one task per chunk: count, chain and relabel a chunk in one go, so the
    relabelling re-reads the chunk from the core's cache rather than from memory.

    labels, out: (N, 3, P). bounds: (G + 1,) int64 chunk boundaries. linked, second: (N,)
    bool (:func:`_chain_mappings`). counts (N, 3, L, L) int64 zeros, maps (N, L) int64, luts (N, L) label dtype, sink (N,)
    int64: scratch whose writes keep the prefetch reads from being optimised away. vals: label_values(L, dtype). top: (N, 3) int64, the per-frame label
    maxima.
    """
    n_labels = maps.shape[1]
    for g in prange(bounds.shape[0] - 1):
        first = bounds[g]
        stop = bounds[g + 1]
        sink[first] = prefetch(labels[first])
        for w in range(first, stop):
            if w + 1 < stop:
                sink[w + 1] = prefetch(labels[w + 1])  # one window ahead of the counting
            if linked[w]:
                _count_window(labels, n_labels, w, counts, second)
        _chain_mappings(counts, linked, second, optimal, maps, first, stop)
        for w in range(first, stop):
            _remap_window(labels, w, maps, luts, vals, out, top)


@njit(cache=True, parallel=True)
def _count_all(labels, linked, second, counts, sink):
    """counts for every linked window, in parallel over windows. sink: (N,) scratch whose
    writes keep the prefetch reads from being optimised away."""
    n_labels = counts.shape[2]
    for w in prange(labels.shape[0]):
        if linked[w]:
            sink[w] = prefetch(labels[w])
            _count_window(labels, n_labels, w, counts, second)


@njit(cache=True, parallel=True)
def _remap_all(labels, maps, luts, vals, out, top):
    """Relabel every window, in parallel over windows."""
    for w in prange(labels.shape[0]):
        _remap_window(labels, w, maps, luts, vals, out, top)


def _chunk_starts(n_windows: int, cut_size: int | None, start: int = 0) -> np.ndarray:
    """(N,) bool, True for the first window of each chunk of ``cut_size`` windows, for
    windows numbered from ``start`` in their sequence; the first of them is always True
    (with nothing before it to link to, it keeps its labels)."""
    idx = start + np.arange(n_windows)
    starts = idx == 0 if cut_size is None else idx % cut_size == 0
    starts[:1] = True
    return starts


def is_chunk_start(window: int, cut_size: int | None) -> bool:
    """Whether window ``window`` (its index in the sequence) begins a chunk."""
    return window == 0 if cut_size is None else window % cut_size == 0


def link_windows(
    window_labels: np.ndarray,
    n_labels: int,
    cut_size: int | None = None,
    method: str = "naive",
    *,
    span: int = 1,
    out: np.ndarray | None = None,
    return_mapping: bool = False,
    start: int = 0,
    carry: np.ndarray | None = None,
    threads: int | None = None,
) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Rename each window's labels to agree with the earlier windows it shares frames with.

    Parameters
    ----------
    window_labels
        (N, 3, H, W) integer labels in [0, n_labels) of N consecutive 3-frame windows;
        window w covers frames w, w+1, w+2. Any integer dtype; N >= 1.
    n_labels
        Number of labels L (>= 1).
    cut_size
        Link in independent chunks of ``cut_size`` windows (windows 0..c-1, c..2c-1, ...);
        the first window of each chunk keeps its labels. None: one chunk.
    method
        How window w is renamed from its score matrix, where score(k, l) is the sum over
        the frames it shares with the renamed earlier windows (below) of IoU(k, l) (IoU of
        two empty sets = 1). ``"naive"``: label l takes the label k with the largest score,
        first k on ties; several labels may merge into one. ``"optimal"``: a one-to-one
        renaming (a permutation of 0..L-1) maximising the total score, found exactly with
        the Hungarian method; ties between optimal permutations are broken arbitrarily.
    span
        The earlier windows scored against: 1, window w-1 (its two frames shared with w,
        the original's linking); 2, also window w-2 where it is in the same chunk (its last
        frame is window w's first), so that one window whose labels went astray cannot
        carry the error on alone.
    out
        Optional C-contiguous, writeable (N, 3, H, W) array of the input dtype to write the
        result into; it may be ``window_labels`` itself (in-place linking). Saves the
        allocation, which for large inputs is a sizeable share of the time. If an error
        is raised after the checks, its content is unspecified.
    return_mapping
        Also return the renamings, so callers can carry per-label data (probabilities)
        along with the labels.
    start, carry
        For a sequence linked piece by piece (a stream): ``start`` is the index in the
        sequence of the first window given, which places the chunk boundaries, and
        ``carry`` the already renamed windows just before it, (3, H, W) for window
        ``start - 1`` or (K, 3, H, W) for the last K windows, oldest first; the first window
        is linked to them unless it begins a chunk, and span 2 needs two of them unless
        window ``start - 1`` begins a chunk. Pieces linked in order this way, each carrying
        the last renamed windows of the ones before, give exactly the labels and mappings of
        one call on the whole sequence. Without ``carry`` the first window keeps its labels.
    threads
        Numba threads for this call (None: numba's setting, all cores by default). A
        streaming caller whose own threads already keep the cores busy reading and writing
        passes 1: on a small batch of windows, numba's pool only fights them.

    Returns
    -------
    (N, 3, H, W) array of the input dtype (``out`` when given): pixel labels
    ``mapping_w[old label]``. With ``return_mapping``, a tuple ``(labels, mapping)`` with
    mapping (N, n_labels) int64: the new label of old label l in window w is
    ``mapping[w, l]`` (the identity on each chunk's first window).

    Raises
    ------
    TypeError
        Non-integer labels, n_labels or cut_size.
    ValueError
        Wrong shape, N == 0, a label outside [0, n_labels), n_labels < 1 or too large for
        the dtype, cut_size < 1, unknown method or span, too few carried windows,
        unsuitable ``out``.
    """
    if threads is not None:
        with numba_threads(threads):
            return link_windows(
                window_labels, n_labels, cut_size, method, span=span, out=out, return_mapping=return_mapping,
                start=start, carry=carry,
            )
    if isinstance(span, bool) or span not in LINK_SPANS:
        raise ValueError(f"span must be one of {LINK_SPANS}, got {span!r}")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"start must be an integer >= 0, got {start!r}")
    arr = label_array(window_labels, "window_labels")
    check_shape(arr, "window_labels", (None, 3, None, None), "(N, 3, H, W)")
    if carry is None:
        return _link(arr, n_labels, cut_size, method, span, out, return_mapping, int(start), 0)
    if start < 1:
        raise ValueError("a carry is the window before the first one given: start must be >= 1")
    carry = label_array(carry, "carry")
    if carry.ndim == 3:
        carry = carry[None]
    if carry.shape[1:] != arr.shape[1:] or carry.shape[0] < 1:
        raise ValueError(
            f"carry must have shape {arr.shape[1:]} (one window) or (K, {', '.join(map(str, arr.shape[1:]))}) "
            f"(the last K windows), got {carry.shape}"
        )
    cut = check_cut_size(cut_size)
    if is_chunk_start(int(start), cut):
        return _link(arr, n_labels, cut_size, method, span, out, return_mapping, int(start), 0)
    if out is not None:
        _check_out(out, arr)
    # Window start-2 counts only when window start-1 does not begin a chunk (window 0 always does).
    needed = 2 if span == 2 and not is_chunk_start(int(start) - 1, cut) else 1
    if carry.shape[0] < needed:
        raise ValueError(
            f"span {span} links window {start} to the {needed} renamed windows before it: "
            f"carry must hold at least {needed}, got {carry.shape[0]}"
        )
    carry = carry[carry.shape[0] - needed :]
    both = np.concatenate([carry.astype(arr.dtype, copy=False), arr])
    labels, maps = _link(both, n_labels, cut_size, method, span, None, True, int(start) - needed, needed)
    labels, maps = labels[needed:], maps[needed:]
    if out is not None:
        out[...] = labels
        labels = out
    return (labels, maps) if return_mapping else labels


def _link(arr, n_labels, cut_size, method, span, out, return_mapping, start, n_fixed):
    """link_windows of the checked (N, 3, H, W) ``arr`` whose first window is window
    ``start`` of its sequence; its first ``n_fixed`` windows are already renamed (a
    stream's carry): they keep their labels and are only scored against."""
    n_labels = check_n_labels(n_labels)
    cut_size = check_cut_size(cut_size)
    if method not in LINK_METHODS:
        raise ValueError(f"method must be one of {LINK_METHODS}, got {method!r}")
    n_win, _, height, width = arr.shape
    if n_win == 0:
        raise ValueError("window_labels must hold at least one window (N >= 1), got N = 0")
    if n_labels - 1 > np.iinfo(arr.dtype).max:
        # Renamed labels go back into the input dtype, so every label must fit it.
        raise ValueError(
            f"n_labels = {n_labels} does not fit window_labels' dtype {arr.dtype} "
            f"(largest value {np.iinfo(arr.dtype).max})"
        )
    if out is not None:
        _check_out(out, arr)
    work, unchecked = work_labels(arr, "window_labels", n_labels)
    flat = work.reshape(n_win, 3, height * width)

    starts = _chunk_starts(n_win, cut_size, start)
    # Window w is scored against window w-2 when neither w nor w-1 begins a chunk.
    second = np.zeros(n_win, bool)
    if span >= 2 and n_win > 2:
        second[2:] = ~starts[2:] & ~starts[1:-1]
    linked = ~starts
    linked[:n_fixed] = False
    counts = np.zeros((n_win, 3 if span >= 2 else 2, n_labels, n_labels), np.int64)
    maps = np.empty((n_win, n_labels), np.int64)
    luts = np.empty((n_win, n_labels), work.dtype)
    vals = label_values(n_labels, work.dtype)
    top = np.zeros((n_win, 3), np.int64)
    sink = np.zeros(n_win, np.int64)
    dest = out if out is not None and out.dtype == work.dtype else np.empty_like(work)
    out_flat = dest.reshape(flat.shape)
    optimal = method == "optimal"
    bounds = np.append(np.flatnonzero(starts), n_win).astype(np.int64)
    if len(bounds) - 1 >= _MIN_TASKS_PER_THREAD * numba.get_num_threads():
        with numba.parallel_chunksize(1):
            _link_by_chunk(flat, bounds, linked, second, optimal, counts, maps, luts, vals, out_flat, top, sink)
    else:
        # Too few chunks to keep the threads busy: parallelise the two pixel passes over
        # windows and chain everything in between.
        with numba.parallel_chunksize(_WINDOWS_PER_TASK):
            _count_all(flat, linked, second, counts, sink)
        _chain_mappings(counts, linked, second, optimal, maps, 0, n_win)
        with numba.parallel_chunksize(_WINDOWS_PER_TASK):
            _remap_all(flat, maps, luts, vals, out_flat, top)
    if unchecked and top.max() >= n_labels:
        raise_label_range("window_labels", top.max(), n_labels)
    if out is None:
        result = dest if dest.dtype == arr.dtype else dest.astype(arr.dtype)
    else:
        if dest is not out:
            out[...] = dest
        result = out
    return (result, maps) if return_mapping else result


@contextlib.contextmanager
def numba_threads(threads: int) -> Iterator[None]:
    """Numba's thread count set to ``threads`` (at least 1, at most its pool) for this
    thread, then restored."""
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or threads < 1:
        raise ValueError(f"threads must be an integer >= 1 or None, got {threads!r}")
    before = numba.get_num_threads()
    numba.set_num_threads(min(int(threads), numba.config.NUMBA_NUM_THREADS))
    try:
        yield
    finally:
        numba.set_num_threads(before)


def _check_out(out: object, arr: np.ndarray) -> None:
    """Raise unless ``out`` can receive the linking of ``arr``."""
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != arr.shape or out.dtype != arr.dtype:
        raise ValueError(
            f"out must have the shape and dtype of window_labels ({arr.shape}, {arr.dtype}), "
            f"got ({out.shape}, {out.dtype})"
        )
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be C-contiguous and writeable")
    same = (
        out.__array_interface__["data"][0] == arr.__array_interface__["data"][0] and out.strides == arr.strides
    )
    if not same and np.may_share_memory(out, arr):
        raise ValueError("out may overlap window_labels only by being the same array (in-place)")


def unravel_windows(window_labels: np.ndarray) -> np.ndarray:
    """One value per frame from N consecutive 3-frame windows.

    Frame 0 is window 0's frame 0, frame i (1..N) is window i-1's middle frame, frame N+1
    is window N-1's frame 2.

    window_labels: (N, 3, ...) any dtype (labels, but probabilities work too), N >= 1.
    Returns (N + 2, ...) of the same dtype.
    """
    arr = np.asarray(window_labels)
    if arr.ndim < 2 or arr.shape[1] != 3:
        raise ValueError(f"window_labels must have shape (N, 3, ...), got shape {arr.shape}")
    n_win = arr.shape[0]
    if n_win == 0:
        raise ValueError("window_labels must hold at least one window (N >= 1), got N = 0")
    out = np.empty((n_win + 2,) + arr.shape[2:], dtype=arr.dtype)
    out[0] = arr[0, 0]
    out[1 : n_win + 1] = arr[:, 1]
    out[n_win + 1] = arr[n_win - 1, 2]
    return out
