"""Tests of writing synthetic videos as a DataSplit (stseg_synth.datasplit)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from stseg_deploy.eval.multiobject import score_objects
from stseg_deploy.io.datasplit import read_datasplit, resolve, window_centres
from stseg_deploy.io.flowio import read_flow
from stseg_deploy.io.masks import read_label_png, read_mask_png, read_object_png
from stseg_synth.datasplit import write_synth_split
from stseg_synth.flows import sequence_rng, synth_sequence


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_split_reads_back(tmp_path: Path) -> None:
    out = tmp_path / "synth"
    prefix = write_synth_split(out, n_sequences=5, n_frames=4, size=(16, 24), seed=11, val_fraction=0.2,
                               test_fraction=0.2)
    assert prefix == out / "DataSplit" / "Synth"
    seen: dict[str, list[str]] = {}
    for split in ("train", "val", "test"):
        table = read_datasplit(prefix, split)
        assert list(table.columns[:5]) == ["Flow", "GtMask", "Image", "Sequence", "Sequence_Index"]
        assert table["Image"].isna().all()
        seen[split] = sorted(table["Sequence"].unique())
        assert len(window_centres(table)) == len(seen[split]) * (4 - 2)
        for row in table.itertuples():
            assert not Path(row.Flow).is_absolute()
            flow_path, mask_path = resolve(out, row.Flow), resolve(out, row.GtMask)
            assert flow_path.is_file() and mask_path.is_file()
            k = int(row.Sequence[3:])
            seq = synth_sequence(sequence_rng(11, k), 4, (16, 24))
            np.testing.assert_array_equal(read_flow(flow_path), seq.flows[row.Sequence_Index])
            np.testing.assert_array_equal(read_mask_png(mask_path), seq.foreground[row.Sequence_Index])
            labels = read_label_png(out / "Labels" / row.Sequence / f"{row.Sequence_Index:05d}.png")
            np.testing.assert_array_equal(labels, seq.layers[row.Sequence_Index])
            # GtMask is the object-id map: binary readers see the foreground, stseg-eval
            # --objects each object; the 0/255 copy stays in Annotations/.
            assert row.GtMask == f"Labels/{row.Sequence}/{row.Sequence_Index:05d}.png"
            np.testing.assert_array_equal(read_object_png(mask_path), seq.layers[row.Sequence_Index])
            annotation = out / "Annotations" / row.Sequence / f"{row.Sequence_Index:05d}.png"
            np.testing.assert_array_equal(read_mask_png(annotation), seq.foreground[row.Sequence_Index])
            np.testing.assert_array_equal(read_object_png(annotation), seq.foreground[row.Sequence_Index])
    assert seen == {"train": ["seq000", "seq001", "seq002"], "val": ["seq003"], "test": ["seq004"]}
    params = json.loads((out / "synth.json").read_text())
    assert params["seed"] == 11 and params["size"] == [16, 24] and params["n_frames"] == 4
    assert params["splits"]["val"] == ["seq003"] and not params["test_reuses_val"]
    assert set(params["sequences"]) == {f"seq{k:03d}" for k in range(5)}


def test_per_object_ground_truth_scores_objects_separately(tmp_path: Path) -> None:
    prefix = write_synth_split(tmp_path, 1, 4, (16, 24), seed=3, n_objects=3)
    table = read_datasplit(prefix, "val")
    objects = np.stack([read_object_png(resolve(tmp_path, m)) for m in table["GtMask"]])
    layers = synth_sequence(sequence_rng(3, 0), 4, (16, 24), n_objects=3).layers
    np.testing.assert_array_equal(objects, layers)
    # The object-id maps score a perfect segmentation as 1, and one that merges every object
    # into one segment below 1, which the binary foreground mask cannot tell apart.
    scored = np.ones(4, bool)
    assert score_objects(layers, objects, scored, 4).j.tolist() == [1.0, 1.0, 1.0]
    merged = score_objects((layers > 0).astype(np.uint8), objects, scored, 4)
    assert merged.n_objects == 3 and merged.mean < 1.0 and merged.naive_shared.all()
    assert json.loads((tmp_path / "synth.json").read_text())["format_version"] == 2


def test_written_files_are_deterministic(tmp_path: Path) -> None:
    kwargs = {"n_sequences": 3, "n_frames": 3, "size": (16, 16)}
    first = _all_files(Path(write_synth_split(tmp_path / "a", seed=5, **kwargs)).parents[1])
    second = _all_files(Path(write_synth_split(tmp_path / "b", seed=5, **kwargs)).parents[1])
    other = _all_files(Path(write_synth_split(tmp_path / "c", seed=6, **kwargs)).parents[1])
    assert first == second
    assert first.keys() == other.keys()
    assert first["Flows/seq000/00000.flo"] != other["Flows/seq000/00000.flo"]
    assert first["DataSplit/Synth_train.csv"] == other["DataSplit/Synth_train.csv"]  # same layout


def test_sequence_does_not_depend_on_sequence_count(tmp_path: Path) -> None:
    two = _all_files(write_synth_split(tmp_path / "two", 2, 3, (16, 16), seed=9).parents[1])
    four = _all_files(write_synth_split(tmp_path / "four", 4, 3, (16, 16), seed=9).parents[1])
    for key, data in two.items():
        if "seq001" in key:
            assert four[key] == data


def test_split_assignment(tmp_path: Path) -> None:
    def splits(n, **kwargs):
        prefix = write_synth_split(tmp_path / f"n{n}_{len(kwargs)}", n, 3, (8, 8), seed=0, **kwargs)
        return {s: sorted(read_datasplit(prefix, s)["Sequence"].unique()) for s in ("train", "val", "test")}

    # One sequence serves all three splits.
    assert splits(1) == {"train": ["seq000"], "val": ["seq000"], "test": ["seq000"]}
    # Two sequences: train and val one each even with val_fraction 0; test repeats val.
    assert splits(2, val_fraction=0.0) == {"train": ["seq000"], "val": ["seq001"], "test": ["seq001"]}
    got = splits(10, val_fraction=0.2, test_fraction=0.1)
    assert got["train"] == [f"seq{k:03d}" for k in range(7)]
    assert got["val"] == ["seq007", "seq008"] and got["test"] == ["seq009"]
    assert json.loads((tmp_path / "n1_0" / "synth.json").read_text())["splits"]["test"] == ["seq000"]


def test_rewrite_removes_stale_frames(tmp_path: Path) -> None:
    write_synth_split(tmp_path, 1, 5, (8, 8), seed=0)
    write_synth_split(tmp_path, 1, 3, (8, 8), seed=0)
    for folder, suffix in (("Flows", ".flo"), ("Annotations", ".png"), ("Labels", ".png")):
        names = sorted(p.name for p in (tmp_path / folder / "seq000").iterdir())
        assert names == [f"{t:05d}{suffix}" for t in range(3)]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_sequences": 0},
        {"n_frames": 2},
        {"size": (8, 4)},
        {"seed": -1},
        {"val_fraction": 1.0},
        {"val_fraction": -0.1},
        {"test_fraction": 1.5},
        {"val_fraction": 0.5, "test_fraction": 0.5},
        {"name": ""},
        {"name": "a/b"},
        {"n_objects": 0},
        {"n_sequences": None},
        {"seed": 1.5},
        {"val_fraction": float("nan")},
    ],
)
def test_write_synth_split_rejects_bad_arguments(tmp_path: Path, kwargs) -> None:
    args = {"n_sequences": 2, "n_frames": 3, "size": (8, 8), "seed": 0} | kwargs
    with pytest.raises(ValueError):
        write_synth_split(tmp_path / "out", **args)
    assert not (tmp_path / "out").exists()  # arguments are checked before anything is written
