"""stseg_train.dataset: 3-frame windows of a DataSplit, their values at model size, and the
rows it skips (gaps, missing and truncated files) with one warning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from stseg_deploy.io.flowio import write_flow
from stseg_deploy.io.masks import write_mask_png
from stseg_train.dataset import FlowWindowDataset

SIZE = (8, 12)


def _split(root: Path, indices: list[int], masks: tuple[int, ...] = ()) -> Path:
    """Sequence 'a' with a flow of constant (t, -t) at each index, masks at ``masks``."""
    rows = []
    for t in indices:
        write_flow(root / "a" / f"{t:05d}.flo", np.stack([np.full(SIZE, t), np.full(SIZE, -t)]).astype(np.float32))
        gt = ""
        if t in masks:
            mask = np.zeros(SIZE, bool)
            mask[: SIZE[0] // 2] = True
            write_mask_png(root / "gt" / f"{t:05d}.png", mask)
            gt = f"gt/{t:05d}.png"
        rows.append(f"a/{t:05d}.flo,{gt},a,{t}")
    (root / "S_train.csv").write_text("Flow,GtMask,Sequence,Sequence_Index\n" + "\n".join(rows) + "\n")
    return root / "S"


def test_windows_hold_neighbours_and_masks_at_model_size(tmp_path: Path) -> None:
    data = FlowWindowDataset(_split(tmp_path, [0, 1, 2, 3], masks=(2,)), "train", tmp_path, SIZE)
    assert len(data) == 2 and [r.centre for r in data.records] == ["a/00001.flo", "a/00002.flo"]
    item = data[1]
    assert item["flow"].shape == (2, 3, *SIZE) and item["index"] == 1
    # Window centred on frame 2: flows 1, 2, 3 along time, u = t and v = -t.
    np.testing.assert_array_equal(item["flow"][0, :, 0, 0].numpy(), [1, 2, 3])
    np.testing.assert_array_equal(item["flow"][1, :, 0, 0].numpy(), [-1, -2, -3])
    assert item["has_gt"].tolist() == [False, True, False]
    assert item["gt"][1, 0].all() and not item["gt"][1, -1].any() and not item["gt"][0].any()


def test_smaller_model_size_scales_the_vectors(tmp_path: Path) -> None:
    data = FlowWindowDataset(_split(tmp_path, [0, 1, 2]), "train", tmp_path, (4, 6))
    flow = data[0]["flow"].numpy()
    assert flow.shape == (2, 3, 4, 6)
    np.testing.assert_allclose(flow[0, :, 2, 3], [0, 0.5, 1], atol=1e-6)  # half the size: half the pixels


def test_gaps_and_bad_files_are_skipped_with_one_warning(tmp_path: Path, caplog) -> None:
    prefix = _split(tmp_path, [0, 1, 2, 3, 5, 6, 7, 8, 9])
    (tmp_path / "a" / "00008.flo").write_bytes((tmp_path / "a" / "00008.flo").read_bytes()[:20])
    (tmp_path / "a" / "00002.flo").unlink()
    data = FlowWindowDataset(prefix, "train", tmp_path, SIZE)
    # Centres 1 and 2 need the missing 00002, 7 and 8 the truncated 00008; rows 3 and 5 border
    # the gap and 0 and 9 end the sequence: only 6 is left.
    assert [r.centre for r in data.records] == ["a/00006.flo"]
    (warning,) = [r for r in caplog.records if "windows remain" in r.getMessage()]
    assert "skipped 2 row(s) whose neighbours are missing" in warning.getMessage()
    assert "2 window(s) with missing flow files and 2 with unreadable ones; 1 windows remain" in warning.getMessage()
    assert any("00008.flo" in r.getMessage() for r in caplog.records)


def test_no_usable_window_is_an_error_naming_the_csv(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"S_train.csv: no usable 3-frame windows"):
        FlowWindowDataset(_split(tmp_path, [0, 2, 4]), "train", tmp_path, SIZE)
