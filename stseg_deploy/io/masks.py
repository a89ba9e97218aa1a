"""PNG masks and label maps: binary ground truth (0/255), DAVIS-style indexed label images and
per-object ground truth (object-id maps, DAVIS-2017 style)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from ..errors import StsegInputError
from .atomic import atomic_write


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


def label_palette(objects: np.ndarray | None = None) -> np.ndarray:
    """The palette of a label PNG: (256, 3) uint8, label l drawn in the DAVIS colour of l + 1
    (red, green, yellow, ...), so no segment is drawn black, which DAVIS users read as
    background; with ``objects`` ((L,) bool, the frame's moving objects) every other label
    is drawn black, as the background. An object keeps the colour of its id in
    ``objects/`` (label + 1)."""
    palette = np.concatenate([davis_palette()[1:], np.zeros((1, 3), dtype=np.uint8)])
    if objects is not None:
        objects = np.asarray(objects, dtype=bool)
        palette[: len(objects)][~objects] = 0
    return palette


def write_label_png(path: str | Path, labels: np.ndarray, objects: np.ndarray | None = None) -> None:
    """Write labels: (H, W) integers in [0, 255] as an indexed PNG, the pixel values the
    labels and the palette :func:`label_palette` (``objects``: (L,) bool, the frame's moving
    objects, whose labels are drawn in colour and all others black)."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"{path}: labels must have shape (H, W), got {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 255):
        raise ValueError(f"{path}: labels must lie in [0, 255]")
    image = Image.fromarray(labels.astype(np.uint8), mode="P")
    image.putpalette(label_palette(objects).reshape(-1).tolist())
    write_png(path, image)


def write_object_png(path: str | Path, ids: np.ndarray) -> None:
    """Write an object-id map: (H, W) uint8, 0 background, as an indexed PNG with the DAVIS
    palette (DAVIS-2017's annotation format: 0 black, object 1 red, 2 green, ...)."""
    ids = np.asarray(ids)
    if ids.ndim != 2 or ids.dtype != np.uint8:
        raise ValueError(f"{path}: object ids must be (H, W) uint8, got {ids.shape} {ids.dtype}")
    image = Image.fromarray(ids, mode="P")
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


VOID = 255
"""Object id of pixels not scored (DAVIS-2017 annotations mark them 255)."""


def read_object_png(path: str | Path) -> np.ndarray:
    """Read per-object ground truth: (H, W) uint8 object ids, 0 = background, 1..254 = objects,
    :data:`VOID` (255) = not scored.

    Accepted forms, so that DAVIS-2016 and DAVIS-2017 annotations both read as they mean:

    - indexed (mode P), DAVIS-2017 style: the palette index is the object id; 255 is void;
    - greyscale (L, LA) holding only 0 and 255, or bilevel (mode 1): a binary mask
      (DAVIS-2016 style), one object, id 1;
    - other greyscale: the grey level is the object id; 255 is void;
    - colour (RGB, RGBA): a single non-black colour is one object (id 1); several colours
      must all be DAVIS palette colours, read as their index (an indexed PNG saved as RGB).

    Raises FileNotFoundError or StsegInputError naming the file (unreadable, another mode,
    colours that are not object colours).
    """
    image = _open(path, None)
    mode = image.mode
    if mode == "P":
        return np.asarray(image, dtype=np.uint8)
    if mode == "1":
        return np.asarray(image, dtype=bool).astype(np.uint8)
    if mode in ("L", "LA"):
        grey = np.asarray(image.getchannel("L"), dtype=np.uint8)
        values = np.unique(grey)
        if values[-1] == 255 and len(values) <= 2:  # 0/255 (or all 255): a binary mask
            return (grey == 255).astype(np.uint8)
        return grey
    if mode in ("RGB", "RGBA"):
        return _colours_to_ids(path, np.asarray(image.convert("RGB"), dtype=np.uint8))
    raise StsegInputError(f"{path}: expected an object mask PNG (indexed, greyscale or RGB), got mode {mode}")


def _colours_to_ids(path: str | Path, rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 colours -> (H, W) uint8 object ids (see :func:`read_object_png`)."""
    packed = (rgb[..., 0].astype(np.int64) << 16) | (rgb[..., 1].astype(np.int64) << 8) | rgb[..., 2]
    colours, inverse = np.unique(packed, return_inverse=True)
    inverse = inverse.reshape(packed.shape)
    non_black = colours[colours != 0]
    if len(non_black) <= 1:
        return (packed != 0).astype(np.uint8)
    palette = davis_palette().astype(np.int64)
    by_colour = {int((r << 16) | (g << 8) | b): index for index, (r, g, b) in enumerate(palette)}
    unknown = [c for c in colours if int(c) not in by_colour]
    if unknown:
        c = int(unknown[0])
        raise StsegInputError(
            f"{path}: {len(non_black)} colours, and ({c >> 16}, {(c >> 8) & 255}, {c & 255}) is not a DAVIS "
            "palette colour, so it names no object id; save object masks as indexed PNGs (palette index = object id)"
        )
    ids = np.array([by_colour[int(c)] for c in colours], dtype=np.uint8)
    return ids[inverse]


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
