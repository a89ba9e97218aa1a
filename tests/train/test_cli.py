"""The training-side command lines: option ranges, Ctrl-C (exit 130), memory and file errors."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from interrupting import console_script, interrupt_after_first_step

from stseg_deploy.preprocess import MAX_IMAGE_SIDE
from stseg_synth.datasplit import write_synth_split
from stseg_train.bench.cli import bench_main
from stseg_train.checkpoint import load_checkpoint, save_checkpoint
from stseg_train.cli import export_main, train_main
from stseg_train.config import TrainConfig
from stseg_train.model import UNet3D
from stseg_train.trainer import Trainer

SIGINT_EXIT = 130  # 128 + SIGINT: what shells and schedulers expect from a Ctrl-C'd command


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synth")
    prefix = write_synth_split(root, n_sequences=4, n_frames=6, size=(16, 24), seed=1, val_fraction=0.25)
    return prefix, root


def _train_args(split, save_dir: Path) -> list[str]:
    prefix, root = split
    return [
        "--data-file", str(prefix), "--base-dir", str(root), "--save-dir", str(save_dir),
        "--image-size", "16", "24", "--features-start", "4", "--batch-size", "4", "--workers", "0",
    ]


# -- option ranges --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--batch-size", "0"], "batch_size must be >= 1, got 0"),
        (["--epochs", "-1"], "epochs must be >= 1, got -1"),
        (["--max-steps", "0"], "max_steps must be >= 1, got 0"),
        (["--features-start", "0"], "features_start must be >= 1, got 0"),
        (["--num-layers", "0"], "num_layers must be >= 1, got 0"),
        (["-L", "1"], "n_labels must be >= 2, got 1"),
        (["--image-size", "2", "24"], "image_size must be two sides >= 4"),
        (["--workers", "-1"], "workers must be >= 0, got -1"),
        (["--image-size", "100000", "100000"], f"image_size sides must be <= {MAX_IMAGE_SIDE}, got 100000x100000"),
    ],
)
def test_out_of_range_options_are_refused_in_one_line(tmp_path: Path, args: list[str], expected: str) -> None:
    result = CliRunner().invoke(train_main, [
        "--data-file", str(tmp_path / "none"), "--base-dir", str(tmp_path), "--save-dir", str(tmp_path / "run"), *args,
    ])
    assert result.exit_code == 1 and expected in result.output, result.output
    assert isinstance(result.exception, SystemExit)  # a message, not a traceback
    assert result.output.count("\n") == 1 and not (tmp_path / "run").exists()


def test_huge_image_size_is_refused_before_anything_is_allocated() -> None:
    side = MAX_IMAGE_SIDE + 1
    with pytest.raises(ValueError, match=f"image_size sides must be <= {MAX_IMAGE_SIDE}, got 16x{side}"):
        TrainConfig(data_file="d", base_dir="b", save_dir="s", image_size=(16, side))
    TrainConfig(data_file="d", base_dir="b", save_dir="s", image_size=(MAX_IMAGE_SIDE, MAX_IMAGE_SIDE))


def test_out_of_memory_says_what_size_was_asked(split, tmp_path: Path, monkeypatch) -> None:
    # What torch's CPU allocator raises when a size under the bound still does not fit.
    message = (
        "[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't allocate memory: "
        "you tried to allocate 120000000000 bytes. Error code 12 (Cannot allocate memory)"
    )

    def no_memory(self, on_step=None):  # noqa: ARG001
        raise RuntimeError(message)

    monkeypatch.setattr(Trainer, "fit", no_memory)
    result = CliRunner().invoke(train_main, _train_args(split, tmp_path / "run"))
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    error = result.output.strip().splitlines()[-1]
    assert error.startswith("Error: out of memory at image size 16x24, batch size 4")
    assert "111.8 GiB" in error and "--image-size or --batch-size" in error


def test_bench_threads_must_be_positive(tmp_path: Path, capsys) -> None:
    tiny = [
        "--sizes", "8x8", "--masks", "2", "--batch-sizes", "1", "--repeats", "1", "--engines", "torch",
        "--no-kernels", "--no-pipeline", "--out", str(tmp_path / "b.csv"),
    ]
    for value in ("0", "-2"):
        with pytest.raises(SystemExit) as info:
            bench_main([*tiny, "--threads", value])
        assert info.value.code == 2
        assert f"argument --threads: must be an integer >= 1, got {value}" in capsys.readouterr().err
    assert not (tmp_path / "b.csv").exists()


# -- Ctrl-C ---------------------------------------------------------------------------------


def test_train_stopped_by_ctrl_c_says_where_and_exits_130(split, tmp_path: Path, monkeypatch) -> None:
    train_step = Trainer._train_step

    def step_then_ctrl_c(self, *args):
        loss = train_step(self, *args)
        # What a Ctrl-C during this step does: run the SIGINT handler that fit installed
        # (called directly, so a missing handler could never interrupt pytest itself).
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)
        return loss

    monkeypatch.setattr(Trainer, "_train_step", step_then_ctrl_c)
    run = tmp_path / "run"
    result = CliRunner().invoke(train_main, _train_args(split, run))
    assert result.exit_code == SIGINT_EXIT, result.output
    last = run / "checkpoints" / "last.pt"
    assert load_checkpoint(last)["global_step"] == 1
    assert f"progress saved in {last}" in result.output and "--resume" in result.output


def test_bench_ctrl_c_exits_130_with_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    import stseg_train.bench.engines

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stseg_train.bench.engines, "EngineFactory", interrupted)
    with pytest.raises(SystemExit) as info:
        bench_main(["--sizes", "8x8", "--masks", "2", "--threads", "1", "--out", str(tmp_path / "b.csv")])
    assert info.value.code == SIGINT_EXIT
    assert capsys.readouterr().err.strip().splitlines()[-1] == "stseg-bench: interrupted"


def test_ctrl_c_to_a_real_stseg_train_saves_and_exits_130(split, tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [str(console_script("stseg-train")), *_train_args(split, run), "--epochs", "1000", "--device", "cpu"]
    status, stdout, err = interrupt_after_first_step(command)
    assert status == SIGINT_EXIT, err
    last = run / "checkpoints" / "last.pt"
    assert load_checkpoint(last)["global_step"] >= 1
    assert f"progress saved in {last}" in err + stdout
    assert "Traceback" not in err


# -- export -----------------------------------------------------------------------------------


def test_export_of_a_truncated_checkpoint_is_one_whole_line(tmp_path: Path) -> None:
    torch.manual_seed(0)
    cfg = TrainConfig(data_file="d", base_dir="b", save_dir="s", image_size=(16, 24), features_start=4)
    path = tmp_path / "best.pt"
    save_checkpoint(path, UNet3D(features_start=4), {"config": cfg.to_dict()})
    path.write_bytes(path.read_bytes()[:-100])
    result = CliRunner().invoke(export_main, [str(path), "--onnx", str(tmp_path / "m.onnx")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output.startswith(f"Error: {path}: not a readable stseg checkpoint (truncated or corrupt: ")
    assert "checkpoint file is)" not in result.output and result.output.count("\n") == 1
    assert not (tmp_path / "m.onnx").exists()


def test_commands_exit_130_on_keyboard_interrupt(tmp_path: Path, monkeypatch) -> None:
    import stseg_synth.cli
    import stseg_train.export

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(stseg_synth.cli, "write_synth_split", interrupted)
    monkeypatch.setattr(stseg_train.export, "export_checkpoint", interrupted)
    from stseg_synth.cli import synth_main

    path = tmp_path / "c.pt"
    path.write_bytes(b"")
    for command, args in ((synth_main, [str(tmp_path / "out")]), (export_main, [str(path), "--onnx", str(tmp_path / "m.onnx")])):
        result = CliRunner().invoke(command, args)
        assert result.exit_code == SIGINT_EXIT, result.output
        assert result.output.strip().endswith("interrupted")


# -- presets ----------------------------------------------------------------------------------


def test_preset_fills_what_the_user_did_not_type(split, tmp_path: Path) -> None:
    """--preset paper with a small size typed: the size is the user's, everything else the
    paper's, and config.json says so; training rows reach results.csv."""
    import json

    import pandas as pd

    run = tmp_path / "run"
    result = CliRunner().invoke(train_main, [*_train_args(split, run), "--preset", "paper", "--max-steps", "2"])
    assert result.exit_code == 0, result.output
    saved = json.loads((run / "config.json").read_text())
    assert saved["preset"] == "paper"
    assert saved["image_size"] == [16, 24] and saved["features_start"] == 4 and saved["batch_size"] == 4
    assert (saved["norm"], saved["solver"], saved["resize"], saved["potts_mask"]) == ("instance3d", "lbfgs-paper", "plain", "all")
    assert saved["input_noise_mode"] == "batch" and saved["epochs"] == 1000 and saved["lr"] == 1e-4
    rows = pd.read_csv(run / "results.csv")
    train = rows[rows["split"] == "train"]
    assert sorted(set(train["step"])) == [1, 2] and len(train) == 8  # two batches of 4 windows
    assert (rows["split"] == "val").sum() == 4
    assert load_checkpoint(run / "checkpoints" / "last.pt")["model_args"]["norm"] == "instance3d"


def test_preset_small_and_the_default(split, tmp_path: Path) -> None:
    import json

    for preset, lr in (("small", 1e-3), ("default", 1e-4)):
        run = tmp_path / preset
        args = [*_train_args(split, run), "--max-steps", "1"] + (["--preset", preset] if preset != "default" else [])
        result = CliRunner().invoke(train_main, args)
        assert result.exit_code == 0, result.output
        saved = json.loads((run / "config.json").read_text())
        assert saved["preset"] == preset and saved["lr"] == lr and saved["image_size"] == [16, 24]
        assert saved["norm"] == "frame" and saved["resize"] == "antialias"


def test_resume_refuses_another_preset(split, tmp_path: Path) -> None:
    run = tmp_path / "run"
    assert CliRunner().invoke(train_main, [*_train_args(split, run), "--max-steps", "1"]).exit_code == 0
    result = CliRunner().invoke(train_main, [*_train_args(split, run), "--resume", "--preset", "paper", "--max-steps", "2"])
    assert result.exit_code == 2 and "preset" in result.output


def test_choices_without_torch_match_the_registries() -> None:
    from stseg_train.cli import _CHOICES_WITHOUT_TORCH, CHOICES

    assert CHOICES == _CHOICES_WITHOUT_TORCH


def test_time_budget_bar_counts_seconds_not_steps(split, tmp_path: Path) -> None:
    result = CliRunner().invoke(train_main, [*_train_args(split, tmp_path / "run"), "--time-budget", "0.02", "--epochs", "1000"])
    assert result.exit_code == 0, result.output
    assert "s of the time budget" in result.output and "3000" not in result.output
