"""Test-time augmentation: the model also runs on the mirrored windows, and the two
predictions are averaged.

Mirroring a flow left-right reverses its columns and negates its horizontal component u;
the model's probabilities for the mirrored window, mirrored back, predict the same frames.
A network trained without labels names its segments arbitrarily, so the mirrored run
usually permutes them: before averaging, each window's mirrored segments are matched to
the plain run's by the permutation that maximises their soft overlap (the sum over
pixels and the window's frames of p_plain[k] · p_mirrored[perm[k]]), an exact assignment
for any number of segments. Averaging without it mixes unrelated segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stseg_kernels import argmax_labels, assign_max

from .base import StageSettings, option

if TYPE_CHECKING:  # settings are read by stseg-eval, which loads no runtime
    from ..runtime import SegmentationModel


@dataclass(frozen=True, kw_only=True)
class TtaSettings(StageSettings):
    """``mode``: "flip" (each window also runs mirrored, in the same model call, and the two
    predictions are averaged, segments aligned) or "none"."""

    MODE_KEY = "tta"
    PARAMS_KEY = "flip"  # for parameters the flip may gain; it has none yet, so records hold only the mode
    MODES = ("none", "flip")

    mode: str = option("tta", "flip")


def mirror_windows(windows: np.ndarray) -> np.ndarray:
    """Left-right mirror of model inputs: windows (B, 2, T, h, w) float32, pixels; columns
    reversed and u (channel 0) negated. Returns a new contiguous array."""
    mirrored = np.ascontiguousarray(windows[..., ::-1])
    mirrored[:, 0] *= -1
    return mirrored


def align_segments(reference: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Per window, the permutation of ``other``'s segments that best matches ``reference``'s.

    reference, other: (B, L, ...) probabilities over the same pixels. Returns perm (B, L)
    int64: ``other[b, perm[b, k]]`` is the segment matched to ``reference[b, k]``, the
    permutation maximising ``sum_k overlap[k, perm[k]]`` with ``overlap[k, l] = sum_x
    reference[b, k, x] * other[b, l, x]``.
    """
    if reference.shape != other.shape:
        raise ValueError(f"shapes differ: {reference.shape} and {other.shape}")
    b, n = reference.shape[:2]
    ref = reference.reshape(b, n, -1).astype(np.float64, copy=False)
    oth = other.reshape(b, n, -1).astype(np.float64, copy=False)
    overlap = ref @ oth.transpose(0, 2, 1)  # (B, L, L)
    return np.stack([assign_max(np.ascontiguousarray(o)) for o in overlap])


def flip_average(proba: np.ndarray, mirrored_proba: np.ndarray) -> np.ndarray:
    """The average of a batch's probabilities and its mirrored run's, segments aligned.

    proba: (B, L, T, h, w) of the plain windows; mirrored_proba: the model's output for
    :func:`mirror_windows` of the same windows (still mirrored). Returns (B, L, T, h, w)
    float32, the plain run's segment order.
    """
    back = mirrored_proba[..., ::-1]
    perm = align_segments(proba, back)
    matched = np.take_along_axis(back, perm[:, :, None, None, None], axis=1)
    return ((proba + matched) * np.float32(0.5)).astype(np.float32, copy=False)


def run_flipped(model: SegmentationModel, windows: np.ndarray, features: bool = False):
    """Probabilities of ``windows`` (B, 2, T, h, w) averaged with their mirrored run's, in one
    model call of 2B windows (so a GPU pays little for the second half). Returns proba
    (B, L, T, h, w) float32, labels (B, T, h, w) uint8 and, when ``features``, the plain
    run's features (B, C, T, h, w), else None."""
    b = len(windows)
    both = np.concatenate([windows, mirror_windows(windows)])
    out = model.run(both, features=features)
    proba, feats = (out if features else (out, None))
    averaged = flip_average(proba[:b], proba[b:])
    return averaged, argmax_labels(averaged), None if feats is None else feats[:b]
