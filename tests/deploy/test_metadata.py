"""Tests for stseg_deploy.metadata: what an exported model says about itself."""

from __future__ import annotations

import json

import pytest

from stseg_deploy.flow.recipe import FlowRecipe
from stseg_deploy.metadata import METADATA_KEY, ModelInfo


def _info(**extra) -> ModelInfo:
    return ModelInfo(4, 3, (64, 112), "QuadraticFullPT", "per-frame", 16, "1.0", 3, **extra)


def test_round_trip_keeps_the_resize_mode() -> None:
    info = _info(resize="plain", flow=FlowRecipe("deepflow", None, "auto"))
    back = ModelInfo.from_metadata(info.to_metadata(), "m.onnx")
    assert back == info and back.resize == "plain"


def test_the_training_flow_reads_back_as_a_recipe() -> None:
    """Files exported before the recipe had a step hold {method, size, scale}; a size came
    with scale None from stseg-prepare."""
    record = json.loads(_info().to_metadata()[METADATA_KEY])
    record["flow"] = {"method": "dis", "size": [120, 214], "scale": None}
    info = ModelInfo.from_metadata({METADATA_KEY: json.dumps(record)}, "old.onnx")
    assert info.flow == FlowRecipe("dis", (120, 214), "auto", 1)
    record["flow"] = {"method": "raft", "size": None, "scale": "auto"}
    with pytest.raises(ValueError, match=r"old\.onnx: corrupt stseg metadata.*'raft'"):
        ModelInfo.from_metadata({METADATA_KEY: json.dumps(record)}, "old.onnx")


def test_files_from_before_the_resize_field_read_as_antialias() -> None:
    record = json.loads(_info().to_metadata()[METADATA_KEY])
    del record["resize"]
    assert ModelInfo.from_metadata({METADATA_KEY: json.dumps(record)}, "old.onnx").resize == "antialias"


def test_unknown_resize_mode_names_the_file() -> None:
    record = json.loads(_info().to_metadata()[METADATA_KEY])
    record["resize"] = "lanczos"
    with pytest.raises(ValueError, match=r"new\.onnx.*'lanczos'"):
        ModelInfo.from_metadata({METADATA_KEY: json.dumps(record)}, "new.onnx")
