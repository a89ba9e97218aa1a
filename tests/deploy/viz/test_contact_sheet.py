"""stseg-viz contact sheets: written into a result folder, never over a user's file."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes import FakeModel
from fakes import write_sequence as _write_sequence
from PIL import Image

from stseg_deploy.io.outdir import StsegOutputError
from stseg_deploy.output.folder import segment_to_folder
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


def test_a_refined_output_is_drawn_from_its_refined_maps(tmp_path: Path) -> None:
    import json

    import numpy as np
    from evalkit import infer_refined

    from stseg_deploy.io.masks import label_palette, read_label_png, write_mask_png
    from stseg_deploy.output.layout import record_objects
    from stseg_deploy.viz.contact_sheet import sequence_contact_sheet

    folder = infer_refined(tmp_path)
    refined = read_label_png(folder / "00000.png")
    for name in ("00000", "00001", "00002", "00003", "00004", "00005"):
        write_mask_png(tmp_path / "gt" / "cat" / f"{name}.png", read_label_png(folder / f"{name}.png") == 1)
    # The output's decision, rewritten so that label 1 is the one moving object.
    record = json.loads((folder / "sequence.json").read_text())
    record["objects"] = [[1]] * len(record["frames"])
    (folder / "sequence.json").write_text(json.dumps(record))
    sheet = np.asarray(Image.open(sequence_contact_sheet(folder, tmp_path / "gt" / "cat", n_columns=1)).convert("RGB"))

    def drawn(cell: np.ndarray) -> int:
        h, w = cell.shape[:2]
        return sum((sheet[y : y + h, x : x + w] == cell).all() for y in range(sheet.shape[0] - h + 1) for x in range(sheet.shape[1] - w + 1))

    # The segments cell is the refined PNG as it looks (label 1 in colour, the background
    # black); the foreground row is the output's decision, and the selected mask is chosen
    # from the refined maps at the frames' size: with the refined label 1 as ground truth,
    # exactly it. So label 1's mask is drawn three times: foreground, selected, ground truth.
    assert drawn(label_palette(record_objects(record)[0])[refined]) == 1
    assert drawn(np.repeat(np.where(refined == 1, 255, 0).astype(np.uint8)[..., None], 3, axis=2)) == 3
