"""Tests for stseg_kernels.bench (make bench): it runs on tiny shapes and checks itself."""

from __future__ import annotations

from stseg_kernels.bench import kernel_seconds, main, synthetic_windows


def test_bench_prints_the_kernels_against_their_references(capsys) -> None:
    assert main(["--windows", "12", "--size", "16x24", "--repeats", "1", "--ref-windows", "4"]) == 0
    out = capsys.readouterr().out
    for row in ("linking (naive)", "linking (naive), span 2", "mask selection", "speedup", "GB/s"):
        assert row in out


def test_kernel_seconds_times_both_kernels_on_the_synthetic_windows() -> None:
    windows, gt = synthetic_windows(6, 16, 24, 4)
    assert windows.shape == (6, 3, 16, 24) and gt.shape == (8, 16, 24) and gt.any()
    # Every window's labels are shuffled: the linking has real renaming to do.
    assert any(not (windows[w, 1] == windows[w + 1, 0]).all() for w in range(5))
    seconds = kernel_seconds(6, (16, 24), 4, 3, repeats=1)
    assert set(seconds) == {"link_windows", "select_masks"} and min(seconds.values()) > 0
