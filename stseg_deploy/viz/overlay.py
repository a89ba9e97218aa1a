"""Pictures people can look at: segments blended over frames, and contact sheets of several rows.

Colours come from the palette the indexed label PNGs use (:func:`stseg_deploy.io.masks.label_palette`:
label l in the DAVIS colour of l + 1), so a segment has the same colour in the overlay, the
contact sheet and the PNG.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from ..io.masks import label_palette, write_png

__all__ = ["blend_labels", "contact_sheet", "to_rgb"]

_DEFAULT_PALETTE = label_palette()
_PAD = 4  # pixels between cells and around text
_BLANK = (128, 128, 128)  # a cell with no picture (e.g. no ground truth for that frame)
_BACKGROUND = (255, 255, 255)
_TEXT = (0, 0, 0)


def blend_labels(
    frame: np.ndarray, labels: np.ndarray, alpha: float = 0.5, palette: np.ndarray | None = None,
    untinted: np.ndarray | None = None,
) -> np.ndarray:
    """Blend one fixed colour per label over a frame.

    Args:
        frame: (H, W, 3) uint8 RGB.
        labels: (H, W) integer labels, each < ``len(palette)``.
        alpha: weight of the label colour, in [0, 1] (0 = the frame, 1 = the label PNG).
        palette: (N, 3) uint8 RGB colours by label; None = the label PNGs' palette (label l
            in the DAVIS colour of l + 1: no segment black).
        untinted: (H, W) bool, pixels left as the frame (the background, when the foreground
            was decided); None = every pixel tinted.

    Returns:
        (H, W, 3) uint8 RGB: ``round((1 - alpha) * frame + alpha * palette[labels])``, the
        frame itself where ``untinted``.
    """
    frame = np.asarray(frame)
    labels = np.asarray(labels)
    palette = _DEFAULT_PALETTE if palette is None else np.asarray(palette)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"frame must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    if labels.shape != frame.shape[:2]:
        raise ValueError(f"labels {labels.shape} must have the frame's (H, W) {frame.shape[:2]}")
    if not np.issubdtype(labels.dtype, np.integer) and labels.dtype != np.bool_:
        raise ValueError(f"labels must be integers, got dtype {labels.dtype}")
    if palette.ndim != 2 or palette.shape[1] != 3:
        raise ValueError(f"palette must be (N, 3) RGB, got {palette.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    labels = labels.astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= len(palette)):
        raise ValueError(f"labels must lie in [0, {len(palette) - 1}], got [{labels.min()}, {labels.max()}]")
    colours = palette[labels].astype(np.float32)
    blended = np.clip(np.rint((1.0 - alpha) * frame.astype(np.float32) + alpha * colours), 0, 255).astype(np.uint8)
    if untinted is not None:
        if untinted.shape != labels.shape:
            raise ValueError(f"untinted {untinted.shape} must have the frame's (H, W) {labels.shape}")
        blended[untinted] = frame[untinted]
    return blended


def to_rgb(image: np.ndarray) -> np.ndarray:
    """Any picture → (H, W, 3) uint8 RGB: bool masks to 0/255 grey, (H, W) uint8 grey to RGB,
    (H, W, 3) uint8 unchanged."""
    image = np.asarray(image)
    if image.dtype == np.bool_:
        image = np.where(image, 255, 0).astype(np.uint8)
    if image.dtype != np.uint8:
        raise ValueError(f"pictures must be uint8 or bool, got {image.dtype}")
    if image.ndim == 2:
        return np.repeat(image[..., None], 3, axis=2)
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    raise ValueError(f"pictures must be (H, W) or (H, W, 3), got {image.shape}")


def _fit(image: np.ndarray, cell: tuple[int, int]) -> Image.Image:
    """Scale a picture to fit the (H, W) cell, keeping its aspect ratio."""
    pil = Image.fromarray(to_rgb(image))
    height, width = cell
    scale = min(height / pil.height, width / pil.width)
    target = (max(1, round(pil.width * scale)), max(1, round(pil.height * scale)))
    if target != pil.size:
        # Nearest keeps label and mask edges crisp, which is what the sheet is for.
        pil = pil.resize(target, Image.Resampling.NEAREST)
    return pil


def contact_sheet(
    rows: Sequence[Sequence[np.ndarray | None]],
    titles: Sequence[str],
    path: str | Path,
    column_titles: Sequence[str] | None = None,
    cell_size: tuple[int, int] | None = None,
    png_text: dict[str, str] | None = None,
) -> Path:
    """Write a grid of pictures as a PNG: one row per kind (flow, segments, mask, ground truth),
    one column per frame, each row titled at its left.

    Args:
        rows: rows of pictures, each (H, W, 3) uint8 RGB, (H, W) uint8 grey or (H, W) bool,
            or None for an empty (grey) cell; rows may differ in length.
        titles: one title per row.
        path: the PNG to write (atomically: it appears only complete).
        column_titles: optional title above each column (e.g. frame names).
        cell_size: (H, W) of a cell in pixels; None = the first picture's size. Pictures are
            scaled (nearest neighbour, aspect kept) to fit their cell.
        png_text: PNG tEXt chunks to write into the file.

    Returns:
        ``path`` as a Path.
    """
    path = Path(path)
    if not rows:
        raise ValueError(f"{path}: a contact sheet needs at least one row")
    if len(titles) != len(rows):
        raise ValueError(f"{path}: {len(rows)} rows but {len(titles)} titles")
    pictures = [p for row in rows for p in row if p is not None]
    if not pictures:
        raise ValueError(f"{path}: a contact sheet needs at least one picture")
    if cell_size is None:
        first = np.asarray(pictures[0])
        cell_size = (int(first.shape[0]), int(first.shape[1]))
    cell_h, cell_w = cell_size
    n_cols = max(len(row) for row in rows)
    if column_titles is not None and len(column_titles) > n_cols:
        raise ValueError(f"{path}: {len(column_titles)} column titles for {n_cols} columns")

    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def text_size(text: str) -> tuple[int, int]:
        left, top, right, bottom = measure.textbbox((0, 0), text, font=font)
        return right - left, bottom - top

    title_w = max(text_size(t)[0] for t in titles) + 2 * _PAD
    header_h = (max(text_size(t)[1] for t in column_titles) + 2 * _PAD) if column_titles else 0
    width = title_w + n_cols * (cell_w + _PAD) + _PAD
    height = header_h + len(rows) * (cell_h + _PAD) + _PAD
    sheet = Image.new("RGB", (width, height), _BACKGROUND)
    draw = ImageDraw.Draw(sheet)

    for col, text in enumerate(column_titles or ()):
        draw.text((title_w + col * (cell_w + _PAD), _PAD), text, fill=_TEXT, font=font)
    for r, (row, title) in enumerate(zip(rows, titles, strict=True)):
        top = header_h + _PAD + r * (cell_h + _PAD)
        text_h = text_size(title)[1]
        draw.text((_PAD, top + max(0, (cell_h - text_h) // 2)), title, fill=_TEXT, font=font)
        for col in range(n_cols):
            left = title_w + col * (cell_w + _PAD)
            picture = row[col] if col < len(row) else None
            if picture is None:
                draw.rectangle((left, top, left + cell_w - 1, top + cell_h - 1), fill=_BLANK)
                continue
            fitted = _fit(picture, cell_size)
            sheet.paste(fitted, (left + (cell_w - fitted.width) // 2, top + (cell_h - fitted.height) // 2))

    write_png(path, sheet, png_text)
    return path
