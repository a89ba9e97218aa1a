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
