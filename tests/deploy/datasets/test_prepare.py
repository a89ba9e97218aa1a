"""stseg_deploy.datasets.prepare: numbered frames, which flows are up to date, DataSplit rows,
user flows, and DataSplit files that never replace a user's CSV."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from davistree import SIZE, davis_tree

from stseg_deploy.datasets.davis import read_davis
from stseg_deploy.datasets.prepare import (
    compute_sequence_flows,
    datasplit_rows,
    flows_up_to_date,
    prepared_flow,
    user_flows,
    write_datasplits,
)
from stseg_deploy.errors import StsegInputError
from stseg_deploy.io.datasplit import COLUMNS
from stseg_deploy.io.flowio import write_flow
from stseg_deploy.io.outdir import StsegOutputError, write_marker


def _sequence(tmp_path: Path, n: int = 3):
    return read_davis(davis_tree(tmp_path / "DAVIS", {"train": {"a": n}}))["train"][0]


def test_flows_follow_the_listing_not_the_folder(tmp_path: Path) -> None:
    """A listing may leave frames out or name them in any way: the flows pair the listed
    frames, in listed order, and the record names them, so another listing is not "kept"."""
    from stseg_deploy.flow.recipe import FlowRecipe
    from stseg_deploy.io.flowfiles import FLOW_MARKER
    from stseg_deploy.io.outdir import read_record

    sequence = _sequence(tmp_path, n=4)
    (sequence.folder / "zz_extra.jpg").write_bytes((sequence.folder / "00000.jpg").read_bytes())
    listed = type(sequence)("a", (sequence.frames[0], sequence.frames[2], sequence.frames[3]))
    recipe = FlowRecipe("dis")
    folder = tmp_path / "flows" / "a"
    assert compute_sequence_flows(listed, folder, recipe) == "computed"
    record = read_record(folder / FLOW_MARKER)
    assert record["frames"] == ["00000.jpg", "00002.jpg", "00003.jpg"] and len(record["flows"]) == 2
    assert compute_sequence_flows(listed, folder, recipe) == "kept"
    assert compute_sequence_flows(sequence, folder, recipe) == "computed"  # four frames now


def test_flows_up_to_date_compares_every_setting(tmp_path: Path) -> None:
    folder, source = tmp_path / "flows", tmp_path / "frames"
    folder.mkdir()
    source.mkdir()
    frames = [source / "00000.jpg", source / "00001.jpg", source / "00002.jpg"]
    for frame in frames:
        frame.write_bytes(b"")
    record = {"source": str(source), "method": "dis", "size": [16, 24], "step": 1, "flows": ["00000.flo", "00001.flo"],
              "frames": [f.name for f in frames]}
    write_marker(folder / "stseg-flow.json", record, "stseg-flow", True, record["flows"])
    assert flows_up_to_date(folder, source, "dis", (16, 24), frames)
    assert not flows_up_to_date(folder, source, "deepflow", (16, 24), frames)
    assert not flows_up_to_date(folder, source, "dis", None, frames)
    assert not flows_up_to_date(folder, source, "dis", (16, 24), [*frames, source / "00003.jpg"])
    assert not flows_up_to_date(folder, source, "dis", (16, 24), frames[::-1])
    assert not flows_up_to_date(folder, tmp_path / "other", "dis", (16, 24), frames)
    # DeepFlow's flows (the default engine until 2026-12-07) are not the default deepflow-dis's.
    write_marker(folder / "stseg-flow.json", {**record, "method": "deepflow"}, "stseg-flow", True, record["flows"])
    assert flows_up_to_date(folder, source, "deepflow", (16, 24), frames)
    assert not flows_up_to_date(folder, source, "deepflow-dis", (16, 24), frames)
    write_marker(folder / "stseg-flow.json", record, "stseg-flow", True, record["flows"])
    # A record written before stseg-flow named its frames counts when the folder holds exactly them.
    del record["frames"]
    write_marker(folder / "stseg-flow.json", record, "stseg-flow", True, record["flows"])
    assert flows_up_to_date(folder, source, "dis", (16, 24), frames)
    (source / "00003.jpg").write_bytes(b"")
    assert not flows_up_to_date(folder, source, "dis", (16, 24), frames)
    write_marker(folder / "stseg-flow.json", record, "stseg-flow", False, [])
    assert not flows_up_to_date(folder, source, "dis", (16, 24), frames)  # an unfinished run


def test_datasplit_rows_and_user_flows(tmp_path: Path) -> None:
    sequence = _sequence(tmp_path)
    mine = tmp_path / "raft" / "a"
    for t in range(3):  # one more than needed: the last frame's flow is never used
        write_flow(mine / f"{t:05d}.flo", np.zeros((2, *SIZE), np.float32))
    flows = user_flows(sequence, mine)
    assert [p.name for p in flows] == ["00000.flo", "00001.flo"]
    table = datasplit_rows([sequence], {"a": flows}, base_dir=tmp_path)
    assert list(table.columns) == list(COLUMNS)
    assert table["Flow"].tolist() == ["raft/a/00000.flo", "raft/a/00001.flo"]  # relative to base_dir
    assert table["Sequence_Index"].tolist() == [0, 1] and set(table["Sequence"]) == {"a"}
    assert table["GtMask"][1] == str(sequence.frames[1].mask.resolve())
    outside = datasplit_rows([sequence], {"a": flows}, base_dir=tmp_path / "elsewhere")
    assert Path(outside["Flow"][0]).is_absolute()
    (mine / "00001.flo").unlink()
    with pytest.raises(StsegInputError, match=r"raft/a: no flow for frame\(s\) 00001 of 'a' \(a flow is named after its frame's file"):
        user_flows(sequence, mine)
    # Frames named otherwise (FBMS's bear01_0001.jpg): flows named after them, or after their positions.
    renamed = type(sequence)("a", tuple(dataclasses.replace(f, name=f"a_{t + 1:04d}") for t, f in enumerate(sequence.frames)))
    write_flow(mine / "a_0002.flo", np.zeros((2, *SIZE), np.float32))
    assert [p.name for p in user_flows(renamed, mine)] == ["00000.flo", "a_0002.flo"]
    write_flow(mine / "a_0001.flo", np.zeros((2, *SIZE), np.float32))
    assert [p.name for p in user_flows(renamed, mine)] == ["a_0001.flo", "a_0002.flo"]  # the frame's name first
    with pytest.raises(StsegInputError, match=r"no flow folder for sequence 'a'"):
        user_flows(sequence, tmp_path / "nowhere")


def test_write_datasplits_keeps_its_own_files_and_refuses_a_users(tmp_path: Path) -> None:
    out = tmp_path / "prep"
    table = pd.DataFrame([{"Flow": "f.flo", "GtMask": "", "Image": "i.jpg", "Sequence": "a", "Sequence_Index": 0}], columns=COLUMNS)
    write_datasplits(out, "D", {"train": table}, {"why": 1})
    write_datasplits(out, "D", {"val": table}, {"why": 2})  # a second split joins the first
    marker = json.loads((out / "stseg-prepare.json").read_text())
    assert marker["stseg"]["files"] == ["D_train.csv", "D_val.csv"] and marker["why"] == 2
    pd.testing.assert_frame_equal(pd.read_csv(out / "D_val.csv", keep_default_na=False), table)
    (out / "E_train.csv").write_text("mine")
    with pytest.raises(StsegOutputError, match=r"E_train.csv: exists and was not written by stseg-prepare"):
        write_datasplits(out, "E", {"train": table}, {})
    assert (out / "E_train.csv").read_text() == "mine"


def test_prepared_flow_is_read_from_the_stseg_prepare_marker(tmp_path: Path) -> None:
    assert prepared_flow(str(tmp_path / "DAVIS2016")) is None  # no marker: flows of unknown origin
    marker = tmp_path / "stseg-prepare.json"
    marker.write_text(json.dumps({"flow_method": "deepflow", "flow_size": None, "flow_scale": "auto"}))
    assert prepared_flow(str(tmp_path / "DAVIS2016")) == {"method": "deepflow", "size": None, "scale": "auto"}
    marker.write_text(json.dumps({"flows": "/raft", "flow_method": None, "flow_size": None, "flow_scale": None}))
    assert prepared_flow(str(tmp_path / "DAVIS2016")) is None  # the user's own flows
