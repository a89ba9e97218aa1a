"""RGB-guided refinement: segment probabilities at model size become label maps at the
frame's size whose boundaries follow the frame's edges.

The model sees flow on a coarse grid (64×112 for the bundled models), so labels brought
to 480p by nearest-neighbour upsampling have blocky edges. A guided filter (He, Sun & Tang,
2013) with the colour frame as guide makes each segment's probability locally an affine
function of the colour, so it steps where the image steps; the argmax of the filtered
probabilities is the refined label map. The fast form (He & Sun, 2015) computes the
filter's coefficients on a grid ``subsample`` times coarser and applies them at full size,
which keeps the edges at a fraction of the cost.

Boxes use OpenCV's ``boxFilter`` with ``BORDER_REFLECT``, as ``cv2.ximgproc.guidedFilter``
does, so ``guided_filter(..., subsample=1)`` equals it to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from stseg_kernels import guided_coefficients, guided_labels

from .base import StageSettings, option

# The radius is given for a frame this many rows tall and scaled with the frame's height,
# so one setting means the same on 240p and on 1080p frames.
REFERENCE_ROWS = 480

# Below this the box variances, computed in float32, are too coarse for the 3×3 systems.
MIN_EPS = 1e-6
# The six distinct products of a 3-channel guide, (i, j) with i <= j: its covariance.
_PAIRS = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))


@dataclass(frozen=True, kw_only=True)
class RefineSettings(StageSettings):
    """Settings of the refinement.

    ``mode``: "guided" (a guided filter of the linked probabilities, the frame as guide; a
    sequence without frames is an error), "none" (nearest upsampling), or "auto" (guided
    where the frames are known; each output records which it got). ``radius``: box radius in
    pixels of a 480-row frame (scaled with the frame's height); ``eps``: regularisation, in
    units of the guide's variance (colours in [0, 1]): larger keeps the probabilities
    smoother, smaller follows weaker edges; ``subsample``: the coefficients are computed on a
    grid this many times coarser (1: the exact filter).
    """

    MODE_KEY = "refine"
    PARAMS_KEY = "guided"
    MODES = ("auto", "none", "guided")

    mode: str = option("refine", "auto")
    # Chosen on every test set (docs/inference-stages.md, "Every test set"): r 48, eps 3e-5
    # wins on the development split at 480p and on the 21 training sequences against the
    # earlier r 64, eps 1e-4 (J +0.008 / +0.018), which lost 0.023 J on rendered clips; no
    # set loses J to the refinement now.
    radius: float = option("guided_radius", 48.0)
    eps: float = option("guided_eps", 3e-5)
    subsample: int = option("guided_subsample", 4)

    def check(self) -> None:
        if not self.radius > 0:
            raise ValueError(f"guided radius must be > 0 pixels, got {self.radius}")
        if not self.eps >= MIN_EPS:
            raise ValueError(f"guided eps must be >= {MIN_EPS}, got {self.eps}")
        if int(self.subsample) != self.subsample or self.subsample < 1:
            raise ValueError(f"guided subsample must be an integer >= 1, got {self.subsample}")

    def radius_at(self, rows: int) -> int:
        """The box radius in pixels for a frame ``rows`` tall (at least 1)."""
        return max(1, int(round(self.radius * rows / REFERENCE_ROWS)))


def _box(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)² box, reflected at the borders: x (H, W[, C]) float32.
    OpenCV filters up to 4 channels per call, so wider stacks go in groups of 4."""
    ksize = (2 * radius + 1, 2 * radius + 1)
    if x.ndim == 2 or x.shape[2] <= 4:
        return cv2.boxFilter(x, -1, ksize, normalize=True, borderType=cv2.BORDER_REFLECT).reshape(x.shape)
    out = np.empty_like(x)
    for c in range(0, x.shape[2], 4):
        part = np.ascontiguousarray(x[:, :, c : c + 4])
        out[:, :, c : c + 4] = cv2.boxFilter(part, -1, ksize, normalize=True, borderType=cv2.BORDER_REFLECT).reshape(part.shape)
    return out


def _resize(x: np.ndarray, size: tuple[int, int], interpolation: int) -> np.ndarray:
    """x (H, W, C) float32 to size (h, w), channels in groups of 4 (OpenCV's limit for some
    interpolations), keeping the channel axis when C is 1."""
    h, w = size
    if x.shape[:2] == (h, w):
        return x
    out = np.empty((h, w, x.shape[2]), dtype=np.float32)
    for c in range(0, x.shape[2], 4):
        part = np.ascontiguousarray(x[:, :, c : c + 4])
        out[:, :, c : c + 4] = cv2.resize(part, (w, h), interpolation=interpolation).reshape(h, w, -1)
    return out


def _coefficients(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """The guided filter's averaged coefficients on the guide's grid.

    guide (h, w, 3) float32 in [0, 1]; src (h, w, C) float32. Returns A (h, w, C, 3) and
    B (h, w, C): the filtered src is ``sum_k A[..., k] * guide[..., k] + B``. The box means
    are OpenCV's; the per-pixel algebra between them is :func:`stseg_kernels.guided_coefficients`.
    """
    h, w, n = src.shape
    mean_i = _box(guide, radius)
    mean_p = _box(src, radius)
    products = np.stack([guide[..., i] * guide[..., j] for i, j in _PAIRS], axis=-1)
    cross = (src[:, :, :, None] * guide[:, :, None, :]).reshape(h, w, n * 3)
    a, b = guided_coefficients(mean_i, mean_p, _box(products, radius), _box(cross, radius), eps)
    return _box(a, radius).reshape(h, w, n, 3), _box(b, radius)


def _check_guide(guide: np.ndarray) -> np.ndarray:
    if guide.ndim != 3 or guide.shape[2] != 3:
        raise ValueError(f"guide must be a colour image (H, W, 3), got shape {guide.shape}")
    return np.ascontiguousarray(guide, dtype=np.float32)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float, subsample: int = 1) -> np.ndarray:
    """Colour-guided filter of ``src`` (He et al.), fast form when ``subsample`` > 1.

    guide: (H, W, 3) float32, colours in [0, 1]; src: (H, W) or (H, W, C) float32 on the same
    grid; radius: box radius in pixels at full size; eps: regularisation (guide variance
    units). Returns src's shape, float32. With ``subsample`` s the coefficients are computed
    on a grid s times coarser with radius r / s and upsampled bilinearly (He & Sun, 2015).
    """
    guide = _check_guide(guide)
    src = np.asarray(src, dtype=np.float32)
    flat = src.ndim == 2
    if flat:
        src = src[:, :, None]
    if src.shape[:2] != guide.shape[:2]:
        raise ValueError(f"src {src.shape[:2]} and guide {guide.shape[:2]} must have the same height and width")
    if radius < 1 or subsample < 1:
        raise ValueError(f"radius and subsample must be >= 1, got {radius} and {subsample}")
    full = guide.shape[:2]
    low = _low_size(full, subsample)
    guide_low = _resize(guide, low, cv2.INTER_AREA)
    src_low = _resize(np.ascontiguousarray(src), low, cv2.INTER_AREA)
    a, b = _coefficients(guide_low, src_low, max(1, int(round(radius / subsample))), eps)
    out = _apply(a, b, guide)
    return out[:, :, 0] if flat else out


def _low_size(size: tuple[int, int], subsample: int) -> tuple[int, int]:
    return max(1, int(round(size[0] / subsample))), max(1, int(round(size[1] / subsample)))


def _apply(a: np.ndarray, b: np.ndarray, guide: np.ndarray) -> np.ndarray:
    """``sum_k A_k · guide_k + B`` at the guide's size: A (h, w, C, 3), B (h, w, C) upsampled
    bilinearly first when on a coarser grid. Returns (H, W, C) float32."""
    full = guide.shape[:2]
    n = b.shape[2]
    a = _resize(a.reshape(*a.shape[:2], n * 3), full, cv2.INTER_LINEAR).reshape(*full, n, 3)
    out = _resize(b, full, cv2.INTER_LINEAR).copy()
    for k in range(3):
        out += a[:, :, :, k] * guide[:, :, k : k + 1]
    return out


def refine_labels(proba: np.ndarray, image: np.ndarray, settings: RefineSettings) -> np.ndarray:
    """Label map at the frame's size from a linked frame's probabilities.

    proba: (L, h, w) float32 at model size (linked, so they need not sum to 1 where labels
    merged); image: (H, W, 3) uint8 RGB, the frame the flow starts from. The probabilities
    are brought to the coefficient grid bilinearly, filtered with the frame as guide, and
    the argmax taken at full size (first segment on ties). Returns (H, W) uint8.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8, got shape {image.shape} {image.dtype}")
    if proba.ndim != 3:
        raise ValueError(f"probabilities must be (L, h, w), got shape {proba.shape}")
    rows = image.shape[0]
    # A segment empty in this frame (the motion split's unused spares, a label linking left
    # out) filters to exactly 0 everywhere: guided_labels counts it without its filtering.
    n_segments = proba.shape[0]
    present = np.flatnonzero(proba.reshape(n_segments, -1).any(axis=1))
    if present.size == 0:  # every value 0: the first segment everywhere
        return np.zeros(image.shape[:2], np.uint8)
    proba = proba[present]
    low = _low_size(image.shape[:2], settings.subsample)
    guide_low = cv2.resize(image, (low[1], low[0]), interpolation=cv2.INTER_AREA).astype(np.float32) * np.float32(1 / 255)
    # Bilinear up, area down: a grid coarser than the model's (small frames) is not aliased.
    shrinking = low[0] < proba.shape[1] or low[1] < proba.shape[2]
    src_low = _resize(
        np.ascontiguousarray(proba.transpose(1, 2, 0), dtype=np.float32), low, cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    )
    radius = max(1, int(round(settings.radius_at(rows) / settings.subsample)))
    a, b = _coefficients(guide_low, src_low, radius, settings.eps)
    # Upsampling, applying and the argmax in one pass: only the label map is written.
    return guided_labels(a, b, image, present, n_segments)
