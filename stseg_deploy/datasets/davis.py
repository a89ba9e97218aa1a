"""The DAVIS dataset in its own layout, read and checked before any work is done.

Both editions keep ``ROOT/JPEGImages/<res>/<seq>/NNNNN.jpg`` frames and
``ROOT/Annotations/<res>/<seq>/NNNNN.png`` masks; they list their splits differently:

- DAVIS-2016: ``ROOT/ImageSets/<res>/<split>.txt``, one frame per line:
  ``/JPEGImages/480p/bear/00000.jpg /Annotations/480p/bear/00000.png`` (the mask may be
  absent, as in test listings); masks are 0/255.
- DAVIS-2017: ``ROOT/ImageSets/2017/<split>.txt``, one sequence name per line; a sequence's
  frames are the JPEGs of its folder, in name order, and each frame's mask is the PNG of the
  same name where there is one (test-dev annotates only the first frame). Masks are indexed
  PNGs whose palette index is the object id (0 background, 255 void), which stseg-eval
  ``--objects`` reads as they are.
"""

from __future__ import annotations

import logging
from pathlib import Path

from ..errors import StsegInputError
from ..io.datasplit import SPLITS
from ..io.outdir import check_name
from .listing import ListedFrame, ListedSequence, check_sizes, read_lines, read_names

log = logging.getLogger(__name__)


def read_listing(root: Path, listing: Path) -> list[ListedSequence]:
    """The sequences of one ImageSets file, in order of first appearance.

    Raises StsegInputError naming the line for a malformed line, a listed file that does not
    exist, a bad sequence name, a sequence whose lines are not contiguous, or a mask whose
    size differs from its frame's.
    """
    order: list[str] = []
    frames: dict[str, list[ListedFrame]] = {}
    for number, line in enumerate(read_lines(listing), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{listing}, line {number}"
        if len(fields) > 2:
            raise StsegInputError(f"{where}: expected 'IMAGE [MASK]', got {len(fields)} fields")
        image = root / fields[0].lstrip("/")
        mask = root / fields[1].lstrip("/") if len(fields) == 2 else None
        for path in (image, mask):
            if path is not None and not path.is_file():
                raise StsegInputError(f"{where}: {path}: listed but not found")
        name = check_name(image.parent.name, where)
        if name not in frames:
            order.append(name)
            frames[name] = []
        elif order[-1] != name:
            raise StsegInputError(f"{where}: sequence {name!r} continues after another sequence began")
        frames[name].append(ListedFrame(image.stem, image, mask))
    if not order:
        raise StsegInputError(f"{listing}: lists no frames")
    sequences = [ListedSequence(name, tuple(frames[name])) for name in order]
    for sequence in sequences:
        check_sizes(sequence)
    return sequences


YEARS = (2016, 2017)


def read_davis(root: str | Path, resolution: str = "480p", year: int = 2016) -> dict[str, list[ListedSequence]]:
    """Every split (train, val, test) that ``ROOT/ImageSets/<resolution>`` (DAVIS-2016) or
    ``ROOT/ImageSets/2017`` (DAVIS-2017) lists.

    Other ``.txt`` files there are logged and skipped. Raises StsegInputError when the
    folder is missing (naming what exists) or lists none of the splits, and, naming the
    file, for whatever :func:`read_listing` or :func:`read_sequence_listing` refuses.
    """
    if year not in YEARS:
        raise ValueError(f"year must be one of {YEARS}, got {year!r}")
    root = Path(root)
    sets = root / "ImageSets" / ("2017" if year == 2017 else resolution)
    if not sets.is_dir():
        found = sorted(p.name for p in (root / "ImageSets").iterdir() if p.is_dir()) if (root / "ImageSets").is_dir() else []
        if year == 2017:
            hint = "DAVIS-2017 lists its splits in ImageSets/2017/<split>.txt"
        elif found:
            hint = f"ImageSets has {', '.join(found)} (use --resolution" + (", or --year 2017 for DAVIS-2017's listings)" if "2017" in found else ")")
        else:
            hint = "it has no ImageSets folder"
        raise StsegInputError(f"{sets}: no such folder; is {root} a DAVIS dataset? {hint}")
    splits: dict[str, list[ListedSequence]] = {}
    for listing in sorted(sets.glob("*.txt")):
        if listing.stem not in SPLITS:
            log.warning("%s: not one of the splits %s; skipped", listing, ", ".join(SPLITS))
            continue
        splits[listing.stem] = read_sequence_listing(root, resolution, listing) if year == 2017 else read_listing(root, listing)
    if not splits:
        raise StsegInputError(f"{sets}: none of {', '.join(s + '.txt' for s in SPLITS)} found")
    return splits


def read_sequence_listing(root: Path, resolution: str, listing: Path) -> list[ListedSequence]:
    """The sequences of a DAVIS-2017 ImageSets file (one name per line), each with the JPEG
    frames of ``JPEGImages/<resolution>/<name>/`` in name order and, per frame, the PNG of the
    same name in ``Annotations/<resolution>/<name>/`` where there is one.

    Raises StsegInputError naming the line for a bad or repeated name, a sequence without a
    frame folder or without frames, and naming the file for a mask whose size differs from
    its frame's.
    """
    sequences: list[ListedSequence] = []
    for name, where in read_names(listing):
        folder = root / "JPEGImages" / resolution / name
        if not folder.is_dir():
            raise StsegInputError(f"{where}: {folder}: no frame folder for sequence {name!r} (is --resolution right?)")
        images = sorted(folder.glob("*.jpg"))
        if not images:
            raise StsegInputError(f"{where}: {folder}: no .jpg frames")
        masks = root / "Annotations" / resolution / name
        frames = []
        for image in images:
            mask = masks / f"{image.stem}.png"
            frames.append(ListedFrame(image.stem, image, mask if mask.is_file() else None))
        sequences.append(ListedSequence(name, tuple(frames)))
    for sequence in sequences:
        check_sizes(sequence)
    return sequences
