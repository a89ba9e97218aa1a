"""Synthetic optical-flow videos with known motion segments, for tests and the demo.

A sequence is a background camera motion (a random affine or quadratic flow field that drifts
slowly over time) with 1-3 objects on top, each a random shape (ellipse, rectangle, smooth blob
or star polygon) with its own affine motion: a dominant translation plus a small rotation and
scaling about the object's centre. Objects are advected by their own motion from frame to frame
(they bounce off the frame borders), so masks move and objects occlude each other; nearer
objects are drawn on top. Small Gaussian noise and a few outlier pixels are added last.
With ``pauses``, each object also holds still for a few frames: it moves with the camera
there, so its flow is the background's and only its past and future motion tell it apart.

Units and sizes: flows are in pixels of the output size, ``(u, v)`` = (horizontal, vertical)
as in ``.flo`` files. Every magnitude in this module is set for the 64x112 (H x W) reference
size and multiplied by :func:`motion_scale` = ``sqrt(H·W / (64·112))`` for other sizes, so
a sequence looks the same at any resolution.

Guarantee used by the tests and the demo: at every pixel of every object, the object's clean
(noise-free) flow differs from the background camera flow at that pixel by at least
:func:`min_motion_margin` (1 px at 64x112). It follows from the sampling ranges, not from
luck: background flow at most 1.5·s px anywhere, object translation 3-4·s px, rotation/scaling
adding at most 0.25·s px inside the object. A paused object's frames are the exception, by
design: :attr:`SynthObject.paused` marks them.

numpy only (no torch) and reproducible: everything is drawn from the generator passed in, and
:func:`sequence_rng` gives sequence k its own child seed so that it does not depend on how
many sequences are written. Writing them as a DataSplit is :mod:`stseg_synth.datasplit`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

__all__ = [
    "AREA_FRACTION",
    "DEFAULT_NOISE",
    "DEFAULT_OUTLIER_FRACTION",
    "MAX_AREA_FRACTION",
    "MIN_AREA_FRACTION",
    "REFERENCE_SIZE",
    "SHAPES",
    "SynthObject",
    "SynthSequence",
    "min_area_fraction",
    "min_motion_margin",
    "motion_scale",
    "sequence_rng",
    "synth_sequence",
]

logger = logging.getLogger(__name__)

REFERENCE_SIZE = (64, 112)
"""(H, W) at which the magnitudes below are set."""

DEFAULT_NOISE = 0.05
"""Standard deviation of the Gaussian flow noise, px at the reference size."""

DEFAULT_OUTLIER_FRACTION = 0.001
"""Fraction of pixels per frame replaced by a random flow vector."""

MIN_AREA_FRACTION = 0.02
"""Every object's silhouette covers at least this fraction of the frame, on every frame
(unless smaller objects are asked for: :func:`min_area_fraction`)."""

MIN_OBJECT_PIXELS = 16
"""The smallest object area that may be asked for, in pixels of the frame."""

MAX_AREA_FRACTION = 0.25
"""The largest object area that may be asked for, as a fraction of the frame."""

SHAPES = ("ellipse", "rectangle", "blob", "star")

MIN_SIZE = 8
MIN_FRAMES = 3  # a window of the method needs three consecutive flows
MAX_OBJECTS = 16

# Sampling ranges, all at the reference size (multiplied by motion_scale). The margin guarantee
# rests on them: _OBJECT_SPEED[0] - _BACKGROUND_MAX[1] - _AFFINE_BUDGET >= _MIN_MARGIN (+ slack
# for the noise, which the clean-flow guarantee does not have to absorb but the tests do).
_MIN_MARGIN = 1.0
_BACKGROUND_MAX = (0.5, 1.5)  # largest background flow magnitude over the frame
_OBJECT_SPEED = (3.0, 4.0)
_AFFINE_BUDGET = 0.25  # most the rotation/scaling part adds to an object's flow
_OUTLIER_MAGNITUDE = 8.0
AREA_FRACTION = (0.04, 0.10)  # target silhouette area, before scaling over time (the default)
_SCALE_RANGE = (0.8, 1.25)  # an object's size relative to frame 0 stays in this range
_MAX_ROTATION = 0.03  # rad per frame
_MAX_SCALING = 0.01  # relative size change per frame
_MAX_TRIES = 200
_UNIT_GRID = 201  # raster used to measure a unit shape's area


def motion_scale(size: tuple[int, int]) -> float:
    """Factor from reference-size pixels (64x112) to pixels at ``size`` = (H, W)."""
    height, width = size
    return math.sqrt(height * width / (REFERENCE_SIZE[0] * REFERENCE_SIZE[1]))


def min_motion_margin(size: tuple[int, int]) -> float:
    """Guaranteed per-pixel gap, px, between an object's clean flow and the background flow."""
    return _MIN_MARGIN * motion_scale(size)


@dataclass(frozen=True, eq=False)  # eq=False: array fields make == ambiguous
class SynthObject:
    """One moving object of a synthetic sequence; ``id`` is its value in ``layers``.

    Per-frame arrays have F rows; row t describes frame t and the motion from t to t+1:
    ``centres`` (F, 2) px (x = column, y = row), ``translations`` (F, 2) px/frame (u, v),
    ``angles`` (F,) rad, ``scales`` (F,) relative to frame 0, ``rotations`` (F,) rad/frame,
    ``scalings`` (F,) relative size change per frame. Pixel x of the object moves by
    ``t + ((1 + scaling) R(rotation) - I)(x - centre)``, except on ``paused`` (F,) bool
    frames, where it moves with the background (its flow is the camera's at each pixel, its
    centre carried by the camera flow at the centre).
    """

    id: int
    shape: str
    centres: np.ndarray
    translations: np.ndarray
    angles: np.ndarray
    scales: np.ndarray
    rotations: np.ndarray
    scalings: np.ndarray
    radius: float  # px at scale 1: every silhouette pixel lies within radius·scale of the centre
    paused: np.ndarray | None = None


@dataclass(frozen=True, eq=False)
class SynthSequence:
    """A synthetic optical-flow video with its ground truth.

    Attributes:
        flows: (F, 2, H, W) float32, px; flow of frame t maps t to t+1; with noise and outliers.
        layers: (F, H, W) uint8; 0 = background, k = object k (visible part, after occlusion).
        foreground: (F, H, W) bool; ``layers > 0``.
        clean_flows: (F, 2, H, W) float32, px; ``flows`` before noise and outliers.
        background_flows: (F, 2, H, W) float32, px; the camera flow at every pixel, also
            under the objects.
        silhouettes: (F, N, H, W) bool; object k's full in-frame silhouette (index k-1),
            before occlusion.
        depth_order: object ids from the farthest to the nearest (drawing order).
        objects: the N objects, id 1..N.
        background_model: "affine" or "quadratic".
    """

    flows: np.ndarray
    layers: np.ndarray
    foreground: np.ndarray
    clean_flows: np.ndarray
    background_flows: np.ndarray
    silhouettes: np.ndarray
    depth_order: tuple[int, ...]
    objects: tuple[SynthObject, ...]
    background_model: str

    @property
    def n_frames(self) -> int:
        return int(self.flows.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.flows.shape[2]), int(self.flows.shape[3])

    @property
    def n_objects(self) -> int:
        return len(self.objects)


# --------------------------------------------------------------------------------------------
# Argument checks


def check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        height, width = (int(v) for v in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be a pair (H, W) of integers, got {size!r}") from None
    if (height, width) != tuple(size):
        raise ValueError(f"size must be a pair (H, W) of integers, got {size!r}")
    if height < MIN_SIZE or width < MIN_SIZE:
        raise ValueError(f"size (H, W) must be at least {MIN_SIZE}x{MIN_SIZE}, got {height}x{width}")
    return height, width


def check_int(label: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """``value`` as an int in [minimum, maximum], else a ValueError naming ``label``."""
    bound = f"in [{minimum}, {maximum}]" if maximum is not None else f">= {minimum}"
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{label} must be an integer {bound}, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{label} must be an integer {bound}, got {value!r}")
    return int(value)


def check_frames(n_frames: int) -> int:
    # 99999: frame files are named with five digits.
    return check_int("n_frames", n_frames, MIN_FRAMES, 99999)


def check_pauses(pauses: tuple[int, int] | None, n_frames: int) -> None:
    """A pause of MIN..MAX frames must leave a moving frame before and after it."""
    if pauses is None:
        return
    if not isinstance(pauses, tuple) or len(pauses) != 2:
        raise ValueError(f"pauses must be (min, max) frames, got {pauses!r}")
    low = check_int("pauses minimum", pauses[0], 1)
    check_int("pauses maximum", pauses[1], low, n_frames - 2)


def check_areas(areas: tuple[float, float] | None, size: tuple[int, int]) -> None:
    """Object areas MIN..MAX, fractions of a ``size`` (H, W) frame: 0 < MIN <= MAX <=
    MAX_AREA_FRACTION, and MIN at least MIN_OBJECT_PIXELS pixels."""
    if areas is None:
        return
    if not isinstance(areas, tuple) or len(areas) != 2 or not all(is_real(a) and math.isfinite(a) for a in areas):
        raise ValueError(f"areas must be (min, max) fractions of the frame, got {areas!r}")
    low, high = areas
    if not 0 < low <= high <= MAX_AREA_FRACTION:
        raise ValueError(f"areas must satisfy 0 < min <= max <= {MAX_AREA_FRACTION}, got {areas!r}")
    height, width = size
    if low * height * width < MIN_OBJECT_PIXELS:
        raise ValueError(
            f"areas minimum {low:g} is {low * height * width:.1f} pixels of a {height}x{width} frame; "
            f"objects need at least {MIN_OBJECT_PIXELS}: ask for a larger minimum or a larger size"
        )


def min_area_fraction(areas: tuple[float, float] | None) -> float:
    """The smallest share of the frame every object's silhouette covers on every frame:
    MIN_AREA_FRACTION, or half the smallest area asked for when that is below it (an object
    shrinks to 0.8 of its size and may leave the frame in part)."""
    return MIN_AREA_FRACTION if areas is None else min(MIN_AREA_FRACTION, areas[0] / 2)


def check_generation(n_objects: int | tuple[int, int] | None, noise: float, outlier_fraction: float) -> None:
    if isinstance(n_objects, tuple):
        if len(n_objects) != 2:
            raise ValueError(f"n_objects as a range must be (min, max), got {n_objects!r}")
        low = check_int("n_objects minimum", n_objects[0], 1, MAX_OBJECTS)
        check_int("n_objects maximum", n_objects[1], low, MAX_OBJECTS)
    elif n_objects is not None:
        check_int("n_objects", n_objects, 1, MAX_OBJECTS)
    if not (is_real(noise) and math.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    if not (is_real(outlier_fraction) and 0 <= outlier_fraction <= 0.1):
        raise ValueError(f"outlier_fraction must lie in [0, 0.1], got {outlier_fraction!r}")


def is_real(value: object) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)


# --------------------------------------------------------------------------------------------
# Background


def _background(rng: np.random.Generator, n_frames: int, size: tuple[int, int], scale: float):
    """Camera flow (F, 2, H, W) float64 px, on the normalised grid i (row), j (column) in [-1, 1]."""
    height, width = size
    model = str(rng.choice(["affine", "quadratic"]))
    i = np.linspace(-1.0, 1.0, height)[:, None]
    j = np.linspace(-1.0, 1.0, width)[None, :]
    ones = np.ones((height, width))
    if model == "affine":
        basis = np.stack([i * ones, j * ones, ones])
        weights = np.array([1.0, 1.0, 1.5])  # translation a little stronger, as for a panning camera
    else:
        basis = np.stack([i * j, i**2 * ones, j**2 * ones, i * ones, j * ones, ones])
        weights = np.array([0.5, 0.5, 0.5, 1.0, 1.0, 1.5])
    coeffs = rng.uniform(-1.0, 1.0, size=(2, len(weights))) * weights
    drift = rng.uniform(-0.3, 0.3, size=(2, len(weights))) * weights
    times = np.linspace(-0.5, 0.5, n_frames)
    per_frame = coeffs[None] + times[:, None, None] * drift[None]  # (F, 2, K)
    flow = np.einsum("fck,khw->fchw", per_frame, basis)
    peak = float(np.sqrt((flow**2).sum(axis=1)).max())
    target = rng.uniform(*_BACKGROUND_MAX) * scale
    if peak < 1e-9:  # all-zero draw: fall back to a pure pan so the target magnitude holds
        flow = np.zeros_like(flow)
        flow[:, 0] = 1.0
        peak = 1.0
    return flow * (target / peak), model


# --------------------------------------------------------------------------------------------
# Shapes: each is a membership test on unit coordinates (p, q), the object's own frame before
# scaling; its farthest point from the origin is at most ``rmax`` (about 1).


@dataclass(frozen=True)
class _Shape:
    kind: str
    params: tuple[float, ...]
    vertices: np.ndarray | None = None  # star: (2n, 2) polygon, counter-clockwise by angle

    def rmax(self) -> float:
        if self.kind == "ellipse":
            return 1.0
        if self.kind == "rectangle":
            return math.hypot(1.0, self.params[0])
        if self.kind == "blob":
            return 1.0 + sum(abs(a) for a in self.params[0::2])
        return float(np.hypot(self.vertices[:, 0], self.vertices[:, 1]).max())

    def contains(self, p: np.ndarray, q: np.ndarray) -> np.ndarray:
        if self.kind == "ellipse":
            return p**2 + (q / self.params[0]) ** 2 <= 1.0
        if self.kind == "rectangle":
            return (np.abs(p) <= 1.0) & (np.abs(q) <= self.params[0])
        radius = np.hypot(p, q)
        phi = np.arctan2(q, p)
        if self.kind == "blob":
            rho = np.ones_like(phi)
            for k, (amp, phase) in enumerate(zip(self.params[0::2], self.params[1::2]), start=2):
                rho += amp * np.cos(k * phi + phase)
            return radius <= rho
        # Star polygon, star-shaped about the origin: find the edge whose angular sector holds
        # the point, then test which side of that edge it lies on.
        verts = self.vertices
        angles = np.arctan2(verts[:, 1], verts[:, 0])
        idx = np.searchsorted(angles, phi, side="right") - 1  # -1 wraps to the last edge
        a = verts[idx % len(verts)]
        b = verts[(idx + 1) % len(verts)]
        cross = (b[..., 0] - a[..., 0]) * (q - a[..., 1]) - (b[..., 1] - a[..., 1]) * (p - a[..., 0])
        return cross >= 0.0

    def unit_area(self) -> float:
        extent = 1.05 * self.rmax()
        axis = np.linspace(-extent, extent, _UNIT_GRID)
        cell = (axis[1] - axis[0]) ** 2
        return float(self.contains(axis[None, :], axis[:, None]).sum() * cell)


def _random_shape(rng: np.random.Generator) -> _Shape:
    kind = str(rng.choice(SHAPES))
    if kind == "ellipse":
        return _Shape(kind, (float(rng.uniform(0.45, 1.0)),))
    if kind == "rectangle":
        return _Shape(kind, (float(rng.uniform(0.4, 1.0)),))
    if kind == "blob":
        amps = rng.uniform(0.0, 0.15, size=3)
        phases = rng.uniform(0.0, 2 * math.pi, size=3)
        return _Shape(kind, tuple(float(v) for pair in zip(amps, phases) for v in pair))
    n_points = int(rng.integers(5, 9))
    inner = float(rng.uniform(0.45, 0.7))
    step = math.pi / n_points
    # Jitter below half a step keeps the vertices sorted by angle, which contains() relies on.
    angles = -math.pi + step * (np.arange(2 * n_points) + 0.5) + rng.uniform(-0.3, 0.3, 2 * n_points) * step
    radii = np.where(np.arange(2 * n_points) % 2 == 0, 1.0, inner) * rng.uniform(0.9, 1.0, 2 * n_points)
    vertices = np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)
    return _Shape(kind, (float(n_points), inner), vertices)


# --------------------------------------------------------------------------------------------
# Objects


@dataclass(frozen=True)
class _Track:
    shape: _Shape
    unit: float  # px per unit coordinate at scale 1
    centres: np.ndarray
    translations: np.ndarray
    angles: np.ndarray
    scales: np.ndarray
    rotations: np.ndarray
    scalings: np.ndarray
    paused: np.ndarray


def _pause_frames(rng: np.random.Generator, n_frames: int, pauses: tuple[int, int] | None) -> np.ndarray:
    """(F,) bool: one pause of MIN..MAX frames, with at least one moving frame each side."""
    paused = np.zeros(n_frames, dtype=bool)
    if pauses is not None:
        length = int(rng.integers(pauses[0], pauses[1] + 1))
        start = int(rng.integers(1, n_frames - length))
        paused[start : start + length] = True
    return paused


def _sample_track(
    rng: np.random.Generator, n_frames: int, size: tuple[int, int], scale: float,
    background: np.ndarray | None = None, pauses: tuple[int, int] | None = None,
    areas: tuple[float, float] | None = None,
) -> _Track:
    height, width = size
    shape = _random_shape(rng)
    area = rng.uniform(*(AREA_FRACTION if areas is None else areas)) * height * width
    unit = math.sqrt(area / shape.unit_area())
    radius = unit * shape.rmax()
    # Centres stay in a box that keeps most of the shape inside; capped so the box never
    # collapses on objects as large as the frame.
    margin_x = min(0.8 * radius, 0.4 * (width - 1))
    margin_y = min(0.8 * radius, 0.4 * (height - 1))
    low = np.array([margin_x, margin_y])
    high = np.array([width - 1 - margin_x, height - 1 - margin_y])
    centre = rng.uniform(low, high)
    speed = rng.uniform(*_OBJECT_SPEED) * scale
    heading = rng.uniform(0.0, 2 * math.pi)
    velocity = speed * np.array([math.cos(heading), math.sin(heading)])
    # Rotation and scaling rates such that their flow inside the object stays below the
    # budget: ||(1+s)R(w) - I|| <= |s| + |w|, times the largest distance to the centre.
    budget = _AFFINE_BUDGET * scale / (radius * _SCALE_RANGE[1])
    rotation = rng.uniform(-1.0, 1.0) * min(_MAX_ROTATION, 0.6 * budget)
    scaling = rng.uniform(-1.0, 1.0) * min(_MAX_SCALING, 0.4 * budget)
    angle = rng.uniform(0.0, 2 * math.pi)
    size_factor = 1.0
    paused = _pause_frames(rng, n_frames, pauses)

    centres = np.empty((n_frames, 2))
    translations = np.empty((n_frames, 2))
    angles = np.empty(n_frames)
    scales = np.empty(n_frames)
    rotations = np.empty(n_frames)
    scalings = np.empty(n_frames)
    for t in range(n_frames):
        if paused[t]:
            # Carried by the camera: its translation is the background flow at its centre.
            row, col = (int(round(float(np.clip(c, 0, n - 1)))) for c, n in zip(centre[::-1], size))
            still = background[t, :, row, col]
            centres[t], translations[t] = centre, still
            angles[t], scales[t], rotations[t], scalings[t] = angle, size_factor, 0.0, 0.0
            centre = np.clip(centre + still, low, high)
            continue
        # Bounce: reverse a component that would carry the centre out of its box. The flow of
        # frame t is the motion actually applied, so advection stays exact.
        ahead = centre + velocity
        outward = ((ahead > high) & (velocity > 0)) | ((ahead < low) & (velocity < 0))
        velocity = np.where(outward, -velocity, velocity)
        grown = size_factor * (1.0 + scaling)
        if (grown > _SCALE_RANGE[1] and scaling > 0) or (grown < _SCALE_RANGE[0] and scaling < 0):
            scaling = -scaling
        centres[t], translations[t] = centre, velocity
        angles[t], scales[t], rotations[t], scalings[t] = angle, size_factor, rotation, scaling
        centre = centre + velocity
        angle += rotation
        size_factor *= 1.0 + scaling
    return _Track(shape, unit, centres, translations, angles, scales, rotations, scalings, paused)


def _window(track: _Track, t: int, size: tuple[int, int]) -> tuple[slice, slice] | None:
    """Row and column slices of the frame that can hold the object's pixels at frame t."""
    height, width = size
    reach = track.unit * track.shape.rmax() * track.scales[t] + 1.0
    cx, cy = track.centres[t]
    x0, x1 = max(0, math.floor(cx - reach)), min(width, math.ceil(cx + reach) + 1)
    y0, y1 = max(0, math.floor(cy - reach)), min(height, math.ceil(cy + reach) + 1)
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


def _silhouette(track: _Track, t: int, size: tuple[int, int]) -> np.ndarray:
    """(H, W) bool: pixel centres inside the object's shape at frame t."""
    mask = np.zeros(size, dtype=bool)
    window = _window(track, t, size)
    if window is None:
        return mask
    rows, cols = window
    dx = np.arange(cols.start, cols.stop)[None, :] - track.centres[t, 0]
    dy = np.arange(rows.start, rows.stop)[:, None] - track.centres[t, 1]
    cos, sin = math.cos(track.angles[t]), math.sin(track.angles[t])
    factor = 1.0 / (track.unit * track.scales[t])
    p = (cos * dx + sin * dy) * factor
    q = (-sin * dx + cos * dy) * factor
    mask[rows, cols] = track.shape.contains(p, q)
    return mask


def _object_flow(track: _Track, t: int, ys: np.ndarray, xs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The object's affine motion at pixels (ys, xs), frame t: (u, v) px, about its centre."""
    w, s = track.rotations[t], track.scalings[t]
    m = (1.0 + s) * np.array([[math.cos(w), -math.sin(w)], [math.sin(w), math.cos(w)]]) - np.eye(2)
    dx = xs - track.centres[t, 0]
    dy = ys - track.centres[t, 1]
    u = track.translations[t, 0] + m[0, 0] * dx + m[0, 1] * dy
    v = track.translations[t, 1] + m[1, 0] * dx + m[1, 1] * dy
    return u, v


def _place_object(
    rng: np.random.Generator, n_frames: int, size: tuple[int, int], scale: float,
    background: np.ndarray, pauses: tuple[int, int] | None, areas: tuple[float, float] | None = None,
) -> tuple[_Track, np.ndarray]:
    """A track whose in-frame silhouette is large enough on every frame, and its (F, H, W) masks."""
    smallest = min_area_fraction(areas)
    min_pixels = max(1, math.ceil(smallest * size[0] * size[1]))
    for _ in range(_MAX_TRIES):
        track = _sample_track(rng, n_frames, size, scale, background, pauses, areas)
        masks = np.stack([_silhouette(track, t, size) for t in range(n_frames)])
        if masks.sum(axis=(1, 2)).min() >= min_pixels:
            return track, masks
    raise RuntimeError(
        f"could not place an object covering {smallest:.2g} of a {size[0]}x{size[1]} "
        f"frame on all {n_frames} frames in {_MAX_TRIES} tries"
    )


# --------------------------------------------------------------------------------------------
# Public API


def synth_sequence(
    rng: np.random.Generator,
    n_frames: int,
    size: tuple[int, int],
    n_objects: int | tuple[int, int] | None = None,
    noise: float = DEFAULT_NOISE,
    outlier_fraction: float = DEFAULT_OUTLIER_FRACTION,
    pauses: tuple[int, int] | None = None,
    areas: tuple[float, float] | None = None,
) -> SynthSequence:
    """Generate one synthetic optical-flow video.

    Args:
        rng: the only source of randomness; the same generator state gives the same sequence.
        n_frames: F >= 3 flow fields.
        size: (H, W) >= (8, 8), pixels.
        n_objects: number of moving objects, 1..16; a (min, max) range draws it uniformly
            from min..max; None draws 1-3 (the same draw as (1, 3)).
        noise: standard deviation of the Gaussian noise added to every flow value, px at the
            64x112 reference size (scaled by :func:`motion_scale`).
        outlier_fraction: fraction of pixels per frame replaced by a random vector of up to
            8 px (reference size) per component.
        pauses: (min, max) frames: each object holds still once, for a number of frames
            drawn from min..max, moving with the background meanwhile (``SynthObject.paused``);
            None: objects never pause (and the draws are those of earlier versions).
        areas: (min, max) fractions of the frame: each object's area at its first frame is
            drawn uniformly from them (small or thin movers, as in real video); on every
            frame it then covers at least :func:`min_area_fraction` of the frame. None: 4-10 %
            (``AREA_FRACTION``), at least 2 %.

    Returns:
        A :class:`SynthSequence`; see its attributes for shapes and units.

    Raises:
        ValueError: bad argument.
    """
    n_frames = check_frames(n_frames)
    size = check_size(size)
    check_generation(n_objects, noise, outlier_fraction)
    check_pauses(pauses, n_frames)
    check_areas(areas, size)
    height, width = size
    scale = motion_scale(size)

    background, model = _background(rng, n_frames, size, scale)
    low, high = (1, 3) if n_objects is None else n_objects if isinstance(n_objects, tuple) else (n_objects, None)
    count = int(low) if high is None else int(rng.integers(low, high + 1))
    placed = [_place_object(rng, n_frames, size, scale, background, pauses, areas) for _ in range(count)]
    depth_order = tuple(int(k) + 1 for k in rng.permutation(count))

    clean = background.copy()
    layers = np.zeros((n_frames, height, width), dtype=np.uint8)
    silhouettes = np.stack([masks for _, masks in placed], axis=1)  # (F, N, H, W)
    for t in range(n_frames):
        for obj_id in depth_order:  # back to front: nearer objects overwrite farther ones
            track, masks = placed[obj_id - 1]
            ys, xs = np.nonzero(masks[t])
            if track.paused[t]:  # moves with the camera: the background's flow, already there
                u, v = background[t, 0, ys, xs], background[t, 1, ys, xs]
            else:
                u, v = _object_flow(track, t, ys.astype(np.float64), xs.astype(np.float64))
            clean[t, 0, ys, xs] = u
            clean[t, 1, ys, xs] = v
            layers[t, ys, xs] = obj_id

    clean = clean.astype(np.float32)
    flows = clean.copy()
    if noise > 0:
        flows += rng.standard_normal(flows.shape, dtype=np.float32) * np.float32(noise * scale)
    n_outliers = int(round(outlier_fraction * height * width))
    if n_outliers:
        limit = _OUTLIER_MAGNITUDE * scale
        for t in range(n_frames):
            ys = rng.integers(0, height, n_outliers)
            xs = rng.integers(0, width, n_outliers)
            flows[t, :, ys, xs] = rng.uniform(-limit, limit, size=(n_outliers, 2)).astype(np.float32)

    objects = tuple(
        SynthObject(
            id=k + 1,
            shape=track.shape.kind,
            centres=track.centres,
            translations=track.translations,
            angles=track.angles,
            scales=track.scales,
            rotations=track.rotations,
            scalings=track.scalings,
            radius=track.unit * track.shape.rmax(),
            paused=track.paused,
        )
        for k, (track, _) in enumerate(placed)
    )
    return SynthSequence(
        flows=flows,
        layers=layers,
        foreground=layers > 0,
        clean_flows=clean,
        background_flows=background.astype(np.float32),
        silhouettes=silhouettes,
        depth_order=depth_order,
        objects=objects,
        background_model=model,
    )


def sequence_rng(seed: int, index: int) -> np.random.Generator:
    """The generator :func:`write_synth_split` uses for sequence ``index`` (0-based).

    It is the ``index``-th child of ``SeedSequence(seed)`` (what ``spawn`` would give), built
    directly so that sequence k is the same whatever the number of sequences.
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index,)))
