"""The stseg-viz command line: a contact sheet of one segmented sequence."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from fakes import FakeModel
from fakes import write_sequence as _write_sequence
from PIL import Image

from stseg_deploy.cli.viz import viz_main
from stseg_deploy.output.folder import segment_to_folder
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.sources import sequences_from_folders


def test_a_contact_sheet_of_the_columns_asked(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "flows" / "walk", 6)
    (seq,) = sequences_from_folders([tmp_path / "flows" / "walk"])
    segment_to_folder(Segmenter(FakeModel()), seq, tmp_path / "out")
    sheet = tmp_path / "sheet.png"
    result = CliRunner().invoke(viz_main, [str(tmp_path / "out" / "walk"), "--frames", "3", "--out", str(sheet)])
    assert result.exit_code == 0, result.output
    assert f"contact sheet: {sheet}" in result.output
    with Image.open(sheet) as image:
        wide = image.size
    result = CliRunner().invoke(viz_main, [str(tmp_path / "out" / "walk"), "--frames", "6", "--out", str(sheet)])
    with Image.open(sheet) as image:
        assert image.size[0] > wide[0]  # more columns, a wider sheet


def test_a_folder_that_is_not_an_output_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(viz_main, [str(tmp_path / "empty")])
    assert result.exit_code == 1 and f"{tmp_path / 'empty' / 'sequence.json'}: missing; is {tmp_path / 'empty'} a complete stseg-infer output" in result.output
