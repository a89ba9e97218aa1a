"""Timing the kernels (linking and mask selection) for the benchmark table."""

from __future__ import annotations

from stseg_kernels import DEFAULT_CUT_SIZE

from .measure import BenchRow, peak_memory


def bench_kernels(sizes: list[tuple[int, int]], masks: list[int], windows: int = 200, cut_size: int = DEFAULT_CUT_SIZE, repeats: int = 5) -> list[BenchRow]:
    """Per-frame time of linking (link_windows, as stseg-infer links by default: its method
    and span) and selection (select_masks): the timing of ``python -m stseg_kernels.bench``
    (:func:`stseg_kernels.bench.kernel_seconds`, the same synthetic windows), with the peak
    memory around it."""
    from stseg_deploy.stages.linker import DEFAULT_LINK, DEFAULT_SPAN
    from stseg_kernels.bench import kernel_seconds

    rows = []
    for (h, w) in sizes:
        for n_labels in masks:
            with peak_memory("cpu") as peak:
                seconds = kernel_seconds(windows, (h, w), n_labels, cut_size, repeats, DEFAULT_LINK, DEFAULT_SPAN)
            for name, s in seconds.items():
                rows.append(BenchRow(name, "numba", "-", h, w, n_labels, windows, round(windows / s, 1),
                                     round(s / windows * 1e3, 5), round(peak[0], 1)))
    return rows
