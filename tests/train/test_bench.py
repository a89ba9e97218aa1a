"""stseg-bench on tiny shapes: the table's columns, rows and printed ratios."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stseg_train.bench.cli import bench_main
from stseg_train.bench.measure import COLUMNS, peak_memory
from stseg_train.model import UNet3D


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
    assert set(table["engine"]) >= {
        "pipeline", "pipeline + flip", "pipeline + guided", "pipeline + flip + guided", "pipeline + carry", "pipeline + carry both", "pipeline + reclaim",
        "pipeline + foreground", "pipeline + flip + guided + split + foreground (the defaults)",
        "pipeline + flip + guided + split + carry + foreground",
        "onnxruntime(model only)", "link_windows", "select_masks",
        "onnxruntime proba + numpy argmax", "onnxruntime proba + argmax kernel", "onnxruntime labels output",
    }
    printed = capsys.readouterr()
    assert "onnxruntime vs torch eager, cpu fp32 16x24 L=2 batch 1:" in printed.out
    assert "pipeline / model alone, 16x24 L=2 batch 2:" in printed.out
    for stage in ("flip", "guided", "flip + guided", "carry", "carry both", "reclaim", "foreground"):
        assert f"pipeline + {stage} / pipeline, 16x24 L=2 batch 2:" in printed.out
    assert "labels output / proba + numpy argmax, 16x24 L=2 batch 2:" in printed.out
    assert "tensorrt fp32: skipped" in printed.err  # no TensorRT on CPU, said so rather than silently


def test_model_free_pipeline_against_the_plain_loop(tmp_path: Path, capsys) -> None:
    out = tmp_path / "free.csv"
    bench_main([
        "--model-free", "--frames", "6", "12", "--original-size", "24x30", "--sizes", "16x24", "--masks", "3",
        "--batch-sizes", "4", "--repeats", "1", "--out", str(out),
    ])
    table = pd.read_csv(out)
    assert list(table["engine"]) == [
        "plain loop (read, resize, upsample, PNG), 6 frames", "pipeline (model-free), 6 frames",
        "plain loop (read, resize, upsample, PNG), 12 frames", "pipeline (model-free), 12 frames",
    ]
    assert (table["masks"] == 3).all() and (table["batch"] == 4).all() and (table["windows_per_s"] > 0).all()
    # Two views of one time, each rounded (ms to 3 decimals: 0.1 % at 0.5 ms a frame).
    assert ((table["windows_per_s"] * table["ms_per_frame"] / 1000 - 1).abs() < 0.003).all()
    printed = capsys.readouterr().out
    assert "model-free pipeline / plain loop, 6 frames:" in printed and "model-free pipeline / plain loop, 12 frames:" in printed


def test_given_probabilities_give_blobs_of_every_label() -> None:
    from stseg_train.bench.pipeline import GivenProbabilities

    model = GivenProbabilities(4, (32, 48), 2)
    proba = model.run(np.zeros((2, 2, 3, 32, 48), np.float32))
    assert proba.shape == (2, 4, 3, 32, 48) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    labels = model.labels(proba)
    assert set(np.unique(labels)) == {0, 1, 2, 3}
    assert (labels[:, :, :, 1:] == labels[:, :, :, :-1]).mean() > 0.8  # blobs, not noise


@pytest.mark.slow
def test_compiled_and_io_bound_engines_agree_with_eager(tmp_path: Path) -> None:
    """torch.compile (compiled on first call, about 20 s on CPU) gives eager's probabilities;
    onnxruntime with I/O binding returns only the labels, eager's argmax."""
    import torch

    from stseg_train.bench.engines import EngineFactory
    from stseg_train.export_wrapper import example_input

    torch.manual_seed(0)
    factory = EngineFactory(UNet3D(n_labels=3, features_start=4), tmp_path, "cpu", 1)
    x = example_input(2, 16, 24).numpy()
    eager = factory.build("torch", "fp32")(x)
    np.testing.assert_allclose(factory.build("torch-compile", "fp32")(x), eager, atol=1e-5, rtol=0)
    labels = factory.build("onnxruntime-iobinding", "fp32")(x)
    assert labels.dtype == np.uint8 and labels.shape == (2, 3, 16, 24)
    np.testing.assert_array_equal(labels, eager.argmax(axis=1))


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


@pytest.mark.slow
def test_bench_an_exported_onnx_model(tmp_path: Path, capsys) -> None:
    import torch

    from stseg_train.export import export_onnx, model_info
    from stseg_train.export_wrapper import ExportWrapper

    torch.manual_seed(0)
    model = UNet3D(n_labels=3, features_start=4)
    payload = {"config": {"image_size": [16, 24], "param_model": "Affine"}, "model_args": model.config, "epoch": 1}
    export_onnx(ExportWrapper(model), model_info(payload), tmp_path / "m.onnx")
    out = tmp_path / "b.csv"
    bench_main([
        "--model", str(tmp_path / "m.onnx"), "--sizes", "16x24", "--batch-sizes", "1", "--repeats", "1",
        "--engines", "torch,onnxruntime", "--no-pipeline", "--no-kernels", "--out", str(out),
    ])
    table = pd.read_csv(out)
    assert list(table["engine"]) == ["onnxruntime"] and list(table["masks"]) == [3]
    assert "torch fp32: skipped (--model is an ONNX file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_main(["--model", str(tmp_path / "m.onnx"), "--masks", "4", "--out", str(out)])


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib (stseg[plot]) not installed")
def test_plot_writes_a_png(tmp_path: Path) -> None:
    from stseg_train.bench.measure import BenchRow, plot, rows_to_frame

    rows = [
        BenchRow(engine, "cpu", "fp32", h, w, 4, 1, 1000 / ms, ms, 10.0)
        for engine, scale in (("torch", 3.0), ("onnxruntime", 1.0))
        for (h, w), ms in (((64, 112), 10.0 * scale), ((128, 224), 40.0 * scale))
    ]
    plot(rows_to_frame(rows), tmp_path / "bench.png")
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_end_to_end_rows_time_frames_to_masks_against_the_flow_alone() -> None:
    from stseg_deploy.zoo import resolve_model
    from stseg_train.bench.pipeline import END_TO_END, FLOW_ALONE, bench_end_to_end

    rows = bench_end_to_end(resolve_model("mix-small")[0], "cpu", 1, batch=2, frames=6, original_size=(48, 80), repeats=1)
    assert [r.engine for r in rows] == [FLOW_ALONE, END_TO_END]
    assert all(r.ms_per_frame > 0 and r.windows_per_s > 0 and (r.height, r.width) == (64, 112) for r in rows)
    # 6 frames give 5 flows, so 5 segmented frames: frames/s and ms per frame describe the same run.
    assert all(abs(r.windows_per_s * r.ms_per_frame - 1e3) < 1e-3 * 1e3 for r in rows)
