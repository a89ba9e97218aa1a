"""Synthetic RGB videos with known moving objects: input for the optical-flow path and its tests.

Where :mod:`stseg_synth.flows` makes flow fields directly, this module renders *frames*, so the
whole video → optical flow → segmentation chain can be tested and demonstrated with a known
answer. A scene is a smooth random texture (a sum of random sinusoidal gratings, so it has
gradients in every direction for DIS to track, and it can be evaluated exactly at sub-pixel
offsets, so a pan is an exact translation with no resampling blur) that pans at a constant
velocity, with one or two textured shapes (ellipse or rotated rectangle) on top, each moving
with its own constant translation and bouncing off the frame borders so it never leaves the
frame. Objects drawn later are in front.

Units: pixels and pixels per frame; flow ``(u, v)`` = (right, down). Magnitudes are set for the
96x160 (H x W) reference size and scaled by ``sqrt(H·W / (96·160))`` for other sizes.

Guarantee: an object's displacement differs from the background pan by at least
:data:`MIN_RELATIVE_SPEED` px/frame (at the reference size) on every frame pair without a
bounce; on the rare pair where an object bounces off a border the displacement is still an exact
translation (see :attr:`RenderedVideo.displacements`) but may be closer to the pan.

numpy only (no torch); deterministic by seed.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from stseg_deploy.io.atomic import atomic_write
from stseg_deploy.io.masks import write_label_png, write_mask_png
from stseg_deploy.io.videoio import DEFAULT_FPS, VideoWriter, frame_name

__all__ = ["MIN_RELATIVE_SPEED", "REFERENCE_SIZE", "RenderedVideo", "render_video"]

log = logging.getLogger(__name__)

REFERENCE_SIZE = (96, 160)
MIN_RELATIVE_SPEED = 2.0
"""Least |object displacement − pan| in px/frame at the reference size (bounce frames aside)."""
_MAX_RELATIVE_SPEED = 3.0
_MAX_PAN_SPEED = 1.5
# Wavelength ranges (px at the reference size). Only the upper end scales with the size: the
# long waves keep coarse pyramid levels textured, while the short end stays a few pixels so
# that large renders keep fine detail (a texture scaled up whole is too smooth for Farneback).
_BACKGROUND_WAVELENGTHS = (8.0, 40.0)
_OBJECT_WAVELENGTHS = (5.0, 20.0)
_N_WAVES = 16


@dataclass(frozen=True)
class RenderedVideo:
    """A rendered video and its ground truth.

    Attributes:
        path: the MP4 file or the folder of PNG frames that was written.
        masks: (F, H, W) bool, True on any object (the foreground to segment).
        labels: (F, H, W) uint8, 0 = background, k = object k (the front-most where they overlap).
        displacements: (F − 1, K + 1, 2) float64, (u, v) px moved from frame t to t + 1:
            row 0 the background pan, row k object k.
        fps: frames per second of the video.
    """

    path: Path
    masks: np.ndarray
    labels: np.ndarray
    displacements: np.ndarray
    fps: float

    @property
    def n_objects(self) -> int:
        """Number of moving objects K."""
        return self.displacements.shape[1] - 1

    def true_flow(self, t: int) -> np.ndarray:
        """Exact forward flow from frame t to t + 1: (2, H, W) float32 pixels.

        Each pixel moves with what it shows at frame t (background or the front-most object),
        including background pixels that get covered at t + 1.
        """
        if not 0 <= t < self.displacements.shape[0]:
            raise IndexError(f"flow index {t} outside [0, {self.displacements.shape[0] - 1}]")
        per_label = self.displacements[t].astype(np.float32)  # (K + 1, 2)
        return np.ascontiguousarray(per_label[self.labels[t]].transpose(2, 0, 1))


def _wavelengths(reference: tuple[float, float], scale: float) -> tuple[float, float]:
    return reference[0], reference[1] * max(scale, 1.0)


class _Texture:
    """A sum of random sinusoidal gratings, RGB, evaluated at any real-valued coordinates."""

    def __init__(self, rng: np.random.Generator, wavelengths: tuple[float, float], contrast: float) -> None:
        self.angles = rng.uniform(0, 2 * np.pi, _N_WAVES)
        # Log-uniform wavelengths: detail at every scale of the flow pyramid.
        self.freqs = 2 * np.pi / np.exp(rng.uniform(*np.log(wavelengths), _N_WAVES))
        self.phases = rng.uniform(0, 2 * np.pi, _N_WAVES)
        # Mostly grey amplitude (DIS sees luminance only) plus some colour for human eyes.
        grey = rng.uniform(0.5, 1.0, (_N_WAVES, 1))
        tint = rng.uniform(-0.4, 0.4, (_N_WAVES, 3))
        self.colours = (grey + tint) * contrast / math.sqrt(_N_WAVES / 2)
        self.mean = rng.uniform(90, 165, 3)

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """x, y: (H, W) float pixel coordinates → (H, W, 3) float64 RGB (0–255 nominal)."""
        out = np.broadcast_to(self.mean, x.shape + (3,)).copy()
        for angle, freq, phase, colour in zip(self.angles, self.freqs, self.phases, self.colours, strict=True):
            wave = np.sin(freq * (x * math.cos(angle) + y * math.sin(angle)) + phase)
            out += wave[..., None] * colour
        return out


@dataclass
class _Object:
    shape: str
    half_axes: tuple[float, float]  # (along its own x, along its own y), px
    angle: float
    texture: _Texture
    positions: np.ndarray  # (F, 2) centre (x, y) per frame

    def mask(self, x: np.ndarray, y: np.ndarray, t: int) -> np.ndarray:
        dx, dy = x - self.positions[t, 0], y - self.positions[t, 1]
        c, s = math.cos(self.angle), math.sin(self.angle)
        a, b = dx * c + dy * s, -dx * s + dy * c
        if self.shape == "ellipse":
            return (a / self.half_axes[0]) ** 2 + (b / self.half_axes[1]) ** 2 <= 1.0
        return (np.abs(a) <= self.half_axes[0]) & (np.abs(b) <= self.half_axes[1])

    def colours(self, x: np.ndarray, y: np.ndarray, t: int) -> np.ndarray:
        # Texture coordinates move with the object, so it translates rigidly.
        return self.texture(x - self.positions[t, 0], y - self.positions[t, 1])


def _bounce(start: float, velocity: float, n_frames: int, low: float, high: float) -> np.ndarray:
    """Positions start + velocity·t folded into [low, high] (reflecting walls), t = 0 … F−1."""
    span = high - low
    if span <= 0:
        return np.full(n_frames, (low + high) / 2)
    raw = start - low + velocity * np.arange(n_frames)
    folded = np.mod(raw, 2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)


def _make_object(
    rng: np.random.Generator, size: tuple[int, int], n_frames: int, pan: np.ndarray, scale: float
) -> _Object:
    height, width = size
    shape = str(rng.choice(["ellipse", "rectangle"]))
    radius = rng.uniform(0.14, 0.22, 2) * min(height, width)
    if shape == "rectangle":
        radius *= 0.85  # similar area to the ellipse
    angle = float(rng.uniform(0, np.pi))
    # Bounding half-extent of the rotated shape, so it stays wholly inside the frame.
    c, s = abs(math.cos(angle)), abs(math.sin(angle))
    if shape == "ellipse":
        ext_x = math.hypot(radius[0] * c, radius[1] * s)
        ext_y = math.hypot(radius[0] * s, radius[1] * c)
    else:
        ext_x = radius[0] * c + radius[1] * s
        ext_y = radius[0] * s + radius[1] * c
    low = np.array([ext_x + 1, ext_y + 1])
    high = np.array([width - 2 - ext_x, height - 2 - ext_y])
    start = rng.uniform(low, np.maximum(low, high))
    direction = rng.uniform(0, 2 * np.pi)
    speed = rng.uniform(MIN_RELATIVE_SPEED, _MAX_RELATIVE_SPEED) * scale
    velocity = pan + speed * np.array([math.cos(direction), math.sin(direction)])
    positions = np.stack(
        [_bounce(start[i], velocity[i], n_frames, low[i], max(low[i], high[i])) for i in range(2)], axis=1
    )
    texture = _Texture(rng, _wavelengths(_OBJECT_WAVELENGTHS, scale), contrast=70.0)
    return _Object(shape, (float(radius[0]), float(radius[1])), angle, texture, positions)


def _png_bytes(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="PNG")
    return buffer.getvalue()


def render_video(
    out: str | Path,
    n_frames: int = 24,
    size: tuple[int, int] = REFERENCE_SIZE,
    seed: int = 0,
    fmt: Literal["mp4", "frames"] = "mp4",
    n_objects: int | None = None,
    fps: float = DEFAULT_FPS,
    noise: float = 1.0,
    masks_dir: str | Path | None = None,
    labels_dir: str | Path | None = None,
) -> RenderedVideo:
    """Render a video of textured objects moving over a panning textured background.

    Args:
        out: the ``.mp4`` file to write (``fmt="mp4"``) or the folder for PNG frames
            ``00000.png``, ``00001.png``, … (``fmt="frames"``).
        n_frames: number of frames F (>= 2).
        size: (H, W) in pixels, each >= 16.
        seed: everything (textures, shapes, motions, noise) is drawn from it.
        fmt: ``"mp4"`` (MPEG-4, lossy) or ``"frames"`` (lossless PNGs).
        n_objects: 1 or 2; None = drawn from the seed.
        fps: frame rate stored in the MP4.
        noise: standard deviation of Gaussian pixel noise, grey levels (0 for none).
        masks_dir: if given, also write the ground-truth masks there as 0/255 PNGs named after
            the frames (the layout ``stseg-eval --gt-dir`` reads).
        labels_dir: if given, also write per-object ground truth there: :attr:`RenderedVideo.labels`
            as indexed PNGs with the DAVIS palette (palette index = object id, 0 =
            background), named after the frames, DAVIS-2017 style. ``stseg-eval --gt-dir``
            reads them as binary masks too (any object is foreground) and ``--objects``
            scores each object.

    Returns:
        a :class:`RenderedVideo` with the ground truth (masks, labels, displacements).
    """
    out = Path(out)
    height, width = (int(s) for s in size)
    _check_render_args(out, n_frames, (height, width), fmt, noise)
    rng = np.random.default_rng(seed)
    if n_objects is None:
        n_objects = int(rng.integers(1, 3))
    if n_objects not in (1, 2):
        raise ValueError(f"n_objects must be 1 or 2, got {n_objects}")
    scale = math.sqrt(height * width / (REFERENCE_SIZE[0] * REFERENCE_SIZE[1]))

    pan_direction = rng.uniform(0, 2 * np.pi)
    pan = rng.uniform(0.5, _MAX_PAN_SPEED) * scale * np.array([math.cos(pan_direction), math.sin(pan_direction)])
    background = _Texture(rng, _wavelengths(_BACKGROUND_WAVELENGTHS, scale), contrast=55.0)
    objects = [_make_object(rng, (height, width), n_frames, pan, scale) for _ in range(n_objects)]
    displacements = np.zeros((n_frames - 1, n_objects + 1, 2))
    displacements[:, 0] = pan
    for k, obj in enumerate(objects, start=1):
        displacements[:, k] = np.diff(obj.positions, axis=0)

    labels = np.zeros((n_frames, height, width), dtype=np.uint8)
    frames = _draw_frames(background, objects, pan, labels, rng, noise)
    if fmt == "mp4":
        with VideoWriter(out, fps=fps, size=(height, width)) as writer:
            for _, frame in frames:
                writer.write(frame)
    else:
        out.mkdir(parents=True, exist_ok=True)
        for t, frame in frames:
            with atomic_write(out / f"{frame_name(t)}.png") as handle:
                handle.write(_png_bytes(frame))
    _write_ground_truth(labels, masks_dir, labels_dir)
    log.info("rendered %d frames (%dx%d, %d object(s), seed %d) to %s", n_frames, height, width, n_objects, seed, out)
    return RenderedVideo(out, labels > 0, labels, displacements, float(fps))


def _check_render_args(out: Path, n_frames: int, size: tuple[int, int], fmt: str, noise: float) -> None:
    if n_frames < 2:
        raise ValueError(f"n_frames must be >= 2, got {n_frames}")
    if size[0] < 16 or size[1] < 16:
        raise ValueError(f"size must be at least 16x16 (H, W), got {size}")
    if fmt not in ("mp4", "frames"):
        raise ValueError(f"fmt must be 'mp4' or 'frames', got {fmt!r}")
    if fmt == "mp4" and out.suffix.lower() != ".mp4":
        raise ValueError(f"{out}: fmt='mp4' needs a path ending in .mp4")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")


def _draw_frames(background, objects, pan: np.ndarray, labels: np.ndarray, rng: np.random.Generator, noise: float):
    """Yield ``(t, frame (H, W, 3) uint8)`` in order, filling ``labels[t]`` (object ids) as it goes."""
    n_frames, height, width = labels.shape
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    for t in range(n_frames):
        # The scene moves by pan·t, so the camera samples the texture at x − pan·t.
        image = background(x - pan[0] * t, y - pan[1] * t)
        for k, obj in enumerate(objects, start=1):
            inside = obj.mask(x, y, t)
            image[inside] = obj.colours(x[inside], y[inside], t)
            labels[t][inside] = k
        if noise > 0:
            image += rng.normal(0.0, noise, image.shape)
        yield t, np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _write_ground_truth(labels: np.ndarray, masks_dir: str | Path | None, labels_dir: str | Path | None) -> None:
    """0/255 masks into ``masks_dir`` and object-id PNGs into ``labels_dir``, when given."""
    for t in range(labels.shape[0]):
        if masks_dir is not None:
            write_mask_png(Path(masks_dir) / f"{frame_name(t)}.png", labels[t] > 0)
        if labels_dir is not None:
            write_label_png(Path(labels_dir) / f"{frame_name(t)}.png", labels[t])
