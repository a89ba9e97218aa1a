"""stseg_train.distributed and the trainer under DDP: two CPU processes on Gloo train the same
weights as one process on the same global batches (short last batch, augmentation and input
noise included), only rank 0 writes, and a resume by another number of processes is refused."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.multiprocessing as mp
from interrupting import console_script, interrupt_after_first_step

from stseg_synth.datasplit import write_synth_split
from stseg_train import distributed
from stseg_train.checkpoint import load_checkpoint
from stseg_train.config import TrainConfig
from stseg_train.distributed import Dist, part_of
from stseg_train.trainer import Trainer

# Weights after 8 Adam steps may differ by the order in which Gloo sums the two halves of
# each gradient; the bound is float32 rounding carried through the steps, far below the
# size of one step (lr 1e-3).
ATOL = 2e-5


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> tuple[Path, Path]:
    # 3 training sequences of 5 windows: global batches of 4, 4, 4 and a short one of 3
    # (2 for rank 0, 1 for rank 1).
    root = tmp_path_factory.mktemp("synth")
    prefix = write_synth_split(root, n_sequences=4, n_frames=7, size=(16, 24), seed=1, val_fraction=0.25)
    return prefix, root


def _config(split, save_dir: Path, **overrides) -> TrainConfig:
    prefix, root = split
    options = dict(
        data_file=str(prefix), base_dir=str(root), save_dir=str(save_dir), image_size=(16, 24),
        features_start=4, batch_size=4, epochs=2, workers=0, lr=1e-3, solver="irls",
        input_noise=True, input_noise_mode="sample", input_noise_prob=0.5, train_results=True,
    )
    options.update(overrides)
    return TrainConfig(**options)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _train_rank(rank: int, world: int, config: dict, port: int, resume: bool) -> None:
    """One process of a torchrun-like group (spawned: the environment is torchrun's)."""
    import os

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist = Dist(rank, world, rank)
    try:
        Trainer(TrainConfig.from_dict(config), resume=resume, dist=dist).fit()
    except BaseException:
        distributed.shutdown(dist, wait=False)
        raise
    distributed.shutdown(dist)
    distributed.exit_now(0)  # as stseg-train does under torchrun


def _spawn(config: TrainConfig, world: int = 2, resume: bool = False) -> None:
    mp.spawn(_train_rank, args=(world, config.to_dict(), _free_port(), resume), nprocs=world, join=True)


def test_two_processes_train_the_weights_of_one(split, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    Trainer(_config(split, tmp_path / "one")).fit()
    _spawn(_config(split, tmp_path / "two"))
    one = load_checkpoint(tmp_path / "one" / "checkpoints" / "last.pt")
    two = load_checkpoint(tmp_path / "two" / "checkpoints" / "last.pt")
    assert one["global_step"] == two["global_step"] == 8 and two["world_size"] == 2
    for name, value in one["model"].items():
        torch.testing.assert_close(two["model"][name], value, rtol=0, atol=ATOL, msg=name)
    metrics_one = pd.read_csv(tmp_path / "one" / "metrics.csv")
    metrics_two = pd.read_csv(tmp_path / "two" / "metrics.csv")
    pd.testing.assert_frame_equal(metrics_one.drop(columns="seconds"), metrics_two.drop(columns="seconds"), atol=1e-4, rtol=0)
    # Every training and validation window has its one row, in the same order, from rank 0 alone.
    results_one = pd.read_csv(tmp_path / "one" / "results.csv")
    results_two = pd.read_csv(tmp_path / "two" / "results.csv")
    assert len(results_one) == 2 * (15 + 5)
    pd.testing.assert_frame_equal(results_one[["epoch", "step", "split", "flow"]], results_two[["epoch", "step", "split", "flow"]])
    pd.testing.assert_series_equal(results_one["loss"], results_two["loss"], atol=1e-4, rtol=0)
    assert json.loads((tmp_path / "two" / "config.json").read_text())["world_size"] == 2
    assert json.loads((tmp_path / "one" / "config.json").read_text())["world_size"] == 1


def test_resume_needs_the_same_number_of_processes(split, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    _spawn(_config(split, tmp_path / "run", epochs=1))
    with pytest.raises(ValueError, match=r"last.pt: trained by 2 process\(es\), resumed by 1; resume it with 2 \(torchrun --nproc-per-node 2"):
        Trainer(_config(split, tmp_path / "run", epochs=2), resume=True)
    _spawn(_config(split, tmp_path / "run", epochs=2), resume=True)  # the same number: fine
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["global_step"] == 8


def test_the_global_batch_must_split_evenly(split, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"--batch-size 5 is the global batch and must split evenly over the 2 processes"):
        Trainer(_config(split, tmp_path / "x", batch_size=5), dist=Dist(0, 2, 0))


def test_part_of_gives_an_empty_part_one_weightless_sample() -> None:
    assert part_of([7, 3, 9, 1], Dist(0, 2), 2) == ([7, 3], 2)
    assert part_of([7, 3, 9, 1], Dist(1, 2), 2) == ([9, 1], 2)
    assert part_of([7, 3, 9], Dist(1, 2), 2) == ([9], 1)
    assert part_of([7], Dist(1, 2), 2) == ([7], 0)
    assert part_of([7, 3, 9], Dist(0, 1), 4) == ([7, 3, 9], 3)  # one process: the batch as it is


def test_from_env_reads_torchruns_variables(monkeypatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert distributed.from_env() == Dist(3, 4, 1) and not distributed.from_env().is_main
    monkeypatch.setenv("RANK", "4")
    with pytest.raises(ValueError, match="RANK 4 is not within WORLD_SIZE 4"):
        distributed.from_env()
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(name)
    assert distributed.from_env() == Dist() and distributed.from_env().is_main


@pytest.mark.slow
def test_ctrl_c_to_torchrun_saves_once_and_stops_every_process(split, tmp_path: Path) -> None:
    """A terminal's Ctrl-C reaches torchrun's agent, both workers and their DataLoader
    workers; the agent then sends SIGINT again. The DataLoader workers ignore it, the
    training processes agree on a step, rank 0 saves last.pt, and it resumes."""
    import os

    prefix, root = split
    run = tmp_path / "run"
    train = [
        "--data-file", str(prefix), "--base-dir", str(root), "--save-dir", str(run), "--image-size", "16", "24",
        "--features-start", "4", "--batch-size", "4", "--workers", "1", "--epochs", "1000", "--device", "cpu", "--solver", "irls",
    ]
    command = [str(console_script("torchrun")), "--standalone", "--nproc-per-node", "2", "--no-python", str(console_script("stseg-train")), *train]
    _, stdout, err = interrupt_after_first_step(command, group=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    last = run / "checkpoints" / "last.pt"
    assert last.is_file(), err
    state = load_checkpoint(last)
    assert state["global_step"] >= 1 and state["world_size"] == 2
    assert err.count("training on cpu x 2 processes") == 1  # rank 0 alone speaks
    assert f"progress saved in {last}" in err + stdout, err
    config = TrainConfig.from_dict({**state["config"], "epochs": 2})  # what stseg-train --resume --epochs 2 runs
    _spawn(config, resume=True)
    assert load_checkpoint(last)["global_step"] == 8
