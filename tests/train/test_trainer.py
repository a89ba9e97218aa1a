"""The training loop on a tiny synthetic split: outputs, stopping, exact resume."""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from stseg_synth.datasplit import write_synth_split
from stseg_train.checkpoint import load_checkpoint, model_from_checkpoint
from stseg_train.cli import train_main
from stseg_train.config import TrainConfig
from stseg_train.dataset import FlowWindowDataset
from stseg_train.trainer import Trainer


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synth")
    prefix = write_synth_split(root, n_sequences=4, n_frames=6, size=(16, 24), seed=1, val_fraction=0.25)
    return prefix, root


def _config(split, save_dir: Path, **overrides) -> TrainConfig:
    prefix, root = split
    options = dict(
        data_file=str(prefix), base_dir=str(root), save_dir=str(save_dir), image_size=(16, 24),
        features_start=4, batch_size=4, epochs=2, workers=0, lr=1e-3,
    )
    options.update(overrides)
    return TrainConfig(**options)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["model"]


def test_training_writes_everything(split, tmp_path: Path) -> None:
    trainer = Trainer(_config(split, tmp_path / "run"))
    summary = trainer.fit()
    assert summary["stopped_by"] == "epochs" and summary["steps"] == 2 * 3  # 12 windows / 4
    run = tmp_path / "run"
    metrics = pd.read_csv(run / "metrics.csv")
    assert list(metrics.columns[:6]) == ["epoch", "step", "train_loss", "val_loss", "val_jaccard", "seconds"]
    assert list(metrics["epoch"]) == [0, 1] and metrics["val_jaccard"].between(0, 1).all()
    results = pd.read_csv(run / "results.csv")
    assert set(results["epoch"]) == {0, 1} and len(results) == 2 * len(trainer.val_set)
    assert {"flow", "loss", "masks_used", "jaccard_fair", "jaccard_exceptbiggest"} <= set(results.columns)
    assert (run / "config.json").is_file()
    model, payload = model_from_checkpoint(run / "checkpoints" / "best.pt")
    assert payload["config"]["image_size"] == [16, 24] and model.n_labels == 4
    assert payload["best_val_loss"] == pytest.approx(metrics["val_loss"].min())


def test_resume_continues_exactly(split, tmp_path: Path) -> None:
    straight = Trainer(_config(split, tmp_path / "a"))
    straight.fit()
    # Stop mid-epoch 1 (step 4 of 6), then resume to the end.
    first = Trainer(_config(split, tmp_path / "b", max_steps=4))
    assert first.fit()["stopped_by"] == "max_steps"
    assert (first.epoch, first.batch_in_epoch) == (1, 1)
    second = Trainer(_config(split, tmp_path / "b"), resume=True)
    assert second.fit()["steps"] == 6
    a, b = _weights(tmp_path / "a/checkpoints/last.pt"), _weights(tmp_path / "b/checkpoints/last.pt")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)


def test_interrupt_leaves_valid_last(split, tmp_path: Path) -> None:
    trainer = Trainer(_config(split, tmp_path / "run"))

    def interrupt(info) -> None:
        if info.step == 2:
            trainer.stop_request.requested = True  # what the first Ctrl-C does

    summary = trainer.fit(interrupt)
    assert summary["stopped_by"] == "interrupted" and summary["steps"] == 2
    payload = load_checkpoint(tmp_path / "run/checkpoints/last.pt")
    assert payload["global_step"] == 2 and payload["batch_in_epoch"] == 2
    resumed = Trainer(_config(split, tmp_path / "run", epochs=1), resume=True)
    assert resumed.fit()["steps"] == 3


def test_missing_files_are_skipped_with_one_warning(split, tmp_path: Path, caplog) -> None:
    prefix, root = split
    table = pd.read_csv(f"{prefix}_train.csv")
    table.loc[2, "Flow"] = "Flows/nowhere/00002.flo"
    table.to_csv(tmp_path / "Broken_train.csv", index=False)
    with caplog.at_level(logging.WARNING):
        dataset = FlowWindowDataset(tmp_path / "Broken", "train", root, (16, 24))
    warnings = [r for r in caplog.records if "skipped" in r.getMessage()]
    assert len(warnings) == 1
    assert "3 window(s) with missing flow files" in warnings[0].getMessage()
    assert len(dataset) == 12 - 3
    item = dataset[0]
    assert item["flow"].shape == (2, 3, 16, 24) and item["gt"].dtype == torch.bool


def test_cli_resume_refuses_changed_options(split, tmp_path: Path) -> None:
    prefix, root = split
    base = [
        "--data-file", str(prefix), "--base-dir", str(root), "--save-dir", str(tmp_path / "run"),
        "--image-size", "16", "24", "--features-start", "4", "--batch-size", "4", "--workers", "0",
    ]
    result = CliRunner().invoke(train_main, [*base, "--max-steps", "1"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(train_main, [*base, "--resume", "--lr", "0.5", "--max-steps", "2"])
    assert result.exit_code != 0 and "lr differ" in result.output
    result = CliRunner().invoke(train_main, [*base, "--resume", "--max-steps", "2"])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(tmp_path / "run/checkpoints/last.pt")["global_step"] == 2


def test_bad_config_is_refused() -> None:
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        TrainConfig(data_file="d", base_dir="b", save_dir="s", batch_size=0)


def test_existing_run_is_neither_mixed_nor_lost(split, tmp_path: Path, monkeypatch) -> None:
    prefix, root = split
    run = tmp_path / "run"
    common = [
        "--base-dir", str(root), "--image-size", "16", "24", "--features-start", "4",
        "--batch-size", "4", "--workers", "0",
    ]
    first = ["--data-file", str(prefix), "--save-dir", str(run), *common, "--max-steps", "1"]
    runner = CliRunner()
    assert runner.invoke(train_main, first).exit_code == 0
    rows_one_run = len(pd.read_csv(run / "results.csv"))
    again = runner.invoke(train_main, first)
    assert again.exit_code == 2 and "already holds a training run" in again.output
    assert runner.invoke(train_main, [*first, "--overwrite", "--seed", "5"]).exit_code == 0
    results = pd.read_csv(run / "results.csv")
    assert len(results) == rows_one_run and set(results["step"]) == {1}  # only the new run's rows
    assert load_checkpoint(run / "checkpoints/last.pt")["config"]["seed"] == 5
    # The same folders written differently (relative, trailing slash) still resume.
    monkeypatch.chdir(root.parent)
    relative = [
        "--data-file", str(Path(prefix).relative_to(root.parent)), "--save-dir", f"{run}/", *common,
        "--seed", "5", "--max-steps", "2", "--resume",
    ]
    result = runner.invoke(train_main, relative)
    assert result.exit_code == 0, result.output
    assert load_checkpoint(run / "checkpoints/last.pt")["global_step"] == 2


def test_resume_without_a_run_is_a_clear_error(split, tmp_path: Path) -> None:
    prefix, root = split
    result = CliRunner().invoke(train_main, [
        "--data-file", str(prefix), "--base-dir", str(root), "--save-dir", str(tmp_path / "none"), "--resume",
    ])
    assert result.exit_code == 1 and "last.pt: checkpoint not found" in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped error


def test_bad_files_and_names_fail_cleanly(split, tmp_path: Path) -> None:
    import shutil

    import numpy as np

    prefix, root = split
    data = tmp_path / "data"
    shutil.copytree(root, data)
    flows = sorted((data / "Flows").glob("*/*.flo"))
    truncated = flows[1]
    truncated.write_bytes(truncated.read_bytes()[:100])
    nan_flow = np.zeros((2, 16, 24), np.float32)
    nan_flow[0, 0, 0] = np.nan
    # A NaN passes the header check and is only found when the file is read mid-epoch.
    bad = flows[8]
    bad.write_bytes(b"PIEH" + np.array([24, 16], "<i4").tobytes() + nan_flow.transpose(1, 2, 0).astype("<f4").tobytes())
    split_prefix = data / "DataSplit" / Path(prefix).name
    dataset = FlowWindowDataset(split_prefix, "train", data, (16, 24))
    assert len(dataset) < 12  # windows holding the truncated file are gone
    runner = CliRunner()
    base = [
        "--data-file", str(split_prefix), "--base-dir", str(data), "--image-size", "16", "24",
        "--features-start", "4", "--batch-size", "2", "--workers", "0", "--epochs", "2",
    ]
    result = runner.invoke(train_main, [*base, "--save-dir", str(tmp_path / "a"), "--flow-augmentation", "globalmotion.Foo.light"])
    assert result.exit_code == 1 and "Foo" in result.output and not (tmp_path / "a" / "config.json").exists()
    result = runner.invoke(train_main, [*base, "--save-dir", str(tmp_path / "b")])
    assert result.exit_code == 1, result.output
    assert f"{bad.name}: contains 1 NaN or Inf values" in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped error


class _Died(BaseException):
    """A process death: not an Exception, so no handler of the trainer saves anything."""


def _die_before_last_pt(monkeypatch, at_epoch: int) -> None:
    """Make the run die after epoch ``at_epoch`` wrote its CSV rows, before its last.pt."""
    save = Trainer._save

    def dying_save(self: Trainer, name: str) -> Path:
        # _end_epoch has already counted the epoch done when it saves last.pt.
        if name == "last.pt" and self.epoch == at_epoch + 1:
            raise _Died
        return save(self, name)

    monkeypatch.setattr(Trainer, "_save", dying_save)


@pytest.fixture(scope="module")
def straight_run(split, tmp_path_factory) -> Path:
    """An uninterrupted 2-epoch run: what every interrupted run must end up writing."""
    run = tmp_path_factory.mktemp("straight") / "run"
    Trainer(_config(split, run)).fit()
    return run


def test_resume_after_death_before_last_pt_writes_no_duplicates(split, straight_run, tmp_path, monkeypatch) -> None:
    run = tmp_path / "run"
    _die_before_last_pt(monkeypatch, at_epoch=1)
    with pytest.raises(_Died):
        Trainer(_config(split, run)).fit()
    monkeypatch.undo()
    # The death left epoch 1's rows in both CSVs while last.pt still stands at the end of epoch 0.
    assert set(pd.read_csv(run / "results.csv")["epoch"]) == {0, 1}
    assert load_checkpoint(run / "checkpoints/last.pt")["epoch"] == 1
    Trainer(_config(split, run), resume=True).fit()
    results = pd.read_csv(run / "results.csv")
    assert not results.duplicated(["epoch", "step", "flow"]).any()
    pd.testing.assert_frame_equal(results, pd.read_csv(straight_run / "results.csv"))
    metrics, expected = pd.read_csv(run / "metrics.csv"), pd.read_csv(straight_run / "metrics.csv")
    pd.testing.assert_frame_equal(metrics.drop(columns="seconds"), expected.drop(columns="seconds"))


def test_resume_keeps_rows_of_partial_epochs(split, straight_run, tmp_path) -> None:
    # A run stopped mid-epoch validates that partial epoch: its rows are the checkpoint's and stay.
    run = tmp_path / "run"
    Trainer(_config(split, run, max_steps=4)).fit()
    Trainer(_config(split, run), resume=True).fit()
    results = pd.read_csv(run / "results.csv")
    assert sorted(set(zip(results["epoch"], results["step"]))) == [(0, 3), (1, 4), (1, 6)]
    assert list(pd.read_csv(run / "metrics.csv")["step"]) == [3, 4, 6]
    straight = pd.read_csv(straight_run / "results.csv")
    pd.testing.assert_frame_equal(results[results["step"] != 4].reset_index(drop=True), straight)


def test_death_before_the_first_last_pt_is_not_mixed_into_a_new_run(split, straight_run, tmp_path, monkeypatch) -> None:
    run = tmp_path / "run"
    _die_before_last_pt(monkeypatch, at_epoch=0)
    with pytest.raises(_Died):
        Trainer(_config(split, run)).fit()
    monkeypatch.undo()
    assert not (run / "checkpoints/last.pt").exists() and (run / "results.csv").exists()
    # Without last.pt there is nothing to resume; starting again must neither append to the
    # dead run's rows nor delete them unasked.
    with pytest.raises(FileExistsError, match="results.csv"):
        Trainer(_config(split, run))
    assert set(pd.read_csv(run / "results.csv")["epoch"]) == {0}
    Trainer(_config(split, run), overwrite=True).fit()
    pd.testing.assert_frame_equal(pd.read_csv(run / "results.csv"), pd.read_csv(straight_run / "results.csv"))


def test_init_starts_from_a_checkpoints_weights(split, tmp_path: Path, monkeypatch) -> None:
    import stseg_train.pretrained as pretrained

    Trainer(_config(split, tmp_path / "a", epochs=1)).fit()
    source = tmp_path / "a" / "checkpoints" / "last.pt"
    fresh = Trainer(_config(split, tmp_path / "fresh", seed=7))
    tuned = Trainer(_config(split, tmp_path / "b", seed=7, init=str(source)))
    for name, value in _weights(source).items():
        torch.testing.assert_close(tuned.model.state_dict()[name], value)
    assert not all(torch.equal(fresh.model.state_dict()[n], v) for n, v in _weights(source).items())
    assert tuned.global_step == 0  # a new run, not a resume
    # Bundled names resolve in stseg_train/pretrained/.
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path / "a" / "checkpoints")
    by_name = Trainer(_config(split, tmp_path / "c", init="last"))
    torch.testing.assert_close(by_name.model.state_dict(), tuned.model.state_dict())
    with pytest.raises(ValueError, match=r"--init needs the same network \(or more segments or features\): features_start 4 there, 2 here"):
        Trainer(_config(split, tmp_path / "d", init=str(source), features_start=2))
    wider = Trainer(_config(split, tmp_path / "w", init=str(source), features_start=8))  # widened, not refused
    assert wider.model.features_start == 8
    with pytest.raises(ValueError, match=r"--init 'nope': neither a file nor a bundled name \(bundled: best, last\)"):
        Trainer(_config(split, tmp_path / "e", init="nope"))


# -- results.csv rows for training windows (--train-results, the paper preset) ----------------


def test_train_results_survive_a_stop_and_a_death_exactly_once(split, tmp_path, monkeypatch) -> None:
    """Each training window's row is written once, with its batch's step, however the run is
    cut: a stop mid-epoch (rows of the partial epoch go with its validation), and a death
    before last.pt (the dead epoch's rows are dropped and redone)."""
    straight = tmp_path / "straight"
    Trainer(_config(split, straight, train_results=True)).fit()
    expected = pd.read_csv(straight / "results.csv")
    train = expected[expected["split"] == "train"]
    assert sorted(set(train["step"])) == [1, 2, 3, 4, 5, 6] and len(train) == 2 * 12
    assert train["loss"].notna().all() and train["jaccard_fair"].between(0, 1).all()

    cut = tmp_path / "cut"
    Trainer(_config(split, cut, train_results=True, max_steps=4)).fit()  # stops at step 4 of 6
    _die_before_last_pt(monkeypatch, at_epoch=1)
    with pytest.raises(_Died):
        Trainer(_config(split, cut, train_results=True), resume=True).fit()
    monkeypatch.undo()
    Trainer(_config(split, cut, train_results=True), resume=True).fit()
    results = pd.read_csv(cut / "results.csv")
    got = results[results["split"] == "train"].reset_index(drop=True)
    assert not got.duplicated(["step", "flow"]).any()
    pd.testing.assert_frame_equal(got, train.reset_index(drop=True))
