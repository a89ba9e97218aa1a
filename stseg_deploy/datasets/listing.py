"""What a dataset reader hands to stseg-prepare: its sequences, their frames in order, and
their ground truth, either as mask files stseg-eval reads as they are (DAVIS) or as the
dataset's own files to convert into object-id PNGs (FBMS-59, SegTrackV2).

A reader (:mod:`~stseg_deploy.datasets.davis`, :mod:`~stseg_deploy.datasets.fbms`,
:mod:`~stseg_deploy.datasets.segtrackv2`) checks everything it can from names and file headers
before anything is computed or written, so a bad layout is one error naming the file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import StsegInputError
from ..io.outdir import check_name


@dataclass(frozen=True)
class ListedFrame:
    """One frame: its name (the image's file stem), its image, and the mask stseg-eval reads
    for it (None: not annotated, or annotated in the sequence's :class:`ObjectTruth`)."""

    name: str
    image: Path
    mask: Path | None


class ObjectTruth(Protocol):
    """A sequence's ground truth in the dataset's own files, to be converted to object ids.

    ``annotated``: frame index (position in :attr:`ListedSequence.frames`) -> the dataset
    files that annotate it (checked to exist and to have the frame's size by the reader).
    ``read(index)``: that frame's (H, W) uint8 object ids, 0 background, 1.. objects, 255
    void; StsegInputError naming the file when its content cannot be read as the dataset
    defines it.
    """

    annotated: dict[int, tuple[Path, ...]]

    def read(self, index: int) -> np.ndarray: ...


@dataclass(frozen=True)
class ListedSequence:
    """A sequence of a split: its name, its frames in order, and (FBMS, SegTrackV2) the
    ground truth to convert (:mod:`stseg_deploy.datasets.truth`); None where the frames'
    ``mask`` files are read as they are (DAVIS)."""

    name: str
    frames: tuple[ListedFrame, ...]
    truth: ObjectTruth | None = None

    @property
    def folder(self) -> Path:
        return self.frames[0].image.parent


def image_size(path: Path) -> tuple[int, int]:
    """(H, W) from the file's header (no decoding); StsegInputError naming it when unreadable."""
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise StsegInputError(f"{path}: not a readable image ({exc})") from exc


def check_mask_size(mask: Path, sequence: str, size: tuple[int, int]) -> None:
    """Refuse a mask whose header gives another (H, W) than the frames' ``size``."""
    if (mask_size := image_size(mask)) != size:
        raise StsegInputError(
            f"{mask}: mask is {mask_size[1]}x{mask_size[0]} but the frames of {sequence!r} "
            f"are {size[1]}x{size[0]} (width x height)"
        )


def check_sizes(sequence: ListedSequence) -> None:
    """Every mask of the sequence (its frames' and its truth's) has the first frame's size."""
    size = image_size(sequence.frames[0].image)
    for frame in sequence.frames:
        if frame.mask is not None:
            check_mask_size(frame.mask, sequence.name, size)
    if sequence.truth is not None:
        for files in sequence.truth.annotated.values():
            for file in files:
                check_mask_size(file, sequence.name, size)


def read_lines(path: Path) -> list[str]:
    """A listing's lines; StsegInputError naming the file when it cannot be read or is not text."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise StsegInputError(f"{path}: not a text listing (byte {exc.start} is not UTF-8)") from exc
    except OSError as exc:
        raise StsegInputError(f"{path}: cannot read ({exc.strerror or exc})") from exc


def read_names(listing: Path, prefix: str = "") -> list[tuple[str, str]]:
    """The sequence names a listing file holds, one per line (blank lines skipped, a leading
    ``prefix`` such as SegTrackV2's ``*`` stripped), each with where it came from
    (``"FILE, line N"``) for messages. StsegInputError naming the line for a bad or repeated
    name, naming the file when it lists none."""
    names: list[tuple[str, str]] = []
    seen: set[str] = set()
    for number, line in enumerate(read_lines(listing), start=1):
        name = line.strip()
        name = name[len(prefix):].strip() if prefix and name.startswith(prefix) else name
        if not name:
            continue
        where = f"{listing}, line {number}"
        check_name(name, where)
        if name in seen:
            raise StsegInputError(f"{where}: sequence {name!r} is listed twice")
        seen.add(name)
        names.append((name, where))
    if not names:
        raise StsegInputError(f"{listing}: lists no sequences")
    return names
