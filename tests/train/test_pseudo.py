"""stseg_train.pseudo: label maps of an stseg-infer output as training targets, each label
matched to a network channel, and the self-training run that uses them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from fakes import FakeModel

from stseg_deploy.errors import StsegInputError
from stseg_deploy.output.folder import segment_to_folder
from stseg_deploy.output.layout import read_sequence_output
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.preprocess import resize_labels
from stseg_deploy.settings import InferenceSettings
from stseg_deploy.sources import sequences_from_datasplit
from stseg_synth.datasplit import write_synth_split
from stseg_train.checkpoint import load_checkpoint
from stseg_train.cli import train_main
from stseg_train.config import TrainConfig
from stseg_train.dataset import FlowWindowDataset
from stseg_train.pseudo import IGNORE, PseudoLabels, match_channels, matched_cross_entropy
from stseg_train.trainer import Trainer

SIZE = (16, 24)


def _proba(labels: np.ndarray, channels: int, sure: float = 0.9) -> torch.Tensor:
    """(1, K, T, h, w) probabilities: ``sure`` on channel ``labels``, the rest spread evenly."""
    out = np.full((channels, *labels.shape), (1 - sure) / (channels - 1))
    for k in range(channels):
        out[k][labels == k] = sure
    return torch.tensor(out[None], dtype=torch.float32)


def test_each_label_goes_to_the_channel_it_overlaps_most() -> None:
    channel = np.zeros((3, 4, 6), int)
    channel[:, :, 3:] = 2  # the network's channel 2 holds the right half
    target = np.where(channel == 2, 0, 3)  # ... which the pseudo-labels call 0; the left half 3
    assert match_channels(_proba(channel, 4), torch.tensor(target[None])).tolist() == [[2, -1, -1, 0]]


def test_more_labels_than_channels_leaves_the_least_overlapping_unmatched() -> None:
    channel = np.zeros((3, 4, 6), int)
    channel[:, 2:, :] = 1
    target = channel.copy()
    target[:, 0, 0] = 2  # a one-pixel label per frame: a third label for two channels
    assert match_channels(_proba(channel, 2, sure=0.99), torch.tensor(target[None])).tolist() == [[0, 1, -1]]


def test_cross_entropy_of_the_matched_pairs_is_invariant_to_the_channels_order() -> None:
    rng = np.random.default_rng(0)
    proba = torch.softmax(torch.tensor(rng.normal(size=(2, 3, 3, 4, 5)), dtype=torch.float32), dim=1)
    target = torch.tensor(rng.integers(0, 3, size=(2, 3, 4, 5)))
    target[1, 0] = IGNORE  # frame 0 of sample 1 has no pseudo-label
    loss = matched_cross_entropy(proba, target)
    assert loss.shape == (2,)
    permuted = matched_cross_entropy(proba[:, [2, 0, 1]], target)
    torch.testing.assert_close(loss, permuted)
    # By hand: the mean over supervised pixels of -log p[matched channel].
    for b in range(2):
        channel_of = match_channels(proba[b : b + 1], target[b : b + 1])[0]
        pixels = target[b] >= 0
        picked = proba[b].permute(1, 2, 3, 0)[pixels]  # (n, K)
        expected = -torch.log(picked[torch.arange(len(picked)), channel_of[target[b][pixels]]]).mean()
        torch.testing.assert_close(loss[b], expected)


def test_cross_entropy_is_zero_without_targets_and_has_a_gradient_with_them() -> None:
    proba = torch.full((1, 2, 3, 2, 2), 0.5, requires_grad=True)
    none = torch.full((1, 3, 2, 2), IGNORE)
    assert float(matched_cross_entropy(proba, none).detach()[0]) == 0.0
    target = torch.zeros((1, 3, 2, 2), dtype=torch.int64)
    loss = matched_cross_entropy(proba, target)
    assert float(loss.detach()[0]) == pytest.approx(np.log(2))
    loss.sum().backward()
    assert proba.grad is not None and proba.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def split(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("synth")
    prefix = write_synth_split(root, n_sequences=4, n_frames=6, size=SIZE, seed=1, val_fraction=0.25)
    return prefix, root


def _pseudo_output(split, out: Path, keep: int | None = None) -> Path:
    """The training sequences segmented by a fake model into ``out`` (no stages); with
    ``keep``, only that many."""
    prefix, root = split
    settings = InferenceSettings.from_options(cut_size=3, tta="none", refine="none", motion_split="none")
    for sequence in sequences_from_datasplit(prefix, "train", root)[:keep]:
        segment_to_folder(Segmenter(FakeModel(n_labels=3, size=(8, 12)), settings), sequence, out, model_sha256="m")
    return out


def test_windows_get_the_outputs_labels_at_model_size(split, tmp_path: Path) -> None:
    prefix, root = split
    out = _pseudo_output(split, tmp_path / "pseudo", keep=1)
    pseudo = PseudoLabels(out, SIZE)
    data = FlowWindowDataset(prefix, "train", root, SIZE, pseudo=pseudo)
    (name,) = pseudo.maps
    labels, record = read_sequence_output(out / name)
    covered = [i for i, r in enumerate(data.records) if r.sequence == name]
    assert covered and len(covered) < len(data)
    first = data[covered[0]]
    # The window centred on the sequence's second flow: its flows 0, 1, 2.
    for t in range(3):
        np.testing.assert_array_equal(first["pseudo"][t].numpy(), resize_labels(labels[t], SIZE))
    other = next(i for i in range(len(data)) if i not in covered)
    assert (data[other]["pseudo"] == IGNORE).all()


def test_bad_pseudo_label_folders_are_named(split, tmp_path: Path) -> None:
    prefix, root = split
    with pytest.raises(StsegInputError, match="no such folder"):
        PseudoLabels(tmp_path / "nowhere", SIZE)
    (tmp_path / "empty").mkdir()
    with pytest.raises(StsegInputError, match="no complete stseg-infer sequence output"):
        PseudoLabels(tmp_path / "empty", SIZE)
    # An output of other sequences (the validation ones) covers no training window.
    settings = InferenceSettings.from_options(cut_size=3, tta="none", refine="none", motion_split="none")
    for sequence in sequences_from_datasplit(prefix, "val", root):
        segment_to_folder(Segmenter(FakeModel(n_labels=3, size=(8, 12)), settings), sequence, tmp_path / "other", model_sha256="m")
    cfg = TrainConfig(
        data_file=str(prefix), base_dir=str(root), save_dir=str(tmp_path / "run"), image_size=SIZE, features_start=4,
        batch_size=4, workers=0, pseudo_labels=str(tmp_path / "other"),
    )
    with pytest.raises(StsegInputError, match="none of the 12 training windows"):
        Trainer(cfg)


def _mean_pseudo_loss(trainer: Trainer) -> float:
    trainer.model.eval()
    with torch.no_grad():
        items = [trainer.train_set[i] for i in range(len(trainer.train_set))]
        flow = torch.stack([item["flow"] for item in items])
        target = torch.stack([item["pseudo"] for item in items])
        return float(matched_cross_entropy(trainer.model(flow), target).mean())


def test_self_training_moves_the_network_towards_the_pseudo_labels(split, tmp_path: Path) -> None:
    prefix, root = split
    out = _pseudo_output(split, tmp_path / "pseudo")
    options = dict(
        data_file=str(prefix), base_dir=str(root), image_size=SIZE, features_start=4, batch_size=4,
        workers=0, lr=1e-2, epochs=4, flow_augmentation=(), input_noise=False,
    )
    taught = Trainer(TrainConfig(save_dir=str(tmp_path / "taught"), pseudo_labels=str(out), pseudo_weight=5.0, **options))
    before = _mean_pseudo_loss(taught)
    taught.fit()
    plain = Trainer(TrainConfig(save_dir=str(tmp_path / "plain"), **options))
    plain.fit()
    plain.train_set = taught.train_set  # the same windows, with their pseudo-labels
    after, without = _mean_pseudo_loss(taught), _mean_pseudo_loss(plain)
    assert after < 0.8 * before and after < without


def test_cli_refuses_a_pseudo_weight_without_pseudo_labels(split, tmp_path: Path) -> None:
    prefix, root = split
    result = CliRunner().invoke(train_main, [
        "--data-file", str(prefix), "--base-dir", str(root), "--save-dir", str(tmp_path / "run"),
        "--image-size", "16", "24", "--features-start", "4", "--workers", "0", "--pseudo-weight", "2",
    ])
    assert result.exit_code != 0 and "--pseudo-weight needs --pseudo-labels" in result.output
    for weight in (0.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="pseudo_weight must be a finite number > 0"):
            TrainConfig(data_file="d", base_dir="b", save_dir="s", pseudo_weight=weight)


def test_resume_keeps_the_pseudo_labels_and_refuses_another_weight(split, tmp_path: Path) -> None:
    prefix, root = split
    out = _pseudo_output(split, tmp_path / "pseudo")
    base = [
        "--data-file", str(prefix), "--base-dir", str(root), "--save-dir", str(tmp_path / "run"),
        "--image-size", "16", "24", "--features-start", "4", "--batch-size", "4", "--workers", "0",
    ]
    result = CliRunner().invoke(train_main, [*base, "--max-steps", "1", "--pseudo-labels", str(out), "--pseudo-weight", "2"])
    assert result.exit_code == 0, result.output
    # The same folder written another way, and the same weight: accepted.
    same = str(out.parent / "." / out.name)
    result = CliRunner().invoke(train_main, [*base, "--resume", "--max-steps", "2", "--pseudo-labels", same, "--pseudo-weight", "2"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(train_main, [*base, "--resume", "--max-steps", "3", "--pseudo-weight", "1"])
    assert result.exit_code != 0 and "pseudo_weight differ" in result.output
    payload = load_checkpoint(tmp_path / "run/checkpoints/last.pt")
    assert payload["global_step"] == 2 and payload["config"]["pseudo_weight"] == 2.0
