"""Time the compiled linking and mask selection against the slow numpy references.

``python -m stseg_kernels.bench`` (``make bench``); ``stseg-bench`` times the same kernels on
the same synthetic windows through :func:`kernel_seconds`.

Labels are synthetic but shaped like real predictions: a few rectangles moving over a
background, with every window's labels shuffled by its own random permutation (as
independent network windows are), so the linking has real renaming to do. Selection runs
on the unravelled linked frames with a moving-object ground truth on every frame.

Kernel times exclude numba compilation (one warm-up call first) and are the median of
--repeats runs on all --windows windows. Linking is timed twice: returning a new array
(as the reference does), and writing into a reused buffer (``out=``), which skips the
page faults of a fresh output array (86 MB at the defaults). The references are hundreds of times slower, so
they run on the first --ref-windows windows only and are reported per window (per frame
for selection), which is a fair comparison: both scale linearly in the number of windows.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable

import numba
import numpy as np

from .linking import DEFAULT_CUT_SIZE, link_windows, unravel_windows
from .reference import link_windows_reference, select_masks_reference
from .selection import select_masks


def synthetic_windows(n_windows: int, height: int, width: int, n_labels: int, seed: int = 0):
    """(N, 3, H, W) uint8 window labels and (N + 2, H, W) bool ground truth.

    Frame labels: a few rectangles with constant velocities over label 0; rectangle 0 is
    the ground-truth object. Windows are cut from the frames, then each window's labels
    are shuffled.
    """
    rng = np.random.default_rng(seed)
    n_frames = n_windows + 2
    n_rect = 5
    size = rng.uniform(0.15, 0.45, (n_rect, 2)) * (height, width)
    start = rng.uniform(0, 1, (n_rect, 2)) * (height, width)
    velocity = rng.normal(0, 1.5, (n_rect, 2))
    rect_label = np.concatenate([[1], rng.integers(1, n_labels, n_rect - 1)]) if n_labels > 1 else np.zeros(n_rect, int)
    frames = np.zeros((n_frames, height, width), np.uint8)
    gt = np.zeros((n_frames, height, width), bool)
    for f in range(n_frames):
        for r in range(n_rect):
            y, x = (start[r] + velocity[r] * f) % (height, width)
            y0, x0 = int(y), int(x)
            y1, x1 = y0 + int(size[r, 0]), x0 + int(size[r, 1])
            frames[f, y0:y1, x0:x1] = rect_label[r]
            if r == 0:
                gt[f, y0:y1, x0:x1] = True
    windows = np.stack([frames[:-2], frames[1:-1], frames[2:]], axis=1)
    perms = np.stack([rng.permutation(n_labels) for _ in range(n_windows)]).astype(np.uint8)
    windows = perms[np.arange(n_windows)[:, None, None, None], windows]
    return np.ascontiguousarray(windows), gt


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` runs."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def kernel_seconds(
    n_windows: int, size: tuple[int, int], n_labels: int, cut_size: int | None, repeats: int,
    method: str = "naive", span: int = 1,
) -> dict[str, float]:
    """Median seconds of one ``link_windows`` call (``method``, ``span``) and one
    ``select_masks`` call on :func:`synthetic_windows` (compiled first, outside the timing):
    ``{"link_windows": s, "select_masks": s}`` for ``n_windows`` windows and their frames."""
    windows, gt = synthetic_windows(n_windows, size[0], size[1], n_labels)
    has_gt = np.ones(len(gt), bool)
    frames = unravel_windows(link_windows(windows, n_labels, cut_size, method, span=span))
    select_masks(frames, gt, has_gt, n_labels, cut_size)
    return {
        "link_windows": median_time(lambda: link_windows(windows, n_labels, cut_size, method, span=span), repeats),
        "select_masks": median_time(lambda: select_masks(frames, gt, has_gt, n_labels, cut_size), repeats),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--windows", type=int, default=1000, help="number of 3-frame windows")
    parser.add_argument("--size", default="128x224", help="frame size HxW")
    parser.add_argument("--labels", type=int, default=4, help="number of labels L")
    parser.add_argument("--cut-size", type=int, default=DEFAULT_CUT_SIZE, help="linking/selection chunk size (0: no cut)")
    parser.add_argument("--repeats", type=int, default=9, help="timed runs per measurement (median)")
    parser.add_argument("--ref-windows", type=int, default=100, help="windows timed for the numpy references")
    parser.add_argument("--markdown", action="store_true", help="print a markdown table (for the README)")
    args = parser.parse_args(argv)

    height, width = (int(v) for v in args.size.lower().split("x"))
    cut = args.cut_size or None
    n_ref = min(args.ref_windows, args.windows)
    windows, gt = synthetic_windows(args.windows, height, width, args.labels)
    has_gt = np.ones(len(gt), bool)

    # Warm-up compiles (or loads from the numba cache) and checks agreement on the subset.
    ref_windows = windows[:n_ref]
    linked_ref = link_windows(ref_windows, args.labels, cut)
    assert np.array_equal(linked_ref, link_windows_reference(ref_windows, args.labels, cut))
    assert np.array_equal(
        link_windows(ref_windows, args.labels, cut, span=2), link_windows_reference(ref_windows, args.labels, cut, span=2)
    )
    frames_ref = unravel_windows(linked_ref)
    gt_ref = gt[: n_ref + 2]
    has_ref = has_gt[: n_ref + 2]
    sel = select_masks(frames_ref, gt_ref, has_ref, args.labels, cut)
    assert np.array_equal(sel, select_masks_reference(frames_ref, gt_ref, has_ref, args.labels, cut))

    linked = link_windows(windows, args.labels, cut)
    frames = unravel_windows(linked)
    select_masks(frames, gt, has_gt, args.labels, cut)

    load = os.getloadavg()[0]  # other work on the machine skews parallel timings
    t_link = median_time(lambda: link_windows(windows, args.labels, cut), args.repeats)
    buffer = np.empty_like(windows)
    t_link_out = median_time(lambda: link_windows(windows, args.labels, cut, out=buffer), args.repeats)
    t_link_ref = median_time(lambda: link_windows_reference(ref_windows, args.labels, cut), args.repeats)
    link_windows(windows, args.labels, cut, span=2)  # a warm-up, as for span 1 above
    t_link2 = median_time(lambda: link_windows(windows, args.labels, cut, span=2), args.repeats)
    t_link2_ref = median_time(lambda: link_windows_reference(ref_windows, args.labels, cut, span=2), args.repeats)
    t_sel = median_time(lambda: select_masks(frames, gt, has_gt, args.labels, cut), args.repeats)
    t_sel_ref = median_time(
        lambda: select_masks_reference(frames_ref, gt_ref, has_ref, args.labels, cut), args.repeats
    )
    t_sum = median_time(lambda: np.sum(windows), args.repeats)

    rows = [
        ("linking (naive)", "window", t_link / args.windows, t_link_ref / n_ref),
        ("linking (naive), out= reused", "window", t_link_out / args.windows, t_link_ref / n_ref),
        ("linking (naive), span 2", "window", t_link2 / args.windows, t_link2_ref / n_ref),
        ("mask selection", "frame", t_sel / len(frames), t_sel_ref / len(frames_ref)),
    ]
    gbytes = windows.nbytes / 1e9
    setup = (
        f"{args.windows} windows of {height}x{width}, L={args.labels}, cut size {cut}, uint8 labels; "
        f"kernels on all windows ({numba.get_num_threads()} numba threads), references on the first "
        f"{n_ref}; median of {args.repeats}; load average {load:.2f} before timing"
    )
    header = ("step", "per", "kernel ms", "reference ms", "speedup")
    table = [(name, unit, f"{k * 1e3:.4f}", f"{r * 1e3:.3f}", f"{r / k:.0f}x") for name, unit, k, r in rows]
    if args.markdown:
        print(f"_{setup}_\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "|".join(" --- " for _ in header) + "|")
        for row in table:
            print("| " + " | ".join(row) + " |")
        print(
            f"\nLinking reads labels at {gbytes / t_link:.1f} GB/s "
            f"(plain `np.sum` over the same uint8 array: {gbytes / t_sum:.1f} GB/s)."
        )
    else:
        print(setup)
        widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
        for row in [header, *table]:
            print("  ".join(str(v).rjust(w) if i >= 2 else str(v).ljust(w) for i, (v, w) in enumerate(zip(row, widths))))
        print(
            f"linking throughput: {gbytes / t_link:.1f} GB/s of labels read "
            f"(np.sum over the same uint8 array: {gbytes / t_sum:.1f} GB/s)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
