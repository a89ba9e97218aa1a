"""stseg_synth is numpy only: importing it (and running stseg-synth) never loads torch."""

import subprocess
import sys
from pathlib import Path


def test_synth_never_imports_torch(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "import stseg_synth, stseg_synth.cli\n"
        "from click.testing import CliRunner\n"
        f"result = CliRunner().invoke(stseg_synth.cli.synth_main, [{str(tmp_path / 'out')!r}, '--sequences', '2', '--frames', '4', '--size', '16', '24'])\n"
        "assert result.exit_code == 0, result.output\n"
        "bad = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "DataSplit" / "Synth_train.csv").is_file()
