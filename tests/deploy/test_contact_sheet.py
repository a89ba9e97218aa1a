"""stseg-viz contact sheets: written into a result folder, never over a user's file."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeModel
from fakes import write_sequence as _write_sequence
from PIL import Image

from stseg_deploy.io.outdir import StsegOutputError
from stseg_deploy.outputs import segment_to_folder
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.sources import sequences_from_folders
from stseg_deploy.viz.contact_sheet import sequence_contact_sheet


def test_contact_sheet_is_ours_to_replace_and_nothing_else(tmp_path: Path) -> None:
    _write_sequence(tmp_path / "flows" / "walk", 6)
    seq = sequences_from_folders([tmp_path / "flows" / "walk"])[0]
    segment_to_folder(Segmenter(FakeModel()), seq, tmp_path / "out")
    sheet = sequence_contact_sheet(tmp_path / "out" / "walk", n_columns=3)
    assert sheet == tmp_path / "out" / "walk" / "contact_sheet.png"
    with Image.open(sheet) as image:
        assert image.text["Software"] == "stseg-viz" and image.width > 3 * 16
    assert sequence_contact_sheet(tmp_path / "out" / "walk", n_columns=2) == sheet  # ours: replaced
    mask = tmp_path / "gt" / "00000.png"
    mask.parent.mkdir()
    Image.new("L", (16, 12)).save(mask)
    before = mask.read_bytes()
    with pytest.raises(StsegOutputError, match="00000.png: exists and is not a contact sheet stseg-viz wrote"):
        sequence_contact_sheet(tmp_path / "out" / "walk", out=mask)
    assert mask.read_bytes() == before
    # A rerun of stseg-infer replaces the folder with the sheet in it: the sheet is stseg's.
    segment_to_folder(Segmenter(FakeModel()), seq, tmp_path / "out")
    assert not sheet.exists()
