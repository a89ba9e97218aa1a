"""Measuring for the benchmark tables: the row, peak memory, median wall time, the table and
its plot."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

COLUMNS = [
    "engine", "provider", "precision", "height", "width", "masks", "batch",
    "windows_per_s", "ms_per_frame", "peak_mem_mb",
]


@dataclass
class BenchRow:
    engine: str
    provider: str
    precision: str
    height: int
    width: int
    masks: int
    batch: int
    windows_per_s: float
    ms_per_frame: float
    peak_mem_mb: float


class EngineUnavailable(RuntimeError):
    """An engine that cannot run here (no GPU, provider not loadable, ...): skipped, with why."""


def _rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@contextmanager
def peak_memory(device: str) -> Iterator[list[float]]:
    """Yields a one-element list that holds, on exit, the peak memory in MiB.

    CUDA: peak device memory in use (torch's allocator, or the whole device for other
    runtimes, via free-memory queries). CPU: peak RSS above the level at entry, sampled
    every millisecond (Linux /proc; 0 where unavailable).
    """
    result = [0.0]
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        free_before = torch.cuda.mem_get_info()[0]
        # Other runtimes allocate outside torch: watch the device's free memory too.
        with _sampled_max(lambda: free_before - torch.cuda.mem_get_info()[0], 0.002) as used:
            yield result
        torch.cuda.synchronize()
        result[0] = max(torch.cuda.max_memory_allocated(), used[0]) / 2**20
        return
    if not Path("/proc/self/statm").exists():
        yield result
        return
    base = _rss_mb()
    with _sampled_max(_rss_mb, 0.001) as peak:
        yield result
    result[0] = max(0.0, max(peak[0], _rss_mb()) - base)


@contextmanager
def _sampled_max(read: Callable[[], float], period: float) -> Iterator[list[float]]:
    """Yields a one-element list holding, on exit, the largest ``read()`` seen by a thread
    that samples it every ``period`` seconds while the block runs."""
    peak = [read()]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], read())
            time.sleep(period)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int, sync: Callable[[], None]) -> float:
    """Median wall time of ``fn`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def rows_to_frame(rows: list[BenchRow]):
    import pandas as pd

    return pd.DataFrame([asdict(r) for r in rows], columns=COLUMNS)


def plot(table, path: Path) -> None:
    """ms per frame against input pixels, one line per engine / precision / masks / batch."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RuntimeError("plotting needs matplotlib: pip install 'stseg[plot]'") from exc
    models = table[~table["engine"].isin(["link_windows", "select_masks"])]
    fig, ax = plt.subplots(figsize=(8, 5))
    for key, group in models.groupby(["engine", "precision", "masks", "batch"]):
        group = group.sort_values(["height", "width"])
        ax.plot(group["height"] * group["width"], group["ms_per_frame"], marker="o", label="{} {} L={} B={}".format(*key))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("input pixels (H x W)")
    ax.set_ylabel("ms per frame")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    from stseg_deploy.io.atomic import atomic_write

    with atomic_write(path) as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)
