"""Compiled kernels of stseg: label maps of probabilities, temporal linking, unravelling,
mask selection, scores, the last step of a guided filter, and motion fits on a grid of flow.

numpy + numba only. Kernels are compiled on first use for uint8 and int64 labels and
cached on disk (``cache=True``); other integer dtypes are converted at the boundary.
Slow pure-numpy references for tests and benchmarks live in ``stseg_kernels.reference``.
"""

from pathlib import Path as _Path

from . import _counting
from ._cache import drop_stale_cache as _drop_stale_cache
from ._cache import numba_cache_dir as _numba_cache_dir
from ._hungarian import assign_max
from .argmax import argmax_labels
from .guided import guided_coefficients, guided_labels
from .linking import DEFAULT_CUT_SIZE, LINK_METHODS, LINK_SPANS, is_chunk_start, link_windows, unravel_windows
from .motionfit import MotionGrid, quadratic_terms
from .scores import jaccard
from .selection import frame_chunks, select_labels, select_masks

__all__ = [
    "DEFAULT_CUT_SIZE",
    "LINK_METHODS",
    "LINK_SPANS",
    "MotionGrid",
    "argmax_labels",
    "assign_max",
    "frame_chunks",
    "guided_coefficients",
    "guided_labels",
    "is_chunk_start",
    "jaccard",
    "link_windows",
    "quadratic_terms",
    "select_labels",
    "select_masks",
    "unravel_windows",
]

# Before any kernel runs (numba loads its cache on a kernel's first call).
_SOURCES = _Path(__file__).parent
_drop_stale_cache(_SOURCES, _numba_cache_dir(_counting._hist16, _SOURCES))
