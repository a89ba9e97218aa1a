"""The files stseg-eval writes into OUT (scores.csv, summary.csv, objects.csv, eval.json):
what eval.json records, never overwriting a user's file, no stale scores after a failure,
one eval at a time."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from evalkit import eval_marker, gt_from_label, infer, object_gt, read_summary, run_eval
from fakes import FakeModel
from fakes import write_sequence as _write_sequence

from stseg_deploy.errors import StsegInputError
from stseg_deploy.output.folder import segment_to_folder
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.sources import sequences_from_folders


def test_eval_json_records_what_was_scored(outputs: Path) -> None:
    infer(outputs, "dog", 4, seed=3)
    gt_dir = gt_from_label(outputs, 0, skip=(4,))
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--allow-partial")
    assert result.exit_code == 0, result.output
    marker = eval_marker(outputs)
    assert marker["stseg"]["tool"] == "stseg-eval" and marker["stseg"]["complete"] is True
    assert marker["stseg"]["files"] == ["scores.csv", "summary.csv"]
    assert marker["sequences"]["scored"] == ["cat"]
    assert list(marker["sequences"]["skipped"]) == ["dog"]
    assert marker["frames"] == {"scored": 5, "without_gt": 1}
    assert marker["settings"]["gt_dir"] == str(gt_dir) and marker["settings"]["allow_partial"] is True
    assert marker["settings"]["binary"] == "optimax" and marker["settings"]["cut_size"] == "same"
    assert marker["model_file"] == {"sha256": None} and marker["n_labels"] == 3
    assert marker["overall_j"] == pytest.approx(read_summary(outputs).loc["overall", "jaccard_mean"])
    assert marker["partial"] is True and marker["error"] is None


def test_a_failed_or_partial_eval_keeps_the_earlier_scores(outputs: Path) -> None:
    gt_dir = gt_from_label(outputs, 0)
    out = outputs / "out"
    assert run_eval(outputs, "--gt-dir", str(gt_dir)).exit_code == 0
    before = {name: (out / name).read_bytes() for name in ("scores.csv", "summary.csv", "eval.json")}
    result = run_eval(outputs, "--gt-dir", str(outputs / "nothing"))
    assert result.exit_code == 1 and "nothing: ground-truth folder not found" in result.stderr
    assert {name: (out / name).read_bytes() for name in before} == before  # nothing touched
    # A run that scores nothing (here: no mask matches) lists its reasons but does not
    # replace scores that covered every sequence.
    (outputs / "empty" / "cat").mkdir(parents=True)
    result = run_eval(outputs, "--gt-dir", str(outputs / "empty"))
    assert result.exit_code == 1 and "cat" in result.stdout and "skipped" in result.stdout
    assert "holds an earlier eval that scored every sequence" in result.stderr and "--out DIR" in result.stderr
    assert {name: (out / name).read_bytes() for name in before} == before
    # ... which --out writes elsewhere, complete with its reasons.
    result = run_eval(outputs, "--gt-dir", str(outputs / "empty"), "--out", str(outputs / "elsewhere"))
    assert result.exit_code == 1 and "no sequence could be scored" in result.stderr
    assert read_summary_at(outputs / "elsewhere").loc["cat", "status"] == "skipped"
    assert {name: (out / name).read_bytes() for name in before} == before
    assert run_eval(outputs, "--gt-dir", str(gt_dir)).exit_code == 0
    assert eval_marker(outputs)["stseg"]["complete"] is True


def read_summary_at(folder: Path):
    import pandas as pd

    return pd.read_csv(folder / "summary.csv").set_index("sequence")


def test_a_users_csv_is_never_overwritten(outputs: Path) -> None:
    gt_dir = gt_from_label(outputs, 0)
    (outputs / "out" / "summary.csv").write_text("my numbers\n")
    result = run_eval(outputs, "--gt-dir", str(gt_dir))
    assert result.exit_code == 1
    assert f"{outputs / 'out' / 'summary.csv'}: not written by stseg-eval" in result.stderr
    assert (outputs / "out" / "summary.csv").read_text() == "my numbers\n"
    assert not (outputs / "out" / "eval.json").exists() and not (outputs / "out" / "scores.csv").exists()


def test_a_second_concurrent_eval_fails_at_once(outputs: Path) -> None:
    pytest.importorskip("fcntl")
    gt_dir = gt_from_label(outputs, 0)
    assert run_eval(outputs, "--gt-dir", str(gt_dir)).exit_code == 0
    before = (outputs / "out" / "eval.json").read_text()
    hold = "import fcntl, os, sys, time; fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT); " \
        "fcntl.flock(fd, fcntl.LOCK_EX); print('locked', flush=True); time.sleep(60)"
    holder = subprocess.Popen([sys.executable, "-c", hold, str(outputs / "out" / ".eval.lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        result = run_eval(outputs, "--gt-dir", str(gt_dir))
    finally:
        holder.kill()
        holder.wait()
    assert result.exit_code == 1 and "being written by another stseg process" in result.stderr
    assert (outputs / "out" / "eval.json").read_text() == before
    assert (outputs / "out" / "scores.csv").is_file()


def test_stale_temp_files_of_a_killed_eval_are_removed(outputs: Path) -> None:
    gt_dir = gt_from_label(outputs, 0)
    (outputs / "out" / ".summary.csv.abc123.tmp").write_text("half")
    assert run_eval(outputs, "--gt-dir", str(gt_dir)).exit_code == 0
    assert not (outputs / "out" / ".summary.csv.abc123.tmp").exists()


@pytest.mark.parametrize("name", ["scores.csv", "summary.csv", "objects.csv", "eval.json"])
def test_sequences_may_not_take_the_names_of_eval_files(tmp_path: Path, name: str) -> None:
    _write_sequence(tmp_path / "flows" / name, 4)
    with pytest.raises(StsegInputError, match=f"sequence name '{name}' is the name of a file stseg-eval writes"):
        segment_to_folder(Segmenter(FakeModel()), sequences_from_folders([tmp_path / "flows" / name])[0], tmp_path / "out")


def test_objects_csv_follows_the_eval_file_rules(outputs: Path) -> None:
    gt_dir = object_gt(outputs, lambda frame: frame.astype(np.uint8))
    out = outputs / "out"
    (out / "objects.csv").write_text("my objects\n")
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--objects")
    assert result.exit_code == 1 and f"{out / 'objects.csv'}: not written by stseg-eval" in result.stderr
    assert (out / "objects.csv").read_text() == "my objects\n"
    (out / "objects.csv").unlink()
    assert run_eval(outputs, "--gt-dir", str(gt_dir), "--objects").exit_code == 0
    assert (out / "objects.csv").is_file()
    # A run without --objects does not leave the earlier run's objects.csv as if it were its own.
    assert run_eval(outputs, "--gt-dir", str(gt_dir)).exit_code == 0
    assert not (out / "objects.csv").exists() and eval_marker(outputs)["objects"] is None
    assert run_eval(outputs, "--gt-dir", str(gt_dir), "--objects").exit_code == 0
    failed = run_eval(outputs, "--gt-dir", str(outputs / "nothing"), "--objects")
    assert failed.exit_code == 1 and (out / "objects.csv").is_file()  # the earlier run's, kept
    (out / ".objects.csv.abc123.tmp").write_text("half")  # a killed eval's temp file
    assert run_eval(outputs, "--gt-dir", str(gt_dir), "--objects").exit_code == 0
    assert not (out / ".objects.csv.abc123.tmp").exists()
    # Beside an eval.json of a run that neither wrote nor was asked for objects.csv, an
    # objects.csv is a user's: left alone without --objects, refused with it.
    assert run_eval(outputs, "--gt-dir", str(gt_dir)).exit_code == 0
    (out / "objects.csv").write_text("my objects\n")
    assert run_eval(outputs, "--gt-dir", str(gt_dir)).exit_code == 0
    assert (out / "objects.csv").read_text() == "my objects\n"
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--objects")
    assert result.exit_code == 1 and f"{out / 'objects.csv'}: not written by stseg-eval (not listed in its eval.json)" in result.stderr
    assert (out / "objects.csv").read_text() == "my objects\n"


def test_scores_are_not_written_inside_the_outputs_folder(outputs: Path) -> None:
    gt_dir = gt_from_label(outputs, 0)
    result = run_eval(outputs, "--gt-dir", str(gt_dir), "--out", str(outputs / "out" / "scores"))
    assert result.exit_code == 1 and "where every folder is read as a sequence's output" in result.stderr
    assert not (outputs / "out" / "scores").exists()
