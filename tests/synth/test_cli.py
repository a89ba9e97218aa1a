"""Tests of the stseg-synth command line (stseg_synth.cli)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from stseg_synth.cli import synth_main


def test_cli_objects_option(tmp_path) -> None:
    result = CliRunner().invoke(synth_main, [str(tmp_path / "s"), "--sequences", "6", "--frames", "3", "--size", "24", "32", "--objects", "2", "3"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "s" / "synth.json").read_text())
    assert summary["n_objects"] == [2, 3]
    assert {s["n_objects"] for s in summary["sequences"].values()} <= {2, 3}
    bad = CliRunner().invoke(synth_main, [str(tmp_path / "t"), "--objects", "0", "2"])
    assert bad.exit_code != 0 and "n_objects minimum" in bad.output


def test_cli_pauses_option(tmp_path) -> None:
    result = CliRunner().invoke(synth_main, [str(tmp_path / "s"), "--sequences", "3", "--frames", "8", "--size", "32", "48", "--pauses", "2", "3"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "s" / "synth.json").read_text())
    assert summary["pauses"] == [2, 3]
    for seq in summary["sequences"].values():
        assert [2 <= len(frames) <= 3 for frames in seq["paused_frames"]] == [True] * seq["n_objects"]
    plain = CliRunner().invoke(synth_main, [str(tmp_path / "p"), "--sequences", "2", "--frames", "4", "--size", "32", "48"])
    assert plain.exit_code == 0, plain.output
    summary = json.loads((tmp_path / "p" / "synth.json").read_text())
    assert summary["pauses"] is None and not any("paused_frames" in s for s in summary["sequences"].values())
    bad = CliRunner().invoke(synth_main, [str(tmp_path / "t"), "--frames", "4", "--pauses", "1", "3"])
    assert bad.exit_code != 0 and "pauses maximum" in bad.output


def test_cli_areas_option(tmp_path) -> None:
    result = CliRunner().invoke(synth_main, [str(tmp_path / "s"), "--sequences", "3", "--frames", "4", "--size", "64", "112", "--objects", "1", "1", "--areas", "0.01", "0.02"])
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "s" / "synth.json").read_text())
    assert summary["areas"] == [0.01, 0.02] and summary["min_area_fraction"] == 0.005
    # One object each: the foreground is that object, 0.5-2.5 % of the frame (a raster's slack).
    assert all(0.005 <= s["foreground_fraction"] <= 0.025 for s in summary["sequences"].values())
    assert CliRunner().invoke(synth_main, [str(tmp_path / "p"), "--sequences", "1", "--frames", "3"]).exit_code == 0
    plain = json.loads((tmp_path / "p" / "synth.json").read_text())
    assert plain["areas"] is None and plain["min_area_fraction"] == 0.02
    bad = CliRunner().invoke(synth_main, [str(tmp_path / "t"), "--areas", "0.3", "0.4"])
    assert bad.exit_code != 0 and "areas must satisfy" in bad.output
    tiny = CliRunner().invoke(synth_main, [str(tmp_path / "u"), "--areas", "0.00001", "0.001"])
    assert tiny.exit_code == 2 and "objects need at least 16" in tiny.output and not (tmp_path / "u").exists()
