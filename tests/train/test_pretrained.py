"""stseg_train.pretrained: --init names resolve to bundled checkpoints or files, and a
network of another shape is refused saying what differs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import stseg_train.pretrained as pretrained
from stseg_deploy.errors import StsegInputError
from stseg_train.checkpoint import save_checkpoint
from stseg_train.model import UNet3D


def test_the_package_bundles_checkpoints_that_load() -> None:
    bundled = pretrained.bundled_checkpoints()
    assert bundled, "stseg_train/pretrained/ holds no .pt"
    name, path = next(iter(bundled.items()))
    assert pretrained.resolve_init(name) == path
    payload = torch.load(path, weights_only=True)
    model = UNet3D(**payload["model_args"])
    assert pretrained.load_init_weights(model, name) == path


def test_names_files_and_mismatches(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    torch.manual_seed(0)
    source = UNet3D(features_start=4)
    save_checkpoint(tmp_path / "mine.pt", source, {"config": {}})
    assert list(pretrained.bundled_checkpoints()) == ["mine"]
    assert pretrained.resolve_init(str(tmp_path / "mine.pt")) == tmp_path / "mine.pt"
    assert pretrained.resolve_init("elsewhere.pt") == Path("elsewhere.pt")  # a path, found or not later
    target = UNet3D(features_start=4)
    pretrained.load_init_weights(target, "mine")
    for name, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[name], value)
    with pytest.raises(StsegInputError, match=r"--init 'other': neither a file nor a bundled name \(bundled: mine\)"):
        pretrained.resolve_init("other")
    with pytest.raises(ValueError, match=r"mine.pt: --init needs the same network \(or more segments or features\): n_labels 4 there, 3 here"):
        pretrained.load_init_weights(UNet3D(features_start=4, n_labels=3), "mine")


def _grown_from_checkpoint(tmp_path: Path, monkeypatch, features: int, n_labels: int) -> tuple[UNet3D, UNet3D]:
    """A 4-feature, 3-segment checkpoint and a network of ``features`` and ``n_labels`` started
    from it, after checking that the added segments hold next to nothing and the others split
    the rest as the checkpoint's did."""
    monkeypatch.setattr(pretrained, "PRETRAINED_DIR", tmp_path)
    torch.manual_seed(0)
    source = UNet3D(features_start=4, n_labels=3)
    save_checkpoint(tmp_path / "mine.pt", source, {"config": {}})
    target = UNet3D(features_start=features, n_labels=n_labels)
    pretrained.load_init_weights(target, "mine")
    flow = torch.randn(2, 2, 3, 16, 24)
    with torch.no_grad():
        before, after = source(flow), target(flow)
    assert after[:, 3:].max() < 0.05
    torch.testing.assert_close(after[:, :3] / after[:, :3].sum(dim=1, keepdim=True), before, atol=1e-5, rtol=1e-4)
    return source, target


def test_more_segments_start_empty_and_the_others_unchanged(tmp_path: Path, monkeypatch) -> None:
    source, target = _grown_from_checkpoint(tmp_path, monkeypatch, features=4, n_labels=5)
    for name, value in source.state_dict().items():
        if not name.startswith("head."):
            assert torch.equal(target.state_dict()[name], value)
    assert torch.equal(target.head.weight[:3], source.head.weight) and not target.head.weight[3:].any()


def test_more_features_and_segments_at_once(tmp_path: Path, monkeypatch) -> None:
    _grown_from_checkpoint(tmp_path, monkeypatch, features=6, n_labels=4)
    with pytest.raises(ValueError, match=r"features_start 4 there, 2 here"):
        pretrained.load_init_weights(UNet3D(features_start=2, n_labels=3), "mine")
