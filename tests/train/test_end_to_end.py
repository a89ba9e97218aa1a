"""A tiny model from training to scores, through the same commands a user types."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from stseg_deploy.cli.eval import eval_main
from stseg_deploy.cli.infer import infer_main
from stseg_deploy.stages.motionsplit import SplitSettings
from stseg_synth.cli import synth_main
from stseg_train.cli import export_main, train_main


def _ok(command, args: list[str]) -> str:
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, f"{command.name} {args}\n{result.output}\n{result.exception!r}"
    return result.output


@pytest.mark.slow
def test_train_export_infer_eval(tmp_path: Path) -> None:
    data, run, preds = tmp_path / "data", tmp_path / "run", tmp_path / "preds"
    _ok(synth_main, [str(data), "--sequences", "4", "--frames", "7", "--size", "24", "32", "--seed", "3"])
    prefix = str(data / "DataSplit" / "Synth")
    _ok(train_main, [
        "--data-file", prefix, "--base-dir", str(data), "--save-dir", str(run), "--image-size", "24", "32",
        "--features-start", "4", "--batch-size", "5", "--epochs", "2", "--workers", "0", "--lr", "1e-3",
    ])
    assert len(pd.read_csv(run / "metrics.csv")) == 2
    _ok(export_main, [str(run / "checkpoints" / "best.pt"), "--onnx", str(tmp_path / "m.onnx"), "--torchscript", str(tmp_path / "m.ts")])
    common = ["--data-file", prefix, "--split", "val", "--base-dir", str(data), "--cut-size", "3"]
    out = _ok(infer_main, ["--model", str(tmp_path / "m.onnx"), *common, "--out", str(preds), "--save-proba", "--batch-size", "2", "--tta", "none"])
    assert "frames/s" in out
    sequences = [p.parent.name for p in preds.glob("*/sequence.json")]
    assert sequences == ["seq003"]
    labels = np.load(preds / "seq003" / "labels.npy")
    # L = 4, plus the motion split's spare segments
    assert labels.shape == (7, 24, 32) and labels.max() < 4 + SplitSettings().extra
    out = _ok(eval_main, [str(preds), *common])
    j = float(out.strip().splitlines()[-1].removeprefix("J="))
    # The baseline: the same labels, every segment but the largest taken as foreground.
    baseline = _ok(eval_main, [str(preds), *common, "--binary", "exceptbiggest"])
    j_baseline = float(baseline.strip().splitlines()[-1].removeprefix("J="))
    assert j > j_baseline + 0.05  # measured: 0.557 against 0.248
    assert len(pd.read_csv(preds / "scores.csv")) == 7
    # The TorchScript engine gives the same labels as onnxruntime.
    _ok(infer_main, ["--model", str(tmp_path / "m.ts"), *common, "--out", str(tmp_path / "ts"), "--tta", "none"])
    np.testing.assert_array_equal(np.load(tmp_path / "ts" / "seq003" / "labels.npy"), labels)
    # And with the test-time flip (both halves in one call of each runtime).
    for engine in ("onnx", "ts"):
        _ok(infer_main, ["--model", str(tmp_path / f"m.{engine}"), *common, "--out", str(tmp_path / f"flip_{engine}"), "--tta", "flip"])
    flipped = np.load(tmp_path / "flip_onnx" / "seq003" / "labels.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "flip_ts" / "seq003" / "labels.npy"), flipped)


def test_infer_cli_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(infer_main, ["--model", str(tmp_path / "m.onnx"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "no input given" in result.output
    (tmp_path / "empty").mkdir()
    result = runner.invoke(infer_main, ["--model", str(tmp_path / "m.onnx"), str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and "empty: empty folder" in result.output
    result = runner.invoke(infer_main, ["--model", str(tmp_path / "m.onnx"), str(tmp_path / "empty"), "--out", str(tmp_path / "o"), "--cut-size", "0"])
    assert result.exit_code != 0 and "an integer >= 1, 'none'" in result.output
