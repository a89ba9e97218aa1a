"""Tests for where ground truth is and how it is read (stseg_deploy.eval.groundtruth)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stseg_deploy.errors import StsegInputError
from stseg_deploy.eval.groundtruth import GroundTruth, gt_from_datasplit, gt_from_folder, read_gt, read_gt_objects
from stseg_deploy.io.datasplit import read_datasplit
from stseg_deploy.io.masks import write_label_png, write_mask_png

FRAMES = ["00000", "00001", "00002"]


def _masks(folder: Path, names: list[str], size=(6, 8)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for t, name in enumerate(names):
        mask = np.zeros(size, bool)
        mask[: t + 1, :3] = True
        write_mask_png(folder / f"{name}.png", mask)


def test_a_folder_gives_a_path_per_frame_and_none_where_absent(tmp_path: Path) -> None:
    _masks(tmp_path / "gt" / "cat", ["00000", "00002"])
    masks = gt_from_folder(tmp_path / "gt", "cat", FRAMES)
    assert masks == [tmp_path / "gt" / "cat" / "00000.png", None, tmp_path / "gt" / "cat" / "00002.png"]
    with pytest.raises(FileNotFoundError, match="no ground truth for sequence 'dog'"):
        gt_from_folder(tmp_path / "gt", "dog", FRAMES)


def test_a_datasplit_matches_masks_to_frames_by_the_flow_name(tmp_path: Path) -> None:
    _masks(tmp_path / "Annotations" / "cat", FRAMES[:2])
    (tmp_path / "S_val.csv").write_text(
        "Flow,GtMask,Sequence,Sequence_Index\n"
        "Flows/cat/00000.flo,Annotations/cat/00000.png,cat,0\n"
        "Flows/cat/00001.flo,Annotations/cat/00001.png,cat,1\n"
        "Flows/cat/00002.flo,,cat,2\n"
    )
    table = read_datasplit(tmp_path / "S", "val")
    masks = gt_from_datasplit(table, tmp_path, "cat", FRAMES)
    assert masks == [tmp_path / "Annotations" / "cat" / "00000.png", tmp_path / "Annotations" / "cat" / "00001.png", None]
    with pytest.raises(StsegInputError, match="sequence 'dog' is not in this DataSplit split"):
        gt_from_datasplit(table, tmp_path, "dog", FRAMES)
    (tmp_path / "Annotations" / "cat" / "00001.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"00001\.png: ground-truth mask listed in the DataSplit"):
        gt_from_datasplit(table, tmp_path, "cat", FRAMES)
    truth = GroundTruth(data_file=tmp_path / "S", split="val", base_dir=tmp_path)
    assert truth.sequences() == ["cat"] and truth.csv == tmp_path / "S_val.csv"


def test_one_source_exactly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one ground-truth source"):
        GroundTruth()
    with pytest.raises(FileNotFoundError, match="ground-truth folder not found"):
        GroundTruth(gt_dir=tmp_path / "nowhere")
    assert GroundTruth(gt_dir=tmp_path).sequences() is None  # a folder may hold more


def test_masks_are_read_at_the_predictions_size_or_refused(tmp_path: Path) -> None:
    _masks(tmp_path, ["00000"], size=(6, 8))
    mask = read_gt(tmp_path / "00000.png", (6, 8))
    assert mask.dtype == bool and mask.sum() == 3
    with pytest.raises(StsegInputError, match=r"ground truth is 6x8 \(HxW\) but the prediction's original size is 12x16"):
        read_gt(tmp_path / "00000.png", (12, 16))
    np.testing.assert_array_equal(read_gt(tmp_path / "00000.png", (12, 16), resize_gt=True), mask.repeat(2, 0).repeat(2, 1))


def test_object_ids_are_never_blended_when_resized(tmp_path: Path) -> None:
    ids = np.array([[0, 1, 1, 2], [0, 1, 2, 2]], np.uint8)
    write_label_png(tmp_path / "ids.png", ids)
    np.testing.assert_array_equal(read_gt_objects(tmp_path / "ids.png", (2, 4)), ids)
    big = read_gt_objects(tmp_path / "ids.png", (4, 8), resize_gt=True)
    assert set(np.unique(big)) == {0, 1, 2}
    np.testing.assert_array_equal(big, ids.repeat(2, 0).repeat(2, 1))
