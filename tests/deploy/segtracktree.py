"""A tiny SegTrackV2 tree for the reader's tests, in the dataset's own layout and with its quirks:
frames and masks of different extensions, numbered subfolders per object, numbering that starts
anywhere, 3-channel masks with in-between values, overlapping objects, ``*`` in all.txt and a
``<seq>.txt`` listing with a path prefix on its first line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (24, 32)  # H, W


def box(k: int, t: int) -> tuple[slice, slice]:
    """Where object ``k`` lies in the ``t``-th frame (t < 4): 8x8, moving right 2 px a frame;
    objects 1 and 2 overlap on rows 8-11; object k + 3 lies where object k does."""
    j = (k - 1) % 3
    r0, c0 = 4 + 4 * j, 4 + 6 * j + 2 * t
    return slice(r0, r0 + 8), slice(c0, c0 + 8)


def mask(k: int, t: int) -> np.ndarray:
    """Object ``k``'s mask in the ``t``-th frame, (H, W, 3) uint8 as SegTrackV2 stores them: 255
    in its box, whose left column is blue only (0, 0, 255); the row above the box is grey 128
    (object: above the middle) and the row below grey 127 (not object)."""
    rows, cols = box(k, t)
    out = np.zeros((*SIZE, 3), np.uint8)
    out[rows, cols] = 255
    out[rows, cols.start] = (0, 0, 255)
    out[rows.start - 1, cols] = 128
    out[rows.stop, cols] = 127
    return out


def write_sequence(root: Path, name: str, stems: list[str], frame_ext: str = ".png", mask_exts: tuple[str, ...] = (".png",)) -> None:
    """Frames ``JPEGImages/<name>/<stem><frame_ext>`` and their masks: one object
    (``mask_exts`` of one extension) in ``GroundTruth/<name>/``, else one subfolder ``1/``,
    ``2/``, ... per extension of ``mask_exts``, each with its masks in that extension."""
    frames = root / "JPEGImages" / name
    frames.mkdir(parents=True, exist_ok=True)
    folders = [root / "GroundTruth" / name]
    if len(mask_exts) > 1:
        folders = [root / "GroundTruth" / name / str(k) for k in range(1, len(mask_exts) + 1)]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    for t, stem in enumerate(stems):
        frame = np.full((*SIZE, 3), 40, np.uint8)
        for k in range(1, len(mask_exts) + 1):
            frame[box(k, t)] = 100 + 40 * ((k - 1) % 3)
        Image.fromarray(frame).save(frames / f"{stem}{frame_ext}")
        for k, (folder, ext) in enumerate(zip(folders, mask_exts), start=1):
            Image.fromarray(mask(k, t)).save(folder / f"{stem}{ext}")


SEQUENCES = ("frog", "cheetah", "bmx")
"""The sequences of :func:`segtrack_tree`, in all.txt's order."""


def segtrack_tree(root: Path) -> Path:
    """Three sequences of 3 frames, listed in ``ImageSets/all.txt`` with ``*`` (and a blank line):

    - ``frog``: one object, ``.bmp`` frames and ``.png`` masks in ``GroundTruth/frog/``;
    - ``cheetah``: two objects, ``.bmp`` frames, ``1/`` in ``.bmp`` and ``2/`` in ``.png``;
    - ``bmx``: two objects, ``.png`` frames numbered from 06668, listed by ``ImageSets/bmx.txt``
      (first line a path prefix).
    """
    write_sequence(root, "frog", [f"frog_{i:05d}" for i in range(3)], ".bmp", (".png",))
    write_sequence(root, "cheetah", [f"cheetah_{i:05d}" for i in range(3)], ".bmp", (".bmp", ".png"))
    bmx = [f"bmx_{i:05d}" for i in range(6668, 6671)]
    write_sequence(root, "bmx", bmx, ".png", (".png", ".png"))
    (root / "ImageSets").mkdir(parents=True, exist_ok=True)
    (root / "ImageSets" / "all.txt").write_text("*frog\n*cheetah\n\n*bmx\n")
    (root / "ImageSets" / "bmx.txt").write_text("bmx/\n" + "".join(f"{stem}\n" for stem in bmx))
    return root
