"""The stseg-flow command line: a video or frame folder to .flo files at the size asked."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from fakes import write_frames

from stseg_deploy.cli.flow import flow_main
from stseg_deploy.io.flowio import read_flow


def test_frames_to_flow_files_at_the_size_and_step_asked(tmp_path: Path) -> None:
    write_frames(tmp_path / "clip", [f"{t:05d}" for t in range(5)], size=(48, 64))
    result = CliRunner().invoke(flow_main, [str(tmp_path / "clip"), "--out", str(tmp_path / "f"), "--method", "dis", "--scale", "0.5", "--step", "2"])
    assert result.exit_code == 0, result.output
    assert "wrote 3 flow files" in result.output
    flows = sorted((tmp_path / "f").glob("*.flo"))
    assert [p.name for p in flows] == ["00000.flo", "00001.flo", "00002.flo"]  # frame t to t + 2
    assert read_flow(flows[0]).shape == (2, 24, 32)
    assert json.loads((tmp_path / "f" / "stseg-flow.json").read_text())["stseg"]["complete"] is True


def test_size_and_scale_together_are_refused(tmp_path: Path) -> None:
    write_frames(tmp_path / "clip", [f"{t:05d}" for t in range(3)], size=(48, 64))
    result = CliRunner().invoke(flow_main, [str(tmp_path / "clip"), "--out", str(tmp_path / "f"), "--size", "24", "32", "--scale", "0.5"])
    assert result.exit_code == 2 and "give --size or --scale, not both" in result.output
    assert not (tmp_path / "f").exists()


def test_a_missing_source_is_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(flow_main, [str(tmp_path / "nowhere"), "--out", str(tmp_path / "f")])
    assert result.exit_code == 1 and "nowhere: video file or frame folder not found" in result.output
