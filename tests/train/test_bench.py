"""stseg-bench on tiny shapes: the table's columns, rows and printed ratios."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import pytest

from stseg_train.bench import COLUMNS, peak_memory
from stseg_train.cli import bench_main


@pytest.mark.slow
def test_bench_table(tmp_path: Path, capsys) -> None:
    out = tmp_path / "bench.csv"
    bench_main([
        "--sizes", "16x24", "20x28", "--masks", "2", "--batch-sizes", "1", "2", "--repeats", "1",
        "--engines", "torch,onnxruntime,tensorrt", "--threads", "1", "--out", str(out),
    ])
    table = pd.read_csv(out)
    assert list(table.columns) == COLUMNS
    models = table[table["engine"].isin(["torch", "onnxruntime"])]
    assert len(models) == 2 * 2 * 2  # engines x sizes x batches
    assert (models["ms_per_frame"] > 0).all()
    assert ((models["windows_per_s"] * models["ms_per_frame"] - 1000).abs() < 1).all()
    assert set(table["engine"]) >= {"pipeline", "onnxruntime(model only)", "link_windows", "select_masks"}
    printed = capsys.readouterr()
    assert "onnxruntime vs torch eager, cpu fp32 16x24 L=2 batch 1:" in printed.out
    assert "pipeline / model alone, 16x24 L=2 batch 2:" in printed.out
    assert "tensorrt fp32: skipped" in printed.err  # no TensorRT on CPU, said so rather than silently


def test_bench_rejects_bad_options(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        bench_main(["--sizes", "16by24", "--out", str(tmp_path / "b.csv")])
    with pytest.raises(SystemExit):
        bench_main(["--engines", "torch,magic", "--out", str(tmp_path / "b.csv")])
    assert not (tmp_path / "b.csv").exists()


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is not None, reason="matplotlib is installed")
def test_plot_without_matplotlib_says_how(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        bench_main([
            "--sizes", "8x8", "--masks", "2", "--batch-sizes", "1", "--repeats", "1", "--engines", "onnxruntime",
            "--no-kernels", "--no-pipeline", "--out", str(tmp_path / "b.csv"), "--plot", str(tmp_path / "b.png"),
        ])
    assert info.value.code == 1 and "pip install 'stseg[plot]'" in capsys.readouterr().err


def test_peak_memory_sees_an_allocation() -> None:
    import numpy as np

    with peak_memory("cpu") as peak:
        block = np.ones(64 * 2**20, dtype=np.uint8)
        block.sum()
        del block
    assert peak[0] > 40
