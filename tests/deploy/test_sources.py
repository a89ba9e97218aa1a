"""Tests for stseg_deploy.sources: where sequences come from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fakes import write_sequence as _write_sequence
from PIL import Image

from stseg_deploy.sources import sequences_from_datasplit


def test_video_flow_recipe_can_be_replaced_after_opening(tmp_path: Path) -> None:
    """stseg-infer opens videos first (bad inputs are named before the model is loaded), then
    gives them the flow the model was trained on."""
    from stseg_deploy.sources import open_video_sequence, with_flow

    (tmp_path / "clip").mkdir()
    for t in range(4):
        Image.fromarray(np.full((300, 400, 3), 40 * t, np.uint8)).save(tmp_path / "clip" / f"{t:05d}.png")
    seq = open_video_sequence(tmp_path / "clip")
    assert (seq.method, seq.size, seq.frame_size, seq.n_frames) == ("deepflow", (240, 320), (300, 400), 3)
    other = with_flow(seq, "dis", scale=0.5)
    assert (other.method, other.size, other.n_frames, other.name) == ("dis", (150, 200), 3, "clip")
    assert with_flow(seq, "farneback", scale=1).size is None
    with pytest.raises(ValueError, match="unknown optical-flow method"):
        with_flow(seq, "raft")


def test_datasplit_source_names_missing_flow(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "Flows" / "a", 3)
    (tmp_path / "S_val.csv").write_text(
        "Flow,GtMask,Sequence,Sequence_Index\n"
        + "".join(f"Flows/a/{t:05d}.flo,,a,{t}\n" for t in range(4))
    )
    with pytest.raises(FileNotFoundError, match="00003.flo: flow file of sequence 'a' not found"):
        sequences_from_datasplit(tmp_path / "S", "val", tmp_path)


def test_parent_of_sequence_folders_gets_a_hint(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from stseg_deploy.cli import infer_main

    for name in ("bear", "cat"):
        _write_sequence(tmp_path / "flows" / name, 3)
    result = CliRunner().invoke(infer_main, ["--model", "m.onnx", str(tmp_path / "flows"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1
    assert "holds no flow files or frames, but 2 folder(s) (bear, cat)" in result.output
