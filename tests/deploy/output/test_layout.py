"""Tests for the OUT folder format (stseg_deploy.output.layout): its names, its readers, its layering."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stseg_deploy.errors import StsegInputError
from stseg_deploy.output import layout as results


def test_scoring_and_drawing_an_output_never_load_the_inference_pipeline() -> None:
    """stseg-eval, the DAVIS-2017 export and the contact sheet read OUT through results, not
    through the writer: importing them loads no model runtime, source or sink."""
    code = (
        "import sys\n"
        "import stseg_deploy.eval.evaluation, stseg_deploy.eval.scorefiles, stseg_deploy.eval.davis17\n"
        "import stseg_deploy.viz.contact_sheet\n"
        "banned = ('stseg_deploy.pipeline', 'stseg_deploy.output.folder', 'stseg_deploy.output.sinks', 'stseg_deploy.sources',\n"
        "          'stseg_deploy.runtime', 'onnxruntime')\n"
        "print(sorted(m for m in sys.modules if m in banned))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_sequence_names_that_stseg_eval_writes_are_refused(tmp_path: Path) -> None:
    for name in results.EVAL_FILES:
        with pytest.raises(StsegInputError, match="stseg-eval writes"):
            results.sequence_output_unit(tmp_path, name)
    unit = results.sequence_output_unit(tmp_path, "bear")
    assert unit.target == tmp_path / "bear" and unit.marker == results.SEQUENCE_FILE
    assert results.CONTACT_SHEET in unit.also_ours


def test_recorded_settings_of_outputs_written_before_the_stages() -> None:
    before = results.recorded_settings({})
    assert [stage.mode for stage in before.stages()] == ["none", "none", "optimal", "none", "none", "none"]
    record = {"settings": {"tta": "flip", "refine": "guided", "guided": {"radius": 64}, "split": "motion", "motion_split": {"extra": 4},
                           "cut_size": 5, "link": "naive"}}
    got = results.recorded_settings(record)
    assert (got.tta.mode, got.refine.mode, got.refine.radius, got.split.mode, got.split.extra) == ("flip", "guided", 64.0, "motion", 4)
    assert got.split.form == 1  # the first split recorded no form
    assert (got.link.mode, got.link.cut_size, got.carry.mode, got.foreground.mode) == ("naive", 5, "none", "none")
    record["settings"].update(carry="forward", temporal_carry={"weight": 0.8})
    assert results.recorded_settings(record).carry.weight == 0.8
    record["settings"]["carry"] = "sideways"
    with pytest.raises(ValueError, match=r"seq/sequence.json: carry must be one of"):
        results.recorded_settings(record, "seq/sequence.json")


def test_record_objects_and_object_id_maps() -> None:
    record = {"frames": ["a", "b"], "n_labels": 3, "settings": {"foreground": "motion"}, "objects": [[1], [0, 2]]}
    chosen = results.record_objects(record)
    assert chosen.tolist() == [[False, True, False], [True, False, True]]
    maps = np.array([[[0, 1], [2, 1]], [[0, 1], [2, 2]]], dtype=np.uint8)
    ids = results.object_id_maps(maps, chosen)
    assert ids.dtype == np.uint8
    assert ids.tolist() == [[[0, 2], [0, 2]], [[1, 0], [3, 3]]]
    assert results.record_objects({"frames": ["a"], "n_labels": 3, "settings": {}}) is None  # decided nowhere
    for bad in ([[1]], [[1], [3]], [[1], ["x"]], [[True], [1]], None):
        with pytest.raises(ValueError, match="where.json: 'objects'"):
            results.record_objects({**record, "objects": bad}, "where.json")


def _fake_output(folder: Path, labels: np.ndarray, complete: bool = True) -> None:
    """A minimal sequence folder as stseg-infer writes it (labels.npy and a marked record)."""
    from stseg_deploy.io.outdir import write_marker

    folder.mkdir(parents=True)
    np.save(folder / results.LABELS_FILE, labels)
    record = {"sequence": folder.name, "frames": [f"{i:05d}" for i in range(len(labels))], "original_size": [4, 6]}
    write_marker(folder / results.SEQUENCE_FILE, record, results.TOOL, complete, [results.LABELS_FILE])


def test_read_and_scan_a_folder_of_outputs(tmp_path: Path) -> None:
    labels = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3) % 4
    _fake_output(tmp_path / "out" / "bear", labels)
    _fake_output(tmp_path / "out" / "boat", labels, complete=False)
    (tmp_path / "out" / "notes").mkdir()
    read, record = results.read_sequence_output(tmp_path / "out" / "bear")
    np.testing.assert_array_equal(read, labels)
    maps, _ = results.read_label_maps(tmp_path / "out" / "bear")  # upsampled x2, nearest
    np.testing.assert_array_equal(maps, labels.repeat(2, axis=1).repeat(2, axis=2))
    scan = results.scan_outputs(tmp_path / "out")
    assert list(scan.complete) == ["bear"] and scan.complete["bear"][1]["frames"] == record["frames"]
    assert [(s.sequence, s.reason) for s in scan.skipped] == [
        ("boat", results.NOT_COMPLETE),
        ("notes", results.NOT_COMPLETE),
    ]
    with pytest.raises(FileNotFoundError, match="not marked as a complete stseg-infer output"):
        results.read_sequence_output(tmp_path / "out" / "boat")


def test_labels_that_disagree_with_the_record_are_named(tmp_path: Path) -> None:
    _fake_output(tmp_path / "bear", np.zeros((2, 2, 3), np.uint8))
    np.save(tmp_path / "bear" / results.LABELS_FILE, np.zeros((3, 2, 3), np.uint8))
    with pytest.raises(ValueError, match=r"labels\.npy: shape \(3, 2, 3\) does not match the 2 frames"):
        results.read_sequence_output(tmp_path / "bear")
    (tmp_path / "bear" / results.SEQUENCE_FILE).write_text("{not json")
    with pytest.raises(ValueError, match="corrupt JSON"):
        results.read_sequence_output(tmp_path / "bear")
