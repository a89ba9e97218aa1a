"""stseg deploy: torch-free flow I/O, preprocessing and inference for ST-MS motion segmentation."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from .errors import DataSplitError, FlowFileError, StsegInputError
from .io.flowio import read_flow, read_kitti_png, write_flow
from .preprocess import flow_windows, resize_flow, resize_labels

try:
    __version__ = version("stseg")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"

__all__ = [
    "DataSplitError",
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
