"""Input checks shared by the public functions.

Everything here runs in plain numpy before any compiled kernel sees the data, so a bad
argument fails with a message naming the argument instead of crashing inside numba.
The one exception is the label *range* of uint8 inputs, which the kernels check in the
pass they make anyway (see :func:`work_labels`).
"""

from __future__ import annotations

import operator

import numpy as np

__all__ = [
    "check_n_labels",
    "check_cut_size",
    "check_shape",
    "label_array",
    "work_labels",
    "mask_array",
    "raise_label_range",
]


def _integer(value: object, message: str) -> int:
    """``value`` as an int; bools and non-integers raise TypeError with ``message``."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(message)
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(message) from None


def check_n_labels(n_labels: object) -> int:
    """Return ``n_labels`` as an int, or raise if it is not an integer >= 1."""
    n = _integer(n_labels, f"n_labels must be an integer, got {n_labels!r}")
    if n < 1:
        raise ValueError(f"n_labels must be >= 1, got {n}")
    return n


def check_cut_size(cut_size: object) -> int | None:
    """Return ``cut_size`` as an int >= 1, or None for 'no cut'."""
    if cut_size is None:
        return None
    c = _integer(cut_size, f"cut_size must be None or an integer, got {cut_size!r}")
    if c < 1:
        raise ValueError(f"cut_size must be >= 1 or None, got {c}")
    return c


def check_shape(arr: np.ndarray, name: str, shape: tuple[int | None, ...], layout: str) -> None:
    """Raise unless ``arr`` has ``len(shape)`` dimensions and the fixed sizes in ``shape``.

    ``layout`` is the human-readable form (e.g. ``"(N, 3, H, W)"``) used in the message.
    """
    if arr.ndim != len(shape):
        raise ValueError(f"{name} must have shape {layout}, got {arr.ndim}-D array of shape {arr.shape}")
    for axis, size in enumerate(shape):
        if size is not None and arr.shape[axis] != size:
            raise ValueError(f"{name} must have shape {layout}, got shape {arr.shape}")


def label_array(x: object, name: str) -> np.ndarray:
    """``x`` as a numpy array with an integer (not bool) dtype, or TypeError."""
    arr = np.asarray(x)
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype, got {arr.dtype}")
    return arr


def raise_label_range(name: str, bad_value: int, n_labels: int) -> None:
    """Raise the standard out-of-range error for a label value."""
    raise ValueError(f"{name} holds label {int(bad_value)}, outside the valid range [0, {n_labels})")


def work_labels(arr: np.ndarray, name: str, n_labels: int) -> tuple[np.ndarray, bool]:
    """Labels as the C-contiguous array the kernels run on, and whether the range is unchecked.

    The kernels are compiled for two dtypes only (uint8, int64), which keeps the compile time
    and the numba cache small. uint8 input is passed through untouched and its range is
    checked by the kernels in the pass they make anyway (a separate pass would cost about as
    much as the whole uint8 linking). Any other dtype is range-checked here, then narrowed to
    uint8 when the labels fit, else widened to int64.

    Returns ``(work, needs_range_check)``.
    """
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr), True
    if arr.size:
        lo = arr.min()
        if lo < 0:
            raise_label_range(name, lo, n_labels)
        hi = arr.max()
        if hi >= n_labels:
            raise_label_range(name, hi, n_labels)
    work_dtype = np.uint8 if n_labels <= 256 else np.int64
    return np.ascontiguousarray(arr, dtype=work_dtype), False


def mask_array(x: object, name: str) -> np.ndarray:
    """A bool or integer mask as a C-contiguous uint8 array of 0/1 (non-zero is foreground)."""
    arr = np.asarray(x)
    if arr.dtype == np.bool_:
        # numpy bools are bytes holding 0 or 1, so the view is free and exact.
        return np.ascontiguousarray(arr).view(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must be a bool or integer mask, got dtype {arr.dtype}")
    return (arr != 0).view(np.uint8)
