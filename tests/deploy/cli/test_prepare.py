"""stseg-prepare davis from the command line: a DAVIS layout to flows and DataSplits that
infer and eval read, reruns that keep what is done, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from davistree import SIZE, davis2017_tree, davis_tree

from stseg_deploy.cli.prepare import prepare_main
from stseg_deploy.eval.groundtruth import GroundTruth
from stseg_deploy.io.datasplit import read_datasplit
from stseg_deploy.io.flowio import read_flow, write_flow
from stseg_deploy.sources import sequences_from_datasplit


def _prepare(*args: str):
    return CliRunner().invoke(prepare_main, ["davis", *args, "--workers", "1"])


def test_flows_and_datasplits_that_infer_and_eval_read(tmp_path: Path) -> None:
    root = davis_tree(tmp_path / "DAVIS", {"train": {"a": 4, "b": 3}, "val": {"c": 4}})
    (root / "ImageSets" / "480p" / "trainval.txt").write_text("")
    out = tmp_path / "prep"
    # DIS: the flat-coloured square of this tiny fixture is what DIS tracks well; DeepFlow's
    # smoothness term drags its flat interior (the default engine is checked below).
    result = _prepare(str(root), "--out", str(out), "--flow-method", "dis")
    assert result.exit_code == 0, result.output
    train = pd.read_csv(out / "DAVIS2016_train.csv")
    assert list(train.columns) == ["Flow", "GtMask", "Image", "Sequence", "Sequence_Index"]
    # The last frame of each sequence has no flow and no row.
    assert list(train["Sequence"]) == ["a", "a", "a", "b", "b"] and list(train["Sequence_Index"]) == [0, 1, 2, 0, 1]
    assert train.loc[0, "Flow"] == "Flows/480p/a/00000.flo"
    assert Path(train.loc[0, "Image"]).is_absolute() and Path(train.loc[0, "GtMask"]).is_file()
    flow = read_flow(out / "Flows" / "480p" / "a" / "00001.flo")
    assert flow.shape == (2, *SIZE)
    assert np.median(flow[0][12:18, 9:19]) == pytest.approx(2.0, abs=0.6)  # the square moves right 2 px
    # What stseg-train, stseg-infer and stseg-eval read works as written.
    assert len(read_datasplit(out / "DAVIS2016", "val")) == 3
    (val,) = sequences_from_datasplit(out / "DAVIS2016", "val", out)
    assert val.name == "c" and all(p.is_file() for p in val.flows)
    masks = GroundTruth(data_file=out / "DAVIS2016", split="val", base_dir=out).masks("c", val.frame_names)
    assert all(m is not None and m.is_file() for m in masks)
    assert not (out / "DAVIS2016_test.csv").exists()
    # A rerun with the same settings keeps every flow; another scale recomputes them.
    before = (out / "Flows" / "480p" / "a" / "stseg-flow.json").read_bytes()
    result = _prepare(str(root), "--out", str(out), "--flow-method", "dis")
    assert "0 sequence(s) computed, 3 kept" in result.output
    assert (out / "Flows" / "480p" / "a" / "stseg-flow.json").read_bytes() == before
    result = _prepare(str(root), "--out", str(out), "--flow-method", "dis", "--flow-scale", "0.5")
    assert "3 sequence(s) computed, 0 kept" in result.output
    assert read_flow(out / "Flows" / "480p" / "a" / "00000.flo").shape == (2, 16, 24)
    marker = json.loads((out / "stseg-prepare.json").read_text())
    assert marker["flow_scale"] == 0.5 and marker["stseg"]["files"] == ["DAVIS2016_train.csv", "DAVIS2016_val.csv"]


def test_only_the_splits_asked_for_are_prepared(tmp_path: Path) -> None:
    root = davis_tree(tmp_path / "DAVIS", {"train": {"a": 4, "b": 3}, "val": {"c": 4}})
    out = tmp_path / "prep"
    result = _prepare(str(root), "--out", str(out), "--flow-method", "dis", "--split", "val")
    assert result.exit_code == 0, result.output
    assert "1 sequence(s) computed" in result.output
    assert sorted(p.name for p in (out / "Flows" / "480p").iterdir()) == ["c"]  # no flows for a, b
    assert (out / "DAVIS2016_val.csv").is_file() and not (out / "DAVIS2016_train.csv").exists()
    bad = _prepare(str(root), "--out", str(out), "--split", "test")
    assert bad.exit_code == 1 and "lists no test split (it has train, val)" in bad.output
    # The marker describes every CSV beside it: other flow settings for one split are refused.
    other = _prepare(str(root), "--out", str(out), "--flow-method", "farneback", "--split", "train")
    assert other.exit_code == 1 and "DAVIS2016_val.csv were prepared with other settings" in other.output
    assert "flow_method 'dis', now 'farneback'" in other.output and not (out / "DAVIS2016_train.csv").exists()
    assert not (out / "Flows" / "480p" / "a").exists()  # refused before any flow was computed
    same = _prepare(str(root), "--out", str(out), "--flow-method", "dis", "--split", "train")
    assert same.exit_code == 0, same.output
    marker = json.loads((out / "stseg-prepare.json").read_text())
    assert marker["stseg"]["files"] == ["DAVIS2016_train.csv", "DAVIS2016_val.csv"]


def test_default_flow_is_deepflow_dis_at_auto_scale(tmp_path: Path) -> None:
    """Defaults: DeepFlow and DIS averaged, frames taller than 240 rows shrunk to 240 (these 32-row frames are
    kept as they are); another engine or an explicit size recomputes."""
    root = davis_tree(tmp_path / "DAVIS", {"val": {"c": 3}})
    out = tmp_path / "prep"
    result = _prepare(str(root), "--out", str(out))
    assert result.exit_code == 0, result.output
    marker = json.loads((out / "stseg-prepare.json").read_text())
    assert (marker["flow_method"], marker["flow_scale"], marker["flow_size"]) == ("deepflow-dis", "auto", None)
    flow_marker = json.loads((out / "Flows" / "480p" / "c" / "stseg-flow.json").read_text())
    assert flow_marker["method"] == "deepflow-dis" and flow_marker["size"] is None
    assert read_flow(out / "Flows" / "480p" / "c" / "00000.flo").shape == (2, *SIZE)
    result = _prepare(str(root), "--out", str(out), "--flow-size", "16", "24")
    assert result.exit_code == 0 and "1 sequence(s) computed, 0 kept" in result.output
    assert read_flow(out / "Flows" / "480p" / "c" / "00000.flo").shape == (2, 16, 24)
    result = _prepare(str(root), "--out", str(out), "--flow-size", "16", "24", "--flow-scale", "0.5")
    assert result.exit_code == 2 and "give --flow-size or --flow-scale, not both" in result.output
    result = _prepare(str(root), "--out", str(out), "--flow-scale", "big")
    assert result.exit_code == 2 and "'auto' or a factor in (0, 4]" in result.output


def test_user_flows_are_used_as_they_are(tmp_path: Path) -> None:
    root = davis_tree(tmp_path / "DAVIS", {"val": {"c": 3}})
    for t in range(2):
        write_flow(tmp_path / "raft" / "c" / f"{t:05d}.flo", np.full((2, *SIZE), t, np.float32))
    result = _prepare(str(root), "--out", str(tmp_path / "prep"), "--flows", str(tmp_path / "raft"))
    assert result.exit_code == 0, result.output
    table = pd.read_csv(tmp_path / "prep" / "DAVIS2016_val.csv")
    assert list(table["Flow"]) == [str((tmp_path / "raft" / "c" / f"{t:05d}.flo").resolve()) for t in range(2)]
    assert not (tmp_path / "prep" / "Flows").exists()
    (tmp_path / "raft" / "c" / "00001.flo").unlink()
    result = _prepare(str(root), "--out", str(tmp_path / "prep2"), "--flows", str(tmp_path / "raft"))
    assert result.exit_code == 1 and "no flow for frame(s) 00001 of 'c'" in result.output


def test_bad_layouts_name_the_file(tmp_path: Path) -> None:
    root = davis_tree(tmp_path / "DAVIS", {"train": {"a": 3}})
    result = _prepare(str(root), "--out", str(tmp_path / "p"), "--resolution", "240p")
    assert result.exit_code == 1 and "ImageSets/240p: no such folder" in result.output and "ImageSets has 480p" in result.output


def test_a_failed_sequence_is_named_and_no_datasplit_is_written(tmp_path: Path) -> None:
    root = davis_tree(tmp_path / "DAVIS", {"train": {"a": 3, "b": 3}})
    (root / "JPEGImages" / "480p" / "b" / "00002.jpg").write_bytes(b"not a jpeg")
    result = _prepare(str(root), "--out", str(tmp_path / "prep"))
    assert result.exit_code == 1
    assert "failed: b: " in result.output and "00002.jpg" in result.output
    assert "1 of 2 sequence(s) failed (named above); no DataSplit written" in result.output
    assert not list((tmp_path / "prep").glob("*.csv"))
    assert (tmp_path / "prep" / "Flows" / "480p" / "a" / "stseg-flow.json").is_file()  # kept for the rerun


def test_a_csv_of_the_users_is_never_overwritten(tmp_path: Path) -> None:
    root = davis_tree(tmp_path / "DAVIS", {"val": {"c": 3}})
    (tmp_path / "prep").mkdir()
    (tmp_path / "prep" / "DAVIS2016_val.csv").write_text("mine")
    result = _prepare(str(root), "--out", str(tmp_path / "prep"))
    assert result.exit_code == 1 and "DAVIS2016_val.csv: exists and was not written by stseg-prepare" in result.output
    assert (tmp_path / "prep" / "DAVIS2016_val.csv").read_text() == "mine"


def test_davis2017_gives_datasplits_whose_masks_are_object_ids(tmp_path: Path) -> None:
    from stseg_deploy.eval.groundtruth import read_gt_objects

    root = davis2017_tree(tmp_path / "D17", {"train": {"dogs": 4}, "val": {"cows": 3}})
    out = tmp_path / "prep"
    result = _prepare(str(root), "--out", str(out), "--year", "2017", "--flow-method", "dis")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.csv")) == ["DAVIS2017_train.csv", "DAVIS2017_val.csv"]
    val = pd.read_csv(out / "DAVIS2017_val.csv")
    assert list(val["Sequence"]) == ["cows", "cows"] and val.loc[0, "Flow"] == "Flows/480p/cows/00000.flo"
    ids = read_gt_objects(Path(val.loc[1, "GtMask"]), SIZE)
    assert set(np.unique(ids)) == {0, 1, 2}
    assert json.loads((out / "stseg-prepare.json").read_text())["year"] == 2017
    # The 2016 reader does not read this layout, and says where it looked.
    result = _prepare(str(root), "--out", str(tmp_path / "p16"))
    assert result.exit_code == 1 and "ImageSets/480p: no such folder" in result.output and "--year 2017" in result.output


# -- FBMS-59 and SegTrackV2 ------------------------------------------------------------------


def _prepare_dataset(dataset: str, root: Path, out: Path, *args: str):
    return CliRunner().invoke(prepare_main, [dataset, str(root), "--out", str(out), "--flow-method", "dis", "--workers", "1", *args])


def test_fbms_to_flows_object_masks_and_datasplits(tmp_path: Path) -> None:
    from fbmstree import fbms_tree, squares

    root = fbms_tree(tmp_path / "FBMS")
    out = tmp_path / "prep"
    result = _prepare_dataset("fbms", root, out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.csv")) == ["FBMS_test.csv", "FBMS_train.csv", "FBMS_val.csv"]
    val = pd.read_csv(out / "FBMS_val.csv", keep_default_na=False)
    assert val.equals(pd.read_csv(out / "FBMS_test.csv", keep_default_na=False))
    tennis = val[val["Sequence"] == "tennis"]
    # Four frames, three flows; Def.dat annotates frames 0 and 3 (the last: no flow, no row).
    assert list(tennis["Flow"]) == [f"Flows/tennis/{t:05d}.flo" for t in range(3)]
    assert [Path(p).name for p in tennis["Image"]] == ["tennis454.jpg", "tennis455.jpg", "tennis456.jpg"]
    assert [Path(p).name if p else "" for p in tennis["GtMask"]] == ["00000.png", "", ""]
    assert (out / "GroundTruth" / "tennis" / "00003.png").is_file()
    assert "note: 1 sequence(s) annotate their last frame (tennis), which has no forward flow" in result.output
    bear = val[val["Sequence"] == "bear01"]
    masks = [Path(p) for p in bear["GtMask"] if p]
    assert [m.name for m in masks] == ["00000.png", "00002.png"] and masks[1].parent == (out / "GroundTruth" / "bear01").resolve()
    from stseg_deploy.io.masks import read_object_png

    ids = read_object_png(masks[1])
    first, second = squares(2)
    assert (ids[first] == 1).all() and (ids[second] == 2).all() and ids.sum() == 64 * 1 + 64 * 2
    marker = json.loads((out / "stseg-prepare.json").read_text())
    assert marker["dataset"] == "fbms" and marker["flow_method"] == "dis"


def test_fbms_processed_copy_goes_to_val_and_test(tmp_path: Path) -> None:
    from fbmstree import processed_tree

    out = tmp_path / "prep"
    result = _prepare_dataset("fbms", processed_tree(tmp_path / "FBMS_clean"), out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.csv")) == ["FBMS_test.csv", "FBMS_val.csv"]
    val = pd.read_csv(out / "FBMS_val.csv", keep_default_na=False)
    assert [Path(p).name if p else "" for p in val["GtMask"]][:3] == ["00000.png", "", "00002.png"]


def test_segtrackv2_every_frame_annotated_in_val_and_test(tmp_path: Path) -> None:
    from segtracktree import segtrack_tree

    out = tmp_path / "prep"
    result = _prepare_dataset("segtrackv2", segtrack_tree(tmp_path / "SegTrackv2"), out)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.glob("*.csv")) == ["SegTrackV2_test.csv", "SegTrackV2_val.csv"]
    val = pd.read_csv(out / "SegTrackV2_val.csv", keep_default_na=False)
    assert list(dict.fromkeys(val["Sequence"])) == ["frog", "cheetah", "bmx"]
    assert all(val["GtMask"]) and [Path(p).name for p in val[val["Sequence"] == "bmx"]["Image"]] == ["bmx_06668.png", "bmx_06669.png"]
    from stseg_deploy.io.masks import read_object_png

    cheetah = read_object_png(Path(val[val["Sequence"] == "cheetah"]["GtMask"].iloc[0]))
    assert set(np.unique(cheetah)) == {0, 1, 2}


@pytest.mark.parametrize("dataset", ["fbms", "segtrackv2"])
def test_a_broken_layout_is_one_line_and_writes_no_datasplit(tmp_path: Path, dataset: str) -> None:
    from fbmstree import fbms_tree
    from segtracktree import segtrack_tree

    if dataset == "fbms":
        root = fbms_tree(tmp_path / "FBMS")
        (root / "Testset" / "bear01" / "GroundTruth" / "bear01_0003_gt.ppm").unlink()
        expected = "bear01_0003_gt.ppm' not found in"
    else:
        root = segtrack_tree(tmp_path / "SegTrackv2")
        (root / "GroundTruth" / "frog" / "frog_00001.png").unlink()
        expected = "frog_00001"
    out = tmp_path / "prep"
    result = _prepare_dataset(dataset, root, out)
    assert result.exit_code == 1 and expected in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not out.exists() or not list(out.glob("*.csv"))


def test_an_unreadable_mask_stops_before_any_flow_and_writes_no_datasplit(tmp_path: Path) -> None:
    from fbmstree import fbms_tree

    root = fbms_tree(tmp_path / "FBMS")
    mask = root / "Testset" / "bear01" / "GroundTruth" / "bear01_0003_gt.ppm"
    mask.write_bytes(mask.read_bytes()[:40])  # the header survives, the pixels do not
    out = tmp_path / "prep"
    result = _prepare_dataset("fbms", root, out)
    assert result.exit_code == 1 and "bear01_0003_gt.ppm: not a readable mask" in result.output
    assert not (out / "Flows").exists() and not list(out.glob("*.csv"))


def test_one_sequence_listed_with_other_frames_in_two_splits_is_refused(tmp_path: Path) -> None:
    root = davis_tree(tmp_path / "DAVIS", {"train": {"a": 4}, "val": {"a": 3}})
    result = _prepare(str(root), "--out", str(tmp_path / "prep"), "--flow-method", "dis")
    assert result.exit_code == 1 and "two splits list sequence 'a' with other frames" in result.output
    assert not (tmp_path / "prep").exists()
