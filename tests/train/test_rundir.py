"""stseg_train.rundir: an earlier run is refused by name or cleared on request, and the CSVs
are trimmed back to what the checkpoint holds, so a stopped run's logs read as a straight one's."""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path

import pandas as pd
import pytest

from stseg_train import rundir
from stseg_train.rundir import METRICS_COLUMNS, RUN_FILES


def _touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text("x")


def _metric(epoch: int, step: int) -> dict:
    return rundir.metrics_row(epoch, step, [0.5], 0.25, 0.75, 1.0)


def _result(epoch: int, step: int, split: str = "val", flow: str = "f") -> dict:
    return {"epoch": epoch, "step": step, "split": split, "flow": flow, "loss": 0.1}


def test_an_empty_or_foreign_folder_is_taken_as_it_is(tmp_path: Path) -> None:
    rundir.refuse_or_clear_earlier_run(tmp_path / "new", overwrite=False)
    _touch(tmp_path, "notes.txt", "config.json")
    rundir.refuse_or_clear_earlier_run(tmp_path, overwrite=False)
    assert (tmp_path / "notes.txt").exists()


def test_a_run_with_last_pt_is_refused_naming_the_folder_and_both_ways_out(tmp_path: Path) -> None:
    _touch(tmp_path, "checkpoints/last.pt", "metrics.csv")
    with pytest.raises(FileExistsError) as caught:
        rundir.refuse_or_clear_earlier_run(tmp_path, overwrite=False)
    assert str(caught.value) == (
        f"{tmp_path} already holds a training run ({tmp_path / 'checkpoints' / 'last.pt'}); "
        "resume it (--resume) or start again and delete it (--overwrite)"
    )
    assert (tmp_path / "checkpoints/last.pt").exists()


def test_files_of_a_run_without_last_pt_are_refused_by_name(tmp_path: Path) -> None:
    _touch(tmp_path, "results.csv", "checkpoints/best.pt")
    with pytest.raises(FileExistsError, match="no last.pt to resume") as caught:
        rundir.refuse_or_clear_earlier_run(tmp_path, overwrite=False)
    assert str(caught.value).startswith(f"{tmp_path} holds files of an earlier run")
    assert "(checkpoints/best.pt, results.csv)" in str(caught.value)


def test_overwrite_deletes_the_runs_files_and_nothing_else(tmp_path: Path) -> None:
    _touch(tmp_path, *RUN_FILES, "config.json", "notes.txt", "checkpoints/other.pt")
    rundir.refuse_or_clear_earlier_run(tmp_path, overwrite=True)
    assert not any((tmp_path / name).exists() for name in RUN_FILES)
    assert all((tmp_path / name).exists() for name in ("config.json", "notes.txt", "checkpoints/other.pt"))


def test_metrics_rows_and_file() -> None:
    row = rundir.metrics_row(2, 30, [1.0, 2.0], 0.5, 0.25, 12.34567)
    assert list(row) == METRICS_COLUMNS
    assert row == {"epoch": 2, "step": 30, "train_loss": 1.5, "val_loss": 0.5, "val_jaccard": 0.25, "seconds": 12.346}
    assert math.isnan(rundir.metrics_row(0, 0, [], 0.5, 0.25, 0.0)["train_loss"])  # no step taken this epoch


def test_metrics_csv_is_rewritten_whole_with_its_columns(tmp_path: Path) -> None:
    rundir.write_metrics(tmp_path, [])
    assert (tmp_path / "metrics.csv").read_text().splitlines() == [",".join(METRICS_COLUMNS)]
    rundir.write_metrics(tmp_path, [_metric(0, 3), _metric(1, 6)])
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert list(metrics.columns) == METRICS_COLUMNS and list(metrics["step"]) == [3, 6]


def test_results_are_appended_under_one_header(tmp_path: Path) -> None:
    rundir.append_results(tmp_path, pd.DataFrame([_result(0, 3)]))
    rundir.append_results(tmp_path, pd.DataFrame([_result(1, 6), _result(1, 6, flow="g")]))
    lines = (tmp_path / "results.csv").read_text().splitlines()
    assert lines == ["epoch,step,split,flow,loss", "0,3,val,f,0.1", "1,6,val,f,0.1", "1,6,val,g,0.1"]


def test_rows_the_checkpoint_never_saw_are_dropped_with_a_warning(tmp_path: Path, caplog) -> None:
    known = [_metric(0, 3), _metric(1, 4)]  # epoch 1 stopped at step 4 (a partial epoch)
    rundir.write_metrics(tmp_path, [*known, _metric(1, 6)])
    rows = [
        _result(0, 2, "train"), _result(0, 3, "train"), _result(0, 3),
        _result(1, 4, "train"), _result(1, 4),  # the partial epoch: stays
        _result(1, 5, "train"), _result(1, 6, "train"), _result(1, 6),  # after last.pt: dropped
    ]
    rundir.append_results(tmp_path, pd.DataFrame(rows))
    with caplog.at_level(logging.WARNING, logger="stseg_train.trainer"):
        rundir.sync_logs_with_checkpoint(tmp_path, known)
    results = pd.read_csv(tmp_path / "results.csv")
    assert list(zip(results["step"], results["split"])) == [(2, "train"), (3, "train"), (3, "val"), (4, "train"), (4, "val")]
    assert list(pd.read_csv(tmp_path / "metrics.csv")["step"]) == [3, 4]
    (record,) = caplog.records
    assert record.name == "stseg_train.trainer" and record.getMessage() == (
        f"{tmp_path / 'results.csv'}: dropping 3 row(s) of epoch(s) [1] that {tmp_path / 'checkpoints' / 'last.pt'} "
        "does not hold (the run stopped before saving it); they are redone now"
    )


def test_logs_that_match_the_checkpoint_are_left_as_they_are(tmp_path: Path, caplog) -> None:
    rundir.sync_logs_with_checkpoint(tmp_path, [])  # a new run: nothing written
    assert not (tmp_path / "metrics.csv").exists() and not (tmp_path / "results.csv").exists()
    rundir.append_results(tmp_path, pd.DataFrame([_result(0, 3)]))
    before = (tmp_path / "results.csv").read_bytes()
    with caplog.at_level(logging.WARNING):
        rundir.sync_logs_with_checkpoint(tmp_path, [_metric(0, 3)])
    assert (tmp_path / "results.csv").read_bytes() == before and not caplog.records


def test_a_results_file_without_a_header_is_removed(tmp_path: Path) -> None:
    (tmp_path / "results.csv").write_text("")
    rundir.sync_logs_with_checkpoint(tmp_path, [])
    assert not (tmp_path / "results.csv").exists()


def test_a_run_resumes_only_with_the_processes_that_trained_it(tmp_path: Path) -> None:
    last = tmp_path / "last.pt"
    rundir.refuse_other_world_size(last, 2, 2)
    with pytest.raises(ValueError, match=r"trained by 1 process\(es\), resumed by 2; resume it with 1 \(plain stseg-train,"):
        rundir.refuse_other_world_size(last, 1, 2)
    with pytest.raises(ValueError, match=rf"resume it with 4 \(torchrun --nproc-per-node 4, .* --init {re.escape(str(last))}$"):
        rundir.refuse_other_world_size(last, 4, 1)
