"""stseg_train.checkpoint: a checkpoint alone rebuilds its model; wrappers leave no prefixes;
older checkpoints read with the values they were trained with; other files are refused by name."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

from stseg_train.checkpoint import FORMAT, load_checkpoint, model_from_checkpoint, save_checkpoint
from stseg_train.config import PRE_PRESET_DEFAULTS, TrainConfig
from stseg_train.model import UNet3D


def _model(seed: int = 0, **args) -> UNet3D:
    torch.manual_seed(seed)
    return UNet3D(features_start=4, **args).eval()


def test_round_trip_rebuilds_the_same_network(tmp_path: Path) -> None:
    model = _model(n_labels=3)
    path = tmp_path / "c.pt"
    save_checkpoint(path, model, {"config": TrainConfig(data_file="d", base_dir=".", save_dir="s").to_dict(), "epoch": 5})
    payload = load_checkpoint(path)
    assert payload["format"] == FORMAT and payload["epoch"] == 5
    assert payload["model_args"]["n_labels"] == 3
    rebuilt, _ = model_from_checkpoint(path)
    assert not rebuilt.training
    x = torch.randn(1, 2, 3, 16, 24)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=0, atol=0)


class _Wrapper(torch.nn.Module):
    """Stands in for DDP (``.module``) and torch.compile (``._orig_mod``)."""

    def __init__(self, inner: torch.nn.Module, attribute: str) -> None:
        super().__init__()
        setattr(self, attribute, inner)


@pytest.mark.parametrize("attribute", ["module", "_orig_mod"])
def test_wrappers_leave_no_prefix(tmp_path: Path, attribute: str) -> None:
    model = _model()
    save_checkpoint(tmp_path / "c.pt", _Wrapper(model, attribute), {"config": {}})
    saved = load_checkpoint(tmp_path / "c.pt")["model"]
    assert list(saved) == list(model.state_dict())
    for name, value in model.state_dict().items():
        assert torch.equal(saved[name], value)


def test_older_checkpoints_read_with_their_training_values(tmp_path: Path) -> None:
    model = _model()
    path = tmp_path / "old.pt"
    save_checkpoint(path, model, {"config": {"lr": 0.01}})
    payload = torch.load(path, weights_only=True)
    del payload["model_args"]["norm"]  # written before --norm existed
    torch.save(payload, path)
    loaded = load_checkpoint(path)
    assert loaded["model_args"]["norm"] == "frame"
    assert loaded["config"] == {"lr": 0.01, **PRE_PRESET_DEFAULTS}


def test_other_files_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"none.pt: checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")
    path = tmp_path / "x.pt"
    torch.save({"weights": 1}, path)
    with pytest.raises(ValueError, match=r"x.pt: not an stseg checkpoint \(missing format tag"):
        load_checkpoint(path)
    torch.save({"format": FORMAT, "model": {}, "config": {}}, path)
    with pytest.raises(ValueError, match=r"x.pt: checkpoint lacks 'model_args'"):
        load_checkpoint(path)
    path.write_bytes(b"")
    with pytest.raises(ValueError, match=r"x.pt: not a readable stseg checkpoint \(truncated or corrupt: the file is empty\)"):
        load_checkpoint(path)


def test_a_pickle_with_code_is_refused_not_run(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    with path.open("wb") as handle:
        pickle.dump(_Wrapper(torch.nn.Identity(), "module"), handle, protocol=2)
    with pytest.raises(ValueError, match=r"evil.pt: not a readable stseg checkpoint"):
        load_checkpoint(path)


def test_weights_that_do_not_fit_their_arguments(tmp_path: Path) -> None:
    path = tmp_path / "c.pt"
    save_checkpoint(path, _model(), {"config": {}})
    payload = torch.load(path, weights_only=True)
    payload["model_args"]["features_start"] = 8
    torch.save(payload, path)
    with pytest.raises(ValueError, match=r"c.pt: weights do not match the model arguments stored with them"):
        model_from_checkpoint(path)


def test_slim_payload_keeps_the_model_and_halves_its_weights(tmp_path: Path) -> None:
    from stseg_train.checkpoint import slim_payload

    model = _model(n_labels=3)
    path = tmp_path / "c.pt"
    save_checkpoint(path, model, {"config": TrainConfig(data_file="d", base_dir=".", save_dir="s").to_dict(), "epoch": 5,
                                  "optimizer": {"state": {}}, "rng": [1, 2]})
    payload = load_checkpoint(path)
    slim = slim_payload(payload, half=True)
    assert "optimizer" not in slim and "rng" not in slim and slim["epoch"] == 5
    assert all(v.dtype == torch.float16 for v in slim["model"].values() if v.is_floating_point())
    assert all(v.dtype == torch.float32 for v in payload["model"].values() if v.is_floating_point())  # the input is untouched
    torch.save(slim, tmp_path / "slim.pt")
    rebuilt, _ = model_from_checkpoint(tmp_path / "slim.pt")
    x = torch.randn(1, 2, 3, 16, 24)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), model(x), rtol=2e-2, atol=2e-3)  # float16 weights, float32 compute
