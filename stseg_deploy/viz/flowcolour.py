"""Optical flow as colour: the Middlebury colour wheel (Baker et al., IJCV 2011 / ICCV 2007).

Hue gives the direction, saturation the magnitude relative to a maximum: zero flow is white,
flow of the maximum magnitude is the wheel's fully saturated colour, and flow beyond it is that
colour dimmed to 75 %. This reproduces the reference code (``colorcode.cpp`` of the Middlebury
flow benchmark, as ported in the widely used ``flow_vis``), so pictures compare with published
ones. With image axes (v pointing down), the directions come out as:

========  =========  =========================
flow      wheel key  colour at full magnitude
========  =========  =========================
right +u  0          (255, 0, 0) red
down +v   13.5       (255, 229, 0) yellow
left -u   27         (0, 209, 255) sky blue
up -v     40.5       (88, 0, 255) violet
========  =========  =========================
"""

from __future__ import annotations

import numpy as np

__all__ = ["colour_wheel", "colour_wheel_image", "flow_to_rgb"]

# Hues per sector, chosen by Baker et al. for perceptual evenness: red→yellow→green→cyan→blue→magenta→red.
_SECTORS = (("RY", 15), ("YG", 6), ("GC", 4), ("CB", 11), ("BM", 13), ("MR", 6))


def colour_wheel() -> np.ndarray:
    """The 55 colours of the Middlebury wheel: (55, 3) float64 RGB in [0, 255] (integers).

    Within each sector one channel ramps as ``floor(255 * i / n)``, i = 0 … n − 1.
    """
    ry, yg, gc, cb, bm, mr = (n for _, n in _SECTORS)
    wheel = np.zeros((ry + yg + gc + cb + bm + mr, 3))
    col = 0
    wheel[col : col + ry, 0] = 255
    wheel[col : col + ry, 1] = np.floor(255 * np.arange(ry) / ry)
    col += ry
    wheel[col : col + yg, 0] = 255 - np.floor(255 * np.arange(yg) / yg)
    wheel[col : col + yg, 1] = 255
    col += yg
    wheel[col : col + gc, 1] = 255
    wheel[col : col + gc, 2] = np.floor(255 * np.arange(gc) / gc)
    col += gc
    wheel[col : col + cb, 1] = 255 - np.floor(255 * np.arange(cb) / cb)
    wheel[col : col + cb, 2] = 255
    col += cb
    wheel[col : col + bm, 2] = 255
    wheel[col : col + bm, 0] = np.floor(255 * np.arange(bm) / bm)
    col += bm
    wheel[col : col + mr, 2] = 255 - np.floor(255 * np.arange(mr) / mr)
    wheel[col : col + mr, 0] = 255
    return wheel


_WHEEL = colour_wheel()


def _uv_to_rgb(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Normalised flow (radius 1 = full saturation) → (H, W, 3) uint8, as the reference does."""
    ncols = _WHEEL.shape[0]
    # +0.0 turns -0.0 into +0.0, so that exactly horizontal flow always hits key 0 (pure red)
    # instead of key 54 (atan2 of -0.0 and +0.0 differ by 2 pi at the wheel's seam).
    v = v + 0.0
    rad = np.sqrt(u * u + v * v)
    angle = np.arctan2(-v, -u) / np.pi
    fk = (angle + 1) / 2 * (ncols - 1)
    k0 = np.floor(fk).astype(np.int64)
    k1 = k0 + 1
    k1[k1 == ncols] = 0
    f = fk - k0
    inside = rad <= 1
    out = np.empty(u.shape + (3,), dtype=np.uint8)
    for channel in range(3):
        col0 = _WHEEL[k0, channel] / 255.0
        col1 = _WHEEL[k1, channel] / 255.0
        col = (1 - f) * col0 + f * col1
        col = np.where(inside, 1 - rad * (1 - col), col * 0.75)
        out[..., channel] = np.floor(255 * col)
    return out


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None) -> np.ndarray:
    """Colour-code a flow field with the Middlebury wheel.

    Args:
        flow: (2, H, W) float, pixels; channel 0 = u (right), 1 = v (down).
        max_magnitude: the magnitude (pixels) shown fully saturated; None = this field's largest
            (finite) magnitude, so each picture uses its whole range. Give a fixed value to
            compare several frames. Larger magnitudes are dimmed (× 0.75).

    Returns:
        (H, W, 3) uint8 RGB. Zero flow is white; NaN/Inf pixels are black (the reference's
        "unknown flow" colour).
    """
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 3 or flow.shape[0] != 2:
        raise ValueError(f"flow must have shape (2, H, W), got {flow.shape}")
    u, v = flow[0], flow[1]
    valid = np.isfinite(u) & np.isfinite(v)
    u = np.where(valid, u, 0.0)
    v = np.where(valid, v, 0.0)
    if max_magnitude is None:
        rad = np.sqrt(u * u + v * v)
        # The reference's epsilon keeps all-zero flow finite (and white).
        scale = (rad.max() if rad.size else 0.0) + 1e-5
    else:
        scale = float(max_magnitude)
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"max_magnitude must be a positive number, got {max_magnitude}")
    image = _uv_to_rgb(u / scale, v / scale)
    image[~valid] = 0
    return image


def colour_wheel_image(size: int = 64) -> np.ndarray:
    """A legend: the wheel as a (size, size, 3) uint8 RGB disc (flow of magnitude 1 at the rim),
    with the dimmed colours outside the disc, as :func:`flow_to_rgb` draws them."""
    if size < 2:
        raise ValueError(f"size must be >= 2, got {size}")
    axis = np.linspace(-1, 1, size)
    v, u = np.meshgrid(axis, axis, indexing="ij")
    return _uv_to_rgb(u, v)
