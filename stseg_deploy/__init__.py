"""stseg deploy: torch-free flow I/O, preprocessing and inference for ST-MS motion segmentation.

    import stseg_deploy as st
    result = st.segment("clip.mp4")   # or a frame folder, or a flow folder
    result.labels                      # (F, H, W) uint8

:func:`segment`, :func:`list_models`, :class:`Segmenter` and :func:`load_model` are loaded on
first use, so that ``import stseg_deploy`` stays light (no onnxruntime until a model runs).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import DataSplitError, FlowFileError, StsegInputError
from .io.flowio import read_flow, read_kitti_png, write_flow
from .preprocess import flow_windows, resize_flow, resize_labels

try:
    __version__ = version("stseg")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

_LAZY = {
    "Segmentation": "api",
    "segment": "api",
    "list_models": "api",
    "Segmenter": "pipeline",
    "load_model": "runtime",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "DataSplitError",
    "Segmentation",
    "Segmenter",
    "list_models",
    "load_model",
    "segment",
    "FlowFileError",
    "StsegInputError",
    "__version__",
    "flow_windows",
    "read_flow",
    "read_kitti_png",
    "resize_flow",
    "resize_labels",
    "write_flow",
]
