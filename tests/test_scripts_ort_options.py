"""scripts/ort_options.py: onnxruntime's session options and other exports of a network, timed
in one table (tiny shapes; the times themselves are not checked)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import torch

from stseg_train.export import export_onnx, model_info
from stseg_train.export_wrapper import ExportWrapper
from stseg_train.model import UNet3D

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "ort_options.py"


def _export(path: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    model = UNet3D(n_labels=2, num_layers=2, features_start=4).eval()
    payload = {
        "config": {"image_size": [8, 16], "param_model": "QuadraticFullPT"},
        "model_args": model.config,
        "version": "test",
        "epoch": 0,
    }
    export_onnx(ExportWrapper(model), model_info(payload), path)
    return path


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True)


def test_compare_adds_other_files_as_rows_of_the_table(tmp_path) -> None:
    first, second = _export(tmp_path / "a.onnx", 0), _export(tmp_path / "b.onnx", 1)
    done = _run(
        str(first),
        "--compare",
        f"other={second}",
        "--stseg-only",
        "--size",
        "8",
        "16",
        "--batches",
        "1",
        "2",
        "--repeats",
        "1",
        "--rounds",
        "1",
    )
    assert done.returncode == 0, done.stderr
    rows = re.findall(r"batch\s+(\d+)\s+(\S+)\s+([\d.]+) ms\s+([\d.]+)x", done.stdout)
    assert [(batch, name) for batch, name, _, _ in rows] == [("1", "stseg"), ("1", "other"), ("2", "stseg"), ("2", "other")]
    # Each batch's ratios are against its stseg row, which is 1.00.
    for _batch, name, ms, ratio in rows:
        assert float(ms) > 0 and float(ratio) > 0
        assert name != "stseg" or ratio == "1.00"


def test_without_stseg_only_every_option_set_is_timed(tmp_path) -> None:
    model = _export(tmp_path / "a.onnx", 0)
    done = _run(str(model), "--size", "8", "16", "--batches", "1", "--repeats", "1", "--rounds", "1")
    assert done.returncode == 0, done.stderr
    assert "no CPU arena" in done.stdout and "basic graph optimisations only" in done.stdout


def test_a_bad_compare_is_refused_with_its_reason(tmp_path) -> None:
    model = _export(tmp_path / "a.onnx", 0)
    for entry, reason in (
        ("nofile", "takes NAME=FILE"),
        (f"stseg={model}", "already a row"),
        (f"x={tmp_path / 'missing.onnx'}", "no such file"),
    ):
        done = _run(str(model), "--compare", entry, "--stseg-only")
        assert done.returncode == 2 and reason in done.stderr, done.stderr
