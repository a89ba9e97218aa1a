"""stseg_train.quantize: an int8 model from an exported one, calibrated on a DataSplit's flows,
that stseg-infer reads as it reads the float one and that mostly agrees with it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from stseg_deploy.errors import StsegInputError
from stseg_deploy.io.flowio import write_flow
from stseg_deploy.runtime import OnnxModel
from stseg_deploy.zoo import resolve_model
from stseg_train.cli import quantize_main
from stseg_train.export_wrapper import example_input
from stseg_train.quantize import QUANTISATION_KEY, calibration_windows


def _datasplit(root: Path, sequences: dict[str, int]) -> Path:
    """Smooth random flows (48x80) in ``root/<seq>/`` and their DataSplit ``root/S_train.csv``."""
    rows = []
    for s, (name, n) in enumerate(sequences.items()):
        flows = example_input(1, 48, 80, seed=s)[0].numpy()  # (2, 3, h, w): three smooth flows
        for t in range(n):
            path = root / name / f"{t:05d}.flo"
            write_flow(path, flows[:, t % 3] * (1 + 0.1 * t))
            rows.append({"Flow": str(path), "GtMask": "", "Image": "", "Sequence": name, "Sequence_Index": t})
    pd.DataFrame(rows).to_csv(root / "S_train.csv", index=False)
    return root / "S"


def test_calibration_windows_are_spread_and_at_the_models_size(tmp_path: Path) -> None:
    data = _datasplit(tmp_path, {"a": 9, "b": 4, "c": 2})  # c is too short for a window
    model = OnnxModel(resolve_model("mix-small")[0], provider="cpu")
    windows = calibration_windows(model, data, "train", None, 4)
    assert len(windows) == 4 and all(w.shape == (1, 2, 3, *model.info.image_size) for w in windows)
    assert not np.array_equal(windows[0], windows[1])  # the first sequence's start and end
    with pytest.raises(StsegInputError, match="no sequence of 3 flows or more to calibrate on"):
        calibration_windows(model, _datasplit(tmp_path / "short", {"x": 2}), "train", None, 4)


def test_int8_model_keeps_the_metadata_and_mostly_agrees(tmp_path: Path) -> None:
    data = _datasplit(tmp_path, {"a": 8, "b": 8})
    out = tmp_path / "m-int8.onnx"
    result = CliRunner().invoke(quantize_main, ["mix-small", "--out", str(out), "--data-file", str(data), "--windows", "6"])
    assert result.exit_code == 0, result.output
    assert "calibrated on 6 windows" in result.output
    float_model = OnnxModel(resolve_model("mix-small")[0], provider="cpu")
    int8 = OnnxModel(out, provider="cpu")
    assert int8.info == float_model.info
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(out)).metadata_props}
    assert meta[QUANTISATION_KEY].startswith("int8 QDQ convolutions, calibrated on 6 windows")
    assert any(n.op_type == "DequantizeLinear" for n in onnx.load(str(out)).graph.node)
    flow = calibration_windows(float_model, data, "train", None, 4)
    flow = np.concatenate(flow)
    agree = float((int8.labels(flow) == float_model.labels(flow)).mean())
    assert agree > 0.9, agree
    bad = CliRunner().invoke(quantize_main, ["mix-small", "--out", str(tmp_path / "x.onnx"), "--data-file", str(tmp_path / "none")])
    assert bad.exit_code == 1 and "none_train.csv" in bad.output and not (tmp_path / "x.onnx").exists()
