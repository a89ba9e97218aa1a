"""Compiled kernels of stseg: label maps of probabilities, temporal linking, unravelling,
mask selection, scores, the last step of a guided filter, and motion fits on a grid of flow.

numpy + numba only. Kernels are compiled on first use for uint8 and int64 labels and
cached on disk (``cache=True``); other integer dtypes are converted at the boundary.
Slow pure-numpy references for tests and benchmarks live in ``stseg_kernels.reference``.
"""

from ._hungarian import assign_max
from .argmax import argmax_labels
from .guided import guided_coefficients, guided_labels
from .linking import DEFAULT_CUT_SIZE, LINK_METHODS, link_windows, unravel_windows
from .motionfit import MotionGrid, quadratic_terms
from .scores import jaccard
from .selection import frame_chunks, select_labels, select_masks

__all__ = [
    "DEFAULT_CUT_SIZE",
    "LINK_METHODS",
    "MotionGrid",
    "argmax_labels",
    "assign_max",
    "frame_chunks",
    "guided_coefficients",
    "guided_labels",
    "jaccard",
    "link_windows",
    "quadratic_terms",
    "select_labels",
    "select_masks",
    "unravel_windows",
]
