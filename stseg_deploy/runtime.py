"""Running an exported model: onnxruntime for ``.onnx`` (CUDA when it really loads, else CPU),
TorchScript for ``.ts`` / ``.pt`` when torch happens to be installed. Picked by file suffix.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Protocol

import numpy as np

from stseg_kernels import argmax_labels

from .errors import error_line
from .metadata import TORCHSCRIPT_EXTRA_FILE, ModelInfo

log = logging.getLogger(__name__)

PROVIDERS = ("auto", "cpu", "cuda")
# On the CPU a large call's activations outgrow the caches, so a batch of windows runs in
# calls of at most this many input pixels (windows × H × W; at least one window a call): one
# window at 128×224, 4 at 64×112. Measured on this project's 2-core VM (onnxruntime, 2 threads,
# ms per window by windows a call). With the folded export: the published-size network at
# 128×224, batch 8: 153 (1), 153 (2), 163 (4), 177 (8); mix-small at 64×112, batch 16: 11.2 (4),
# 11.5 (8), 12.3 (16), and with 1 thread 20.0 (4), 21.8 (16); stseg-infer on the dev split
# (one process) took 27.1 / 26.6 s in calls of 4 windows, 27.5 / 27.1 s in calls of 16, with
# the same labels. With the framewise export, on another (slower) day (2026-12-07): 151 (1),
# 152 (2), 165 (4), 168 (8) at 128×224; 13.6 (4), 13.8 (8), 13.7 (16) at 64×112, so the same
# sizes stay (in one process the framewise form is the faster one: docs/benchmarks.md). A GPU
# takes the batch whole.
CPU_CALL_PIXELS = 4 * 64 * 112
ONNX_SUFFIXES = (".onnx",)
TORCHSCRIPT_SUFFIXES = (".ts", ".pt", ".torchscript")


class SegmentationModel(Protocol):
    """What the pipeline needs from a runtime."""

    info: ModelInfo
    engine: str
    device: str

    def run(self, flow: np.ndarray, features: bool = False):
        """flow (B, 2, 3, H, W) float32 → proba (B, L, 3, H, W) [, features (B, C, 3, H, W)]."""

    def labels(self, flow: np.ndarray) -> np.ndarray:
        """flow (B, 2, 3, H, W) float32 → labels (B, 3, H, W) uint8, the argmax over segments."""


def _nvidia_driver_present() -> bool:
    # Trying the CUDA provider on a machine without a driver makes onnxruntime log a long
    # error before falling back; a cheap look for the driver avoids that noise.
    return (
        os.name == "nt"
        or Path("/proc/driver/nvidia/version").exists()
        or Path("/dev/nvidiactl").exists()
        or Path("/dev/nvidia0").exists()
    )


def _check_input(flow: np.ndarray) -> np.ndarray:
    if flow.ndim != 5 or flow.shape[1] != 2 or flow.shape[2] != 3:
        raise ValueError(f"model input must have shape (B, 2, 3, H, W), got {flow.shape}")
    return np.ascontiguousarray(flow, dtype=np.float32)


class OnnxModel:
    """An ONNX model in an onnxruntime session.

    Args:
        path: ``.onnx`` file written by ``stseg-export``.
        provider: ``auto`` (CUDA if it really loads, else CPU), ``cpu`` or ``cuda``
            (error if CUDA does not load).
        threads: intra-op threads for the CPU provider; None lets onnxruntime decide.
    """

    engine = "onnxruntime"

    def __init__(self, path: str | Path, provider: str = "auto", threads: int | None = None) -> None:
        import onnxruntime as ort

        self.path = Path(path)
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: model file not found")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads is not None:
            options.intra_op_num_threads = int(threads)
        wants_cuda = provider == "cuda" or (
            provider == "auto"
            and "CUDAExecutionProvider" in ort.get_available_providers()
            and _nvidia_driver_present()
        )
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if wants_cuda else ["CPUExecutionProvider"]
        if not wants_cuda:
            options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ValueError(f"{self.path}: not a loadable ONNX model ({exc})") from exc
        actual = self.session.get_providers()
        if provider == "cuda" and actual[0] != "CUDAExecutionProvider":
            raise RuntimeError(
                f"{self.path}: CUDA provider requested but onnxruntime runs on {actual[0]} "
                "(is onnxruntime-gpu installed with CUDA and cuDNN libraries present?)"
            )
        self.device = "cuda" if actual[0] == "CUDAExecutionProvider" else "cpu"
        meta = self.session.get_modelmeta().custom_metadata_map
        self.info = ModelInfo.from_metadata(meta, self.path)
        names = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if names != ["flow"] or outputs[:1] != ["proba"]:
            raise ValueError(f"{self.path}: expected input 'flow' and output 'proba', got {names} -> {outputs}")
        self.has_features = "features" in outputs
        # Models exported before the in-graph argmax have no 'labels' output.
        self.has_labels = "labels" in outputs
        log.debug("loaded %s on %s", self.path, actual[0])

    def _call(self, names: list[str], flow: np.ndarray) -> list[np.ndarray]:
        """The session on ``flow``, in chunks of windows on the CPU (see :data:`CPU_CALL_PIXELS`)."""
        chunk = len(flow) if self.device == "cuda" else max(1, CPU_CALL_PIXELS // (flow.shape[-2] * flow.shape[-1]))
        if chunk >= len(flow):
            return self.session.run(names, {"flow": flow})
        parts = [self.session.run(names, {"flow": flow[i : i + chunk]}) for i in range(0, len(flow), chunk)]
        return [np.concatenate([part[k] for part in parts]) for k in range(len(names))]

    def run(self, flow: np.ndarray, features: bool = False):
        flow = _check_input(flow)
        if features and not self.has_features:
            raise ValueError(f"{self.path}: this model has no 'features' output")
        names = ["proba", "features"] if features else ["proba"]
        out = self._call(names, flow)
        return tuple(out) if features else out[0]

    def labels(self, flow: np.ndarray) -> np.ndarray:
        if self.has_labels:
            return self._call(["labels"], _check_input(flow))[0]
        return argmax_labels(self.run(flow))


class TorchScriptModel:
    """A TorchScript model written by ``stseg-export --torchscript`` (needs torch installed)."""

    engine = "torchscript"

    def __init__(self, path: str | Path, provider: str = "auto", threads: int | None = None) -> None:
        self.path = Path(path)
        try:
            import torch
        except ImportError as exc:
            raise RuntimeError(
                f"{self.path}: TorchScript models need torch; install it or export to ONNX"
            ) from exc
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}; expected one of {PROVIDERS}")
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: model file not found")
        if provider == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"{self.path}: CUDA requested but torch sees no GPU")
        self.device = "cuda" if provider != "cpu" and torch.cuda.is_available() else "cpu"
        if threads is not None:
            torch.set_num_threads(int(threads))
        extra = {TORCHSCRIPT_EXTRA_FILE: ""}
        try:
            with warnings.catch_warnings():  # deprecated upstream, still the format asked for
                warnings.simplefilter("ignore", DeprecationWarning)
                self.module = torch.jit.load(str(self.path), map_location=self.device, _extra_files=extra).eval()
        except Exception as exc:  # torch raises several types for foreign files
            if _is_training_checkpoint(self.path):
                raise ValueError(
                    f"{self.path}: a training checkpoint, not an exported model; "
                    f"run stseg-export {self.path} --onnx MODEL.onnx first"
                ) from exc
            raise ValueError(f"{self.path}: not a loadable TorchScript model ({error_line(exc, limit=200)})") from exc
        raw = extra[TORCHSCRIPT_EXTRA_FILE]
        meta = {"stseg": raw.decode() if isinstance(raw, bytes) else raw} if raw else {}
        self.info = ModelInfo.from_metadata(meta, self.path)
        self._torch = torch
        self.has_features = True

    def _outputs(self, flow: np.ndarray) -> tuple:
        """The module's outputs for ``flow``: (proba, features[, labels]) tensors."""
        torch = self._torch
        with torch.inference_mode():
            return self.module(torch.from_numpy(_check_input(flow)).to(self.device))

    def run(self, flow: np.ndarray, features: bool = False):
        proba, feats = self._outputs(flow)[:2]
        if features:
            return proba.cpu().numpy(), feats.cpu().numpy()
        return proba.cpu().numpy()

    def labels(self, flow: np.ndarray) -> np.ndarray:
        out = self._outputs(flow)
        # Models exported before the in-graph argmax return (proba, features) only.
        return out[2].cpu().numpy() if len(out) > 2 else argmax_labels(out[0].cpu().numpy())


def _is_training_checkpoint(path: Path) -> bool:
    """torch.save archives hold data.pkl; TorchScript archives also hold code/."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith("/data.pkl") for n in names) and not any("/code/" in n for n in names)


def load_model(path: str | Path, provider: str = "auto", threads: int | None = None) -> SegmentationModel:
    """Open an exported model, choosing the runtime by suffix (``.onnx`` → onnxruntime)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in ONNX_SUFFIXES:
        return OnnxModel(path, provider, threads)
    if suffix in TORCHSCRIPT_SUFFIXES:
        return TorchScriptModel(path, provider, threads)
    raise ValueError(
        f"{path}: unknown model suffix {suffix!r}; expected {ONNX_SUFFIXES + TORCHSCRIPT_SUFFIXES}"
    )
