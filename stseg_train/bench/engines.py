"""Timing one model on each inference engine (torch, torch.compile, TorchScript, onnxruntime,
IO binding, TensorRT), at each precision, input size and batch."""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from stseg_deploy.runtime import OnnxModel

from ..config import default
from ..export import export_onnx, model_info
from ..export_wrapper import ExportWrapper, ReferenceWrapper, example_input, labels_of
from ..model import UNet3D
from .measure import BenchRow, EngineUnavailable, median_seconds, peak_memory

log = logging.getLogger(__name__)

ENGINES = ("torch", "torch-compile", "torchscript", "onnxruntime", "onnxruntime-iobinding", "tensorrt")
PRECISIONS = ("fp32", "fp16")


class Fp16Wrapper(torch.nn.Module):
    """float32 in and out, half precision inside: the exported graph casts at its ends."""

    def __init__(self, model: UNet3D) -> None:
        super().__init__()
        self.model = model.half()

    def forward(self, flow: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        proba, features = self.model.forward_with_features(flow.half())
        return proba.float(), features.float(), labels_of(proba)


class EngineFactory:
    """Builds, once per mask count, the callables that run one batch on each engine."""

    def __init__(
        self, model: UNet3D | None, workdir: Path, device: str, threads: int | None, onnx: Path | None = None
    ) -> None:
        """``model``: torch weights to time and export; or None with ``onnx``, an exported
        file, which then times only the onnxruntime engines (there are no torch weights)."""
        if (model is None) == (onnx is None):
            raise ValueError("give either a torch model or an ONNX file")
        self.model = model.eval() if model is not None else None
        self.workdir = workdir
        self.device = device
        self.threads = threads
        self._onnx: dict[str, Path] = {}
        if model is not None:
            # The metadata an export of this model would carry, at the default training size.
            payload = {
                "config": {"image_size": list(default("image_size")), "param_model": default("param_model")},
                "model_args": model.config,
                "version": "bench",
                "epoch": 0,
            }
            self.info = model_info(payload)
        else:
            self.info = OnnxModel(onnx, provider="cpu").info
            self._onnx["fp32"] = Path(onnx)

    @property
    def n_labels(self) -> int:
        return self.info.n_labels

    def onnx_path(self, precision: str) -> Path:
        if precision not in self._onnx:
            if self.model is None:
                raise EngineUnavailable(f"only the given ONNX file ({precision} would need torch weights)")
            path = self.workdir / f"L{self.model.n_labels}_{precision}.onnx"
            wrapper = ExportWrapper(self.model) if precision == "fp32" else Fp16Wrapper(_copy(self.model))
            export_onnx(wrapper, self.info, path)
            self._onnx[precision] = path
        return self._onnx[precision]

    def build(self, engine: str, precision: str) -> Callable[[np.ndarray], np.ndarray]:
        if precision == "fp16" and self.device == "cpu" and engine != "tensorrt":
            raise EngineUnavailable("fp16 is only timed on CUDA (CPU kernels for half 3D convolutions are slow or missing)")
        if engine in ("torch", "torch-compile", "torchscript"):
            if self.model is None:
                raise EngineUnavailable("--model is an ONNX file: there are no torch weights to run")
            # A copy: moving the shared model to the GPU would break later CPU-side exports.
            # torch runs the network as trained (the baseline); TorchScript the exported form.
            fp32 = ExportWrapper(_copy(self.model)) if engine == "torchscript" else ReferenceWrapper(_copy(self.model))
            module: torch.nn.Module = fp32 if precision == "fp32" else Fp16Wrapper(_copy(self.model))
            module = module.to(self.device).eval()
            if engine == "torch-compile":
                # Compiled on the first call (the warm-up runs) of each input shape: the
                # table's batches are constant, as a pipeline that pads its last batch has.
                # One compile per row of the table is allowed, and past that dynamo must fail
                # rather than fall back to eager under this engine's name.
                torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 64)
                torch._dynamo.config.fail_on_recompile_limit_hit = True
                module = torch.compile(module, dynamic=False)
            if engine == "torchscript":
                import warnings

                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", DeprecationWarning)
                    module = torch.jit.script(module)
            device = torch.device(self.device)

            def run_torch(x: np.ndarray) -> np.ndarray:
                with torch.inference_mode():
                    return module(torch.from_numpy(x).to(device))[0].cpu().numpy()

            return run_torch
        if engine == "onnxruntime":
            return self._session(precision).run
        if engine == "onnxruntime-iobinding":
            return self._iobinding(precision)
        if engine == "tensorrt":
            return self._tensorrt(precision)
        raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")

    def _session(self, precision: str) -> OnnxModel:
        """The ONNX export of ``precision`` in onnxruntime on this device."""
        try:
            return OnnxModel(self.onnx_path(precision), provider=self.device, threads=self.threads)
        except RuntimeError as exc:  # CUDA asked for but not there
            raise EngineUnavailable(str(exc)) from exc

    def _iobinding(self, precision: str) -> Callable[[np.ndarray], np.ndarray]:
        """onnxruntime with I/O binding, as a GPU pipeline would run it: the input copied to
        the device once, only the uint8 labels copied back (no probabilities leave it)."""
        import onnxruntime as ort

        provider = self.device
        session = self._session(precision)
        if not session.has_labels:
            raise EngineUnavailable("the ONNX file has no 'labels' output (exported before it existed)")

        def run(x: np.ndarray) -> np.ndarray:
            binding = session.session.io_binding()
            binding.bind_ortvalue_input("flow", ort.OrtValue.ortvalue_from_numpy(x, provider, 0))
            binding.bind_output("labels", provider)
            session.session.run_with_iobinding(binding)
            return binding.copy_outputs_to_cpu()[0]

        return run

    def _tensorrt(self, precision: str) -> Callable[[np.ndarray], np.ndarray]:
        import onnxruntime as ort

        if "TensorrtExecutionProvider" not in ort.get_available_providers():
            raise EngineUnavailable("onnxruntime has no TensorRT provider here")
        try:
            # Without TensorRT's own library, onnxruntime prints a page of errors before
            # falling back; a quick look first keeps the skip to one line.
            ctypes.CDLL("libnvinfer.so.10")
        except OSError as exc:
            raise EngineUnavailable(f"TensorRT libraries not found ({exc})") from exc
        options = {"trt_fp16_enable": precision == "fp16", "trt_engine_cache_enable": False}
        try:
            session = ort.InferenceSession(
                str(self.onnx_path("fp32")),
                providers=[("TensorrtExecutionProvider", options), "CUDAExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime raises its own types
            raise EngineUnavailable(f"TensorRT session failed: {exc}") from exc
        if session.get_providers()[0] != "TensorrtExecutionProvider":
            raise EngineUnavailable(f"TensorRT did not load (runs on {session.get_providers()[0]})")
        return lambda x: session.run(["proba"], {"flow": x})[0]


def _copy(model: UNet3D) -> UNet3D:
    clone = UNet3D(**model.config)
    clone.load_state_dict(model.state_dict())
    return clone.eval()


def bench_model(
    factory: EngineFactory,
    engines: list[str],
    precisions: list[str],
    sizes: list[tuple[int, int]],
    batches: list[int],
    repeats: int,
    warmup: int = 2,
) -> tuple[list[BenchRow], list[str]]:
    """Time every engine × precision × size × batch for one model. Returns (rows, skipped notes)."""
    rows, notes = [], []
    sync = torch.cuda.synchronize if factory.device == "cuda" else (lambda: None)
    provider = factory.device
    for engine in engines:
        for precision in precisions:
            try:
                run = factory.build(engine, precision)
            except EngineUnavailable as exc:
                notes.append(f"{engine} {precision}: skipped ({exc})")
                continue
            for (h, w) in sizes:
                for batch in batches:
                    x = example_input(batch, h, w).numpy()
                    with peak_memory(factory.device) as peak:
                        seconds = median_seconds(lambda: run(x), repeats, warmup, sync)
                    rows.append(BenchRow(
                        engine, provider, precision, h, w, factory.n_labels, batch,
                        round(batch / seconds, 3), round(seconds / batch * 1e3, 3), round(peak[0], 1),
                    ))
                    log.info("%s", rows[-1])
    return rows, notes
