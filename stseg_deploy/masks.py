"""PNG masks and label maps: binary ground truth (0/255) and DAVIS-style indexed label images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from .atomic import atomic_write
from .errors import StsegInputError


def davis_palette(n: int = 256) -> np.ndarray:
    """The DAVIS colour palette: (n, 3) uint8, label 0 black, 1 red, 2 green, 3 yellow, ..."""
    palette = np.zeros((n, 3), dtype=np.uint8)
    for label in range(n):
        value, colour = label, np.zeros(3, dtype=np.int64)
        for shift in range(7, -1, -1):
            for channel in range(3):
                colour[channel] |= ((value >> channel) & 1) << shift
            value >>= 3
        palette[label] = colour
    return palette


_PALETTE = davis_palette().reshape(-1).tolist()


def write_png(path: str | Path, image: Image.Image, text: dict[str, str] | None = None) -> None:
    """Save a Pillow image as PNG atomically (the file appears only complete), with ``text``
    as PNG tEXt chunks (e.g. which tool wrote it)."""
    info = None
    if text:
        info = PngInfo()
        for key, value in text.items():
            info.add_text(key, value)
    with atomic_write(path) as handle:
        image.save(handle, format="PNG", optimize=False, pnginfo=info)


def write_label_png(path: str | Path, labels: np.ndarray) -> None:
    """Write labels: (H, W) integers in [0, 255] as an indexed PNG with the DAVIS palette."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{path}: labels must have shape (H, W), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"{path}: labels must lie in [0, 255]")
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(_PALETTE)
    write_png(path, image)


def write_mask_png(path: str | Path, mask: np.ndarray) -> None:
    """Write mask: (H, W) bool as a 0/255 greyscale PNG."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"{path}: mask must have shape (H, W), got {mask.shape}")
    write_png(path, Image.fromarray(np.where(mask, 255, 0).astype(np.uint8), mode="L"))


def read_label_png(path: str | Path) -> np.ndarray:
    """Read an indexed (or greyscale) label PNG. Returns (H, W) uint8 label indices."""
    return np.asarray(_open(path, ("P", "L")), dtype=np.uint8)


def read_mask_png(path: str | Path) -> np.ndarray:
    """Read a ground-truth mask PNG (any non-zero pixel is foreground). Returns (H, W) bool.

    Colour masks count a pixel as foreground when any channel is non-zero; indexed masks
    use the palette index.
    """
    image = _open(path, None)
    array = np.asarray(image)
    if array.ndim == 3:
        array = array[..., :3].any(axis=-1) if image.mode in ("RGB", "RGBA") else array.any(axis=-1)
    return array != 0


def _open(path: str | Path, modes: tuple[str, ...] | None) -> Image.Image:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: mask file not found")
    try:
        with Image.open(path) as image:
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise StsegInputError(f"{path}: not a readable image ({exc})") from exc
    if modes is not None and image.mode not in modes:
        raise StsegInputError(f"{path}: expected an indexed label PNG (mode P or L), got mode {image.mode}")
    return image
