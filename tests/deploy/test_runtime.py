"""Tests for stseg_deploy.runtime on a tiny ONNX graph built with onnx.helper (no torch):
the session, its providers, the metadata it reads, and the errors it gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from stseg_deploy.metadata import ModelInfo  # noqa: E402
from stseg_deploy.runtime import OnnxModel, load_model  # noqa: E402

WEIGHTS = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]], np.float32)  # L=3 from (u, v)


def _tiny_model(path: Path, *, input_name: str = "flow", features: bool = True, metadata: bool = True, labels: str | None = None) -> Path:
    """proba = softmax over L of W·flow per pixel; features = the flow itself; with
    ``labels="argmax"`` a uint8 labels output (ArgMax + Cast, as stseg-export writes), with
    ``labels="zeros"`` one that is always 0 (to see which labels a runtime returns)."""
    dims = ["B", 2, 3, "H", "W"]
    inputs = [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, dims)]
    outputs = [helper.make_tensor_value_info("proba", TensorProto.FLOAT, ["B", 3, 3, "H", "W"])]
    nodes = [
        helper.make_node("Einsum", ["weights", input_name], ["logits"], equation="lc,bcthw->blthw"),
        helper.make_node("Softmax", ["logits"], ["proba"], axis=1),
    ]
    if features:
        nodes.append(helper.make_node("Identity", [input_name], ["features"]))
        outputs.append(helper.make_tensor_value_info("features", TensorProto.FLOAT, dims))
    if labels is not None:
        source = "proba" if labels == "argmax" else "zero_proba"
        if labels == "zeros":
            nodes.append(helper.make_node("Mul", ["proba", "zero"], ["zero_proba"]))
        nodes.append(helper.make_node("ArgMax", [source], ["label_index"], axis=1, keepdims=0))
        nodes.append(helper.make_node("Cast", ["label_index"], ["labels"], to=TensorProto.UINT8))
        outputs.append(helper.make_tensor_value_info("labels", TensorProto.UINT8, ["B", 3, "H", "W"]))
    weights = helper.make_tensor("weights", TensorProto.FLOAT, WEIGHTS.shape, WEIGHTS.ravel().tolist())
    zero = helper.make_tensor("zero", TensorProto.FLOAT, [], [0.0])
    graph = helper.make_graph(nodes, "tiny", inputs, outputs, initializer=[weights, zero])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if metadata:
        info = ModelInfo(3, 3, (8, 12), "QuadraticFullPT", "none", 2, "test", 0, resize="plain")
        helper.set_model_props(model, info.to_metadata())
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def _reference(flow: np.ndarray) -> np.ndarray:
    logits = np.einsum("lc,bcthw->blthw", WEIGHTS, flow)
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("shape", [(1, 8, 12), (3, 5, 7)])
def test_onnx_model_runs_on_cpu_and_matches_the_graph(tmp_path: Path, shape) -> None:
    model = load_model(_tiny_model(tmp_path / "tiny.onnx"), provider="cpu", threads=1)
    assert isinstance(model, OnnxModel) and model.device == "cpu"
    assert model.session.get_providers() == ["CPUExecutionProvider"]
    assert model.info.n_labels == 3 and model.info.resize == "plain" and model.info.image_size == (8, 12)
    b, h, w = shape
    flow = np.random.default_rng(0).normal(size=(b, 2, 3, h, w)).astype(np.float32)
    proba, features = model.run(flow, features=True)
    np.testing.assert_allclose(proba, _reference(flow), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(features, flow)
    np.testing.assert_allclose(model.run(flow).sum(axis=1), 1.0, atol=1e-6)


def test_labels_come_from_the_graph_when_it_has_them(tmp_path: Path) -> None:
    flow = np.random.default_rng(1).normal(size=(2, 2, 3, 5, 7)).astype(np.float32)
    expected = _reference(flow).argmax(axis=1)
    for kind in (None, "argmax"):  # an older export without the output: argmax of proba
        model = OnnxModel(_tiny_model(tmp_path / f"{kind}.onnx", labels=kind), provider="cpu")
        assert model.has_labels == (kind is not None)
        got = model.labels(flow)
        assert got.dtype == np.uint8 and got.shape == (2, 3, 5, 7)
        np.testing.assert_array_equal(got, expected)
    assert expected.any()
    # What the runtime returns is the graph's output, not a second argmax of proba.
    zeros = OnnxModel(_tiny_model(tmp_path / "zeros.onnx", labels="zeros"), provider="cpu")
    np.testing.assert_array_equal(zeros.labels(flow), np.zeros((2, 3, 5, 7), np.uint8))


def test_models_that_are_not_ours_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no stseg metadata"):
        OnnxModel(_tiny_model(tmp_path / "bare.onnx", metadata=False), provider="cpu")
    with pytest.raises(ValueError, match=r"expected input 'flow'.*\['x'\]"):
        OnnxModel(_tiny_model(tmp_path / "x.onnx", input_name="x"), provider="cpu")
    no_features = OnnxModel(_tiny_model(tmp_path / "nf.onnx", features=False), provider="cpu")
    with pytest.raises(ValueError, match="no 'features' output"):
        no_features.run(np.zeros((1, 2, 3, 4, 4), np.float32), features=True)
    with pytest.raises(ValueError, match=r"\(B, 2, 3, H, W\)"):
        no_features.run(np.zeros((1, 2, 4, 4), np.float32))
    with pytest.raises(ValueError, match="unknown model suffix"):
        load_model(tmp_path / "m.bin")


def test_large_batches_run_in_chunks_with_the_same_outputs(monkeypatch) -> None:
    """On the CPU a batch beyond CPU_CALL_PIXELS runs in several calls; what comes back is the
    batch's outputs in order, as one call gives them."""
    import stseg_deploy.runtime as runtime
    from stseg_deploy.zoo import resolve_model

    model = OnnxModel(resolve_model("mix-small")[0], provider="cpu")
    rng = np.random.default_rng(0)
    flow = rng.normal(scale=3.0, size=(5, 2, 3, 16, 24)).astype(np.float32)
    whole_proba, whole_features = model.run(flow, features=True)
    whole_labels = model.labels(flow)
    calls = []
    real = model.session.run
    monkeypatch.setattr(model.session, "run", lambda names, feeds: calls.append(len(feeds["flow"])) or real(names, feeds))
    monkeypatch.setattr(runtime, "CPU_CALL_PIXELS", 2 * 16 * 24)
    proba, features = model.run(flow, features=True)
    assert calls == [2, 2, 1]
    np.testing.assert_allclose(proba, whole_proba, atol=1e-6)
    np.testing.assert_allclose(features, whole_features, atol=1e-5)
    assert np.array_equal(model.labels(flow), whole_labels)
