"""Export once, then compare torch with onnxruntime and TorchScript on two input shapes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from stseg_deploy.flow.recipe import FlowRecipe
from stseg_deploy.runtime import OnnxModel, load_model
from stseg_train import export as export_module
from stseg_train.checkpoint import model_from_checkpoint, save_checkpoint
from stseg_train.config import TrainConfig
from stseg_train.export import ExportCheckError, export_checkpoint
from stseg_train.export_wrapper import ExportWrapper, example_input
from stseg_train.model import UNet3D

# The tolerances the export itself checks against (same float32 graph in two runtimes:
# only convolution algorithms and reduction order differ).
PROBA_ATOL = export_module.PROBA_ATOL
FEATURES_ATOL = export_module.FEATURES_ATOL
FEATURES_RTOL = export_module.FEATURES_RTOL


def _checkpoint(path: Path, size=(16, 24), n_labels=3) -> Path:
    torch.manual_seed(0)
    model = UNet3D(n_labels=n_labels, num_layers=3, features_start=4)
    cfg = TrainConfig(data_file="d", base_dir="b", save_dir="s", image_size=size, n_labels=n_labels, features_start=4)
    save_checkpoint(path, model, {"config": cfg.to_dict(), "epoch": 7})
    return path


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export")
    ckpt = _checkpoint(root / "best.pt")
    reports = export_checkpoint(ckpt, root / "m.onnx", root / "m.ts")
    assert {r.engine for r in reports} == {"onnxruntime", "torchscript"}
    assert len({r.shape for r in reports}) == 2  # two different input shapes were checked
    return {"ckpt": ckpt, "onnx": root / "m.onnx", "ts": root / "m.ts"}


@pytest.mark.parametrize("shape", [(2, 16, 24), (1, 21, 30), (3, 8, 12)])
@pytest.mark.parametrize("kind", ["onnx", "ts"])
def test_runtime_matches_torch(exported, shape, kind) -> None:
    model, _ = model_from_checkpoint(exported["ckpt"])
    x = example_input(*shape, seed=5)
    with torch.no_grad():
        proba, features, labels = ExportWrapper(model)(x)
    runtime = load_model(exported[kind], provider="cpu")
    got_proba, got_features = runtime.run(x.numpy(), features=True)
    assert got_proba.shape == (shape[0], 3, 3, shape[1], shape[2])
    np.testing.assert_allclose(got_proba, proba.numpy(), atol=PROBA_ATOL, rtol=0)
    np.testing.assert_allclose(got_features, features.numpy(), atol=FEATURES_ATOL, rtol=FEATURES_RTOL)
    np.testing.assert_allclose(runtime.run(x.numpy()).sum(axis=1), 1.0, atol=1e-5)
    # The in-graph argmax: uint8, exactly the argmax of the runtime's own probabilities, and
    # torch's wherever the two best segments are not within the proba tolerance.
    got_labels = runtime.labels(x.numpy())
    assert got_labels.dtype == np.uint8 and got_labels.shape == (shape[0], 3, shape[1], shape[2])
    np.testing.assert_array_equal(got_labels, got_proba.argmax(axis=1))
    top2 = np.sort(proba.numpy(), axis=1)[:, -2:]
    clear = (top2[:, 1] - top2[:, 0]) > 2 * PROBA_ATOL
    np.testing.assert_array_equal(got_labels[clear], labels.numpy()[clear])
    assert clear.mean() > 0.99


def test_onnx_file_is_self_describing(exported) -> None:
    proto = onnx.load(exported["onnx"])
    assert not any(init.data_location == onnx.TensorProto.EXTERNAL for init in proto.graph.initializer)
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["n_labels"] == "3" and meta["image_size"] == "[16, 24]" and meta["epoch"] == "7"
    assert meta["param_model"] == "QuadraticFullPT" and "version" in meta
    dims = [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:3] == [2, 3] and all(isinstance(d, str) for d in (dims[0], dims[3], dims[4]))
    outputs = {o.name: o.type.tensor_type.elem_type for o in proto.graph.output}
    assert outputs == {"proba": onnx.TensorProto.FLOAT, "features": onnx.TensorProto.FLOAT, "labels": onnx.TensorProto.UINT8}
    info = load_model(exported["onnx"], provider="cpu").info
    assert info.n_labels == 3 and info.image_size == (16, 24) and info.frames == 3
    assert load_model(exported["ts"], provider="cpu").info == info


def test_failed_check_keeps_nothing_and_spares_the_old_model(tmp_path: Path, monkeypatch) -> None:
    ckpt = _checkpoint(tmp_path / "c.pt", size=(8, 12))
    (tmp_path / "old.onnx").write_bytes(b"the previous good model")
    monkeypatch.setattr(export_module, "PROBA_ATOL", -1.0)
    with pytest.raises(ExportCheckError, match="disagrees with torch"):
        export_checkpoint(ckpt, tmp_path / "m.onnx", None)
    with pytest.raises(ExportCheckError):
        export_checkpoint(ckpt, tmp_path / "old.onnx", None)
    assert not (tmp_path / "m.onnx").exists()
    assert (tmp_path / "old.onnx").read_bytes() == b"the previous good model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt", "old.onnx"]


def test_training_flow_travels_into_the_exported_metadata(tmp_path: Path) -> None:
    """The flow recipe of the training data (stseg-prepare's marker, kept in the checkpoint)
    is part of what an exported model says about itself; without one it is None."""
    ckpt = _checkpoint(tmp_path / "plain.pt")
    payload = torch.load(ckpt, weights_only=False)
    payload["data_flow"] = {"method": "deepflow", "size": None, "scale": "auto"}
    torch.save(payload, tmp_path / "flow.pt")
    export_checkpoint(tmp_path / "flow.pt", tmp_path / "flow.onnx", tmp_path / "flow.ts")
    for name in ("flow.onnx", "flow.ts"):
        assert load_model(tmp_path / name, provider="cpu").info.flow == FlowRecipe("deepflow", None, "auto")
    export_checkpoint(ckpt, tmp_path / "plain.onnx")
    assert load_model(tmp_path / "plain.onnx", provider="cpu").info.flow is None


@pytest.mark.parametrize("size", [(16, 24), (62, 110), (128, 224), (7, 9)])
def test_check_shapes_exercise_padding(size) -> None:
    from stseg_train.export import check_shapes

    (b1, h1, w1), (b2, h2, w2) = check_shapes(model_info_stub(size))
    assert (h1, w1) == size and b1 != b2
    assert h2 % 2 == 1 and w2 % 2 == 1


def model_info_stub(size):
    from stseg_deploy.metadata import ModelInfo

    return ModelInfo(2, 3, size, "Affine", "x", 4, "v", 0)


def test_bad_model_files(tmp_path: Path, exported) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="garbage.onnx: not a loadable ONNX model"):
        load_model(garbage, provider="cpu")
    with pytest.raises(FileNotFoundError, match="missing.onnx"):
        load_model(tmp_path / "missing.onnx", provider="cpu")
    with pytest.raises(ValueError, match="unknown model suffix"):
        load_model(tmp_path / "m.bin")
    bare = onnx.load(exported["onnx"])
    del bare.metadata_props[:]
    onnx.save(bare, tmp_path / "bare.onnx")
    with pytest.raises(ValueError, match="bare.onnx: no stseg metadata"):
        OnnxModel(tmp_path / "bare.onnx", provider="cpu")
    ts_garbage = tmp_path / "garbage.ts"
    ts_garbage.write_bytes(b"zip? no")
    with pytest.raises(ValueError, match="garbage.ts: not a loadable TorchScript model"):
        load_model(ts_garbage, provider="cpu")


def test_bad_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "bad.pt"
    path.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="bad.pt: not a readable stseg checkpoint"):
        export_checkpoint(path, tmp_path / "m.onnx")
    torch.save({"weights": 1}, path)
    with pytest.raises(ValueError, match="not an stseg checkpoint"):
        export_checkpoint(path, tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_training_checkpoint_given_as_model(exported) -> None:
    with pytest.raises(ValueError, match="a training checkpoint, not an exported model; run stseg-export"):
        load_model(exported["ckpt"], provider="cpu")


@pytest.mark.parametrize("keep", ["most", "half", "none"])
def test_truncated_checkpoint_is_named_in_one_whole_sentence(tmp_path: Path, keep: str) -> None:
    whole = _checkpoint(tmp_path / "whole.pt").read_bytes()
    path = tmp_path / "cut.pt"
    path.write_bytes(whole[: {"most": len(whole) - 10, "half": len(whole) // 2, "none": 0}[keep]])
    with pytest.raises(ValueError) as info:
        export_checkpoint(path, tmp_path / "m.onnx")
    message = str(info.value)
    assert message.startswith(f"{path}: not a readable stseg checkpoint (truncated or corrupt: ")
    reason = message.split("(truncated or corrupt: ", 1)[1].split(")", 1)[0]
    # A whole reason: no cut-off advice ("...checkpoint file is"), no errno noise, no open parenthesis.
    assert reason and reason[-1].isalnum() and not reason.endswith(" is"), message
    assert "Errno" not in reason and message.count("(") == message.count(")") and "\n" not in message
    assert not (tmp_path / "m.onnx").exists()


def test_the_paper_preset_exports_its_norm_and_resize(tmp_path: Path) -> None:
    """instance3d exports and runs within the tolerances on two shapes (export's own check),
    and the exported file says which normalisation and resize its training used, so that
    inference resizes flow the way training did."""
    torch.manual_seed(0)
    model = UNet3D(n_labels=3, num_layers=3, features_start=4, norm="instance3d")
    cfg = TrainConfig(data_file="d", base_dir="b", save_dir="s", image_size=(16, 24), n_labels=3,
                      features_start=4, norm="instance3d", resize="plain", preset="paper")
    ckpt = tmp_path / "paper.pt"
    save_checkpoint(ckpt, model, {"config": cfg.to_dict(), "epoch": 1})
    export_checkpoint(ckpt, tmp_path / "p.onnx", tmp_path / "p.ts")
    for path in (tmp_path / "p.onnx", tmp_path / "p.ts"):
        info = load_model(path, provider="cpu").info
        assert info.resize == "plain"
        assert "InstanceNorm3d" in info.normalisation
    x = example_input(1, 21, 30, seed=2)
    with torch.no_grad():
        expected = ExportWrapper(model_from_checkpoint(ckpt)[0])(x)[0].numpy()
    got = load_model(tmp_path / "p.onnx", provider="cpu").run(x.numpy())
    np.testing.assert_allclose(got, expected, atol=PROBA_ATOL, rtol=0)
