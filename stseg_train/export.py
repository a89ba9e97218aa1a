"""Checked export of a checkpoint to ONNX (one file, metadata inside) and TorchScript."""

from __future__ import annotations

import io
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stseg_deploy.flow.recipe import FlowRecipe
from stseg_deploy.io.atomic import atomic_write
from stseg_deploy.metadata import METADATA_KEY, TORCHSCRIPT_EXTRA_FILE, ModelInfo
from stseg_deploy.preprocess import DEFAULT_RESIZE, WINDOW

from .checkpoint import model_from_checkpoint
from .config import DEFAULT_OPSET
from .export_wrapper import ExportWrapper, ReferenceWrapper, example_input
from .model import NORMS

log = logging.getLogger(__name__)

# float32 softmax outputs of the same graph in two runtimes: differences come from
# convolution algorithms and reduction order, a few 1e-6 in practice.
PROBA_ATOL = 1e-4
FEATURES_RTOL = 1e-3
FEATURES_ATOL = 1e-3


class ExportCheckError(RuntimeError):
    """An exported model disagrees with torch beyond the stated tolerances."""


@dataclass
class ParityReport:
    engine: str
    shape: tuple[int, ...]
    max_abs_proba: float
    max_abs_features: float


def model_info(payload: dict[str, Any]) -> ModelInfo:
    """Metadata for the exported file, from a checkpoint dict."""
    cfg = payload["config"]
    args = payload["model_args"]
    return ModelInfo(
        n_labels=int(args["n_labels"]),
        frames=WINDOW,
        image_size=(int(cfg["image_size"][0]), int(cfg["image_size"][1])),
        param_model=str(cfg["param_model"]),
        normalisation=NORMS[args.get("norm", "frame")],
        features=int(args["features_start"]),
        version=str(payload.get("version", "unknown")),
        epoch=int(payload.get("epoch", -1)),
        flow=FlowRecipe.from_record(payload.get("data_flow")),
        resize=str(cfg.get("resize", DEFAULT_RESIZE)),
    )


def check_shapes(info: ModelInfo) -> list[tuple[int, int, int]]:
    """Two (B, H, W) shapes: the training size at batch 2 and odd sides at batch 1.

    Odd sides are never a multiple of the padding multiple, so padding and dynamic H, W
    are really exercised.
    """
    h, w = info.image_size

    def odd(n: int) -> int:
        return n if n % 2 else n + 1

    return [(2, h, w), (1, odd(h + 5), odd(max(w - 10, 3)))]


def _compare(engine: str, shape, expected, got) -> ParityReport:
    """``expected`` (torch) and ``got`` (the runtime): (proba, features, labels) each."""
    proba_err = float(np.max(np.abs(expected[0] - got[0])))
    feat_err = float(np.max(np.abs(expected[1] - got[1])))
    report = ParityReport(engine, tuple(shape), proba_err, feat_err)
    if proba_err > PROBA_ATOL or not np.allclose(got[1], expected[1], rtol=FEATURES_RTOL, atol=FEATURES_ATOL):
        raise ExportCheckError(
            f"{engine} disagrees with torch on input {tuple(shape)}: max |dproba| {proba_err:.3g} "
            f"(tolerance {PROBA_ATOL}), max |dfeatures| {feat_err:.3g} (rtol {FEATURES_RTOL}, atol {FEATURES_ATOL})"
        )
    # The graph's labels are exactly its own probabilities' argmax; against torch's, they
    # may differ only where torch's two best segments are closer than the proba tolerance.
    if got[2].dtype != np.uint8 or not np.array_equal(got[2], got[0].argmax(axis=1)):
        raise ExportCheckError(f"{engine}: its labels output is not the argmax of its own probabilities on input {tuple(shape)}")
    top2 = np.sort(expected[0], axis=1)[:, -2:]
    close = (top2[:, 1] - top2[:, 0]) <= 2 * PROBA_ATOL
    if not np.array_equal(got[2][~close], expected[2][~close]):
        raise ExportCheckError(f"{engine} labels disagree with torch's where its segments are not tied, on input {tuple(shape)}")
    return report


def export_onnx(wrapper: ExportWrapper, info: ModelInfo, out: Path, opset: int = DEFAULT_OPSET) -> None:
    """Export with the dynamo exporter, dynamic B, H, W, all weights inside one file."""
    import onnx

    wrapper = wrapper.eval()
    # torch.onnx warns that torchvision's detection ops are unregistered: irrelevant here.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)

    batch, height, width = (torch.export.Dim(n, min=1) for n in ("batch", "height", "width"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp_file = Path(tmp) / "model.onnx"
        # torch's exporter warns about its own pytree internals; nothing for users to act on.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            torch.onnx.export(
                wrapper,
                (example_input(2, *info.image_size),),
                tmp_file,
                dynamo=True,
                verbose=False,
                external_data=False,
                input_names=["flow"],
                output_names=["proba", "features", "labels"],
                opset_version=opset,
                dynamic_shapes={"flow": {0: batch, 3: height, 4: width}},
            )
        proto = onnx.load(tmp_file)
    del proto.metadata_props[:]
    for key, value in info.to_metadata().items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    proto.doc_string = "stseg ST-MS motion segmentation: flow (B,2,3,H,W) -> proba (B,L,3,H,W), features, labels (B,3,H,W) uint8"
    onnx.checker.check_model(proto)
    with atomic_write(out) as handle:
        handle.write(proto.SerializeToString())


def export_torchscript(wrapper: ExportWrapper, info: ModelInfo, out: Path) -> None:
    """Script the wrapper (keeps dynamic sizes) and store the metadata as an extra file."""
    # TorchScript is deprecated upstream but still what many C++ deployments load; the
    # warning says nothing the user can act on here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        scripted = torch.jit.script(wrapper)
        buffer = io.BytesIO()
        torch.jit.save(scripted, buffer, _extra_files={TORCHSCRIPT_EXTRA_FILE: info.to_metadata()[METADATA_KEY]})
    with atomic_write(out) as handle:
        handle.write(buffer.getvalue())


def check_exports(wrapper: ReferenceWrapper, info: ModelInfo, onnx_path: Path | None, ts_path: Path | None) -> list[ParityReport]:
    """Run the exported files and torch (``wrapper``: the network as trained) on two input
    shapes; raise ExportCheckError on mismatch."""
    from stseg_deploy.runtime import load_model

    engines = [load_model(p, provider="cpu") for p in (onnx_path, ts_path) if p is not None]
    reports = []
    for seed, (b, h, w) in enumerate(check_shapes(info)):
        x = example_input(b, h, w, seed=seed + 1)
        with torch.no_grad():
            expected = [t.numpy() for t in wrapper(x)]
        for engine in engines:
            proba, features = engine.run(x.numpy(), features=True)
            reports.append(_compare(engine.engine, x.shape, expected, (proba, features, engine.labels(x.numpy()))))
    return reports


def export_checkpoint(
    checkpoint: str | Path,
    onnx_path: str | Path | None,
    torchscript_path: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
) -> list[ParityReport]:
    """Rebuild the model from ``checkpoint`` alone, export, then check parity with torch.

    Files that fail the check are never moved into place: an existing model at the
    target path stays as it was.
    """
    if onnx_path is None and torchscript_path is None:
        raise ValueError("nothing to export: give an ONNX and/or a TorchScript output path")
    model, payload = model_from_checkpoint(checkpoint)
    wrapper = ExportWrapper(model).eval()
    # Checked against the network as trained, not against the framewise form that is exported.
    reference = ReferenceWrapper(model).eval()
    info = model_info(payload)
    targets = [Path(p) if p is not None else None for p in (onnx_path, torchscript_path)]
    # Write beside the targets and move into place only once checked, so a failed export
    # never replaces a good model of the same name.
    partial = [None if t is None else t.with_name(f".{t.stem}.partial{t.suffix}") for t in targets]
    try:
        if partial[0] is not None:
            export_onnx(wrapper, info, partial[0], opset)
        if partial[1] is not None:
            export_torchscript(wrapper, info, partial[1])
        reports = check_exports(reference, info, partial[0], partial[1])
        for tmp, target in zip(partial, targets):
            if tmp is not None:
                os.replace(tmp, target)
    finally:
        for tmp in partial:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
    return reports
