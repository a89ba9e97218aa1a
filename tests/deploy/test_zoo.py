"""Bundled models: names, the default, cards, and what --model accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fakes import FakeModel
from fakes import write_sequence as _write_sequence

import stseg_deploy.runtime
import stseg_deploy.zoo as zoo
from stseg_deploy.cli.infer import infer_main
from stseg_deploy.errors import StsegInputError


@pytest.fixture
def models(tmp_path: Path, monkeypatch) -> Path:
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("davis-small", "mix-small", "synth-tiny"):
        (folder / f"{name}.onnx").write_bytes(b"model " + name.encode())
        (folder / f"{name}.json").write_text(json.dumps({"name": name, "steps": 10}))
    monkeypatch.setattr(zoo, "MODELS_DIR", folder)
    return folder


def test_names_paths_and_the_default(models: Path, tmp_path: Path, monkeypatch) -> None:
    assert list(zoo.bundled_models()) == ["davis-small", "mix-small", "synth-tiny"]
    assert zoo.resolve_model(None) == (models / "mix-small.onnx", "mix-small")
    assert zoo.resolve_model("davis-small") == (models / "davis-small.onnx", "davis-small")  # the earlier default
    assert zoo.resolve_model("synth-tiny") == (models / "synth-tiny.onnx", "synth-tiny")
    assert zoo.resolve_model("mine.onnx") == (Path("mine.onnx"), None)  # a path, checked on load
    (tmp_path / "synth-tiny").mkdir()  # say, an output folder named like a model
    monkeypatch.chdir(tmp_path)
    assert zoo.resolve_model("synth-tiny") == (models / "synth-tiny.onnx", "synth-tiny")
    assert zoo.model_card("synth-tiny")["steps"] == 10
    with pytest.raises(StsegInputError, match=r"--model 'nope': neither a file nor a bundled name \(bundled: davis-small, mix-small, synth-tiny\)"):
        zoo.resolve_model("nope")
    (models / "mix-small.onnx").unlink()
    with pytest.raises(StsegInputError, match="no bundled model 'mix-small'; give --model PATH"):
        zoo.resolve_model(None)


def test_infer_without_model_uses_the_default_and_says_so(models: Path, tmp_path: Path, monkeypatch) -> None:
    seen = []

    def load(path, **_kwargs):
        seen.append(path)
        return FakeModel()

    monkeypatch.setattr(stseg_deploy.runtime, "load_model", load)
    _write_sequence(tmp_path / "flows" / "walk", 4)
    result = CliRunner().invoke(infer_main, [str(tmp_path / "flows" / "walk"), "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert seen == [models / "mix-small.onnx"]
    assert f"model bundled 'mix-small' ({models / 'mix-small.onnx'})" in result.output


def test_every_bundled_model_loads_and_agrees_with_its_card() -> None:
    """The real models folder: the default is there, and each model (earlier defaults
    included) runs with onnxruntime and says in its metadata what its card says."""
    from stseg_deploy.runtime import load_model

    models = zoo.bundled_models()
    assert zoo.DEFAULT_MODEL in models and "davis-small" in models
    for name, path in models.items():
        card = zoo.model_card(name)
        info = load_model(path, provider="cpu", threads=1).info
        assert card["file"] == path.name
        assert card["preprocessing"]["n_labels"] == info.n_labels
        assert card["preprocessing"]["image_size"] == list(info.image_size)
        assert 0 < card["scores"]["J_mean"] < 1 and card["steps"] > 0
    assert "J_objects" in zoo.model_card(zoo.DEFAULT_MODEL)["scores"]["objects"]


def test_list_models_on_the_command_line() -> None:
    result = CliRunner().invoke(infer_main, ["--list-models"])  # no --out needed: it exits first
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert [line.split(":")[0] for line in lines] == list(zoo.bundled_models())
    assert any(line.startswith(f"{zoo.DEFAULT_MODEL}: (default)") for line in lines)
