"""The SegTrackV2 dataset in its own distributed layout, read and checked before any work is done.

Layout (``ROOT`` is the unpacked ``SegTrackv2`` folder)::

    ROOT/JPEGImages/<seq>/<stem>.png|.bmp      frames (no JPEGs, despite the name; .jpg accepted)
    ROOT/GroundTruth/<seq>/<stem>.png|.bmp     one object: a mask per frame, or
    ROOT/GroundTruth/<seq>/1/, 2/, ... K/      several objects: a folder of masks per object
    ROOT/ImageSets/all.txt                     the sequences, one a line, each prefixed by ``*``
    ROOT/ImageSets/<seq>.txt                   optional: a path prefix, then one frame stem a line

Quirks handled:

- Extensions are not consistent: frames are ``.png`` in some sequences and ``.bmp`` in others,
  and a mask may have another extension than its frame (penguin's and monkeydog's masks are
  ``.png``; cheetah's ``1/`` uses the frame's extension and ``2/`` uses ``.png``). Masks are
  matched to frames by file stem, whatever image extension either has.
- Frame numbers start anywhere (bmx starts at ``bmx_06668``) and names need not start with the
  sequence's name (birdfall's are ``birdfall2_*``): frames are ordered by the sequence's
  ``ImageSets/<seq>.txt`` when there is one, else by natural sort of their stems. The first line
  of ``<seq>.txt`` (a path prefix) is skipped: the frames are always looked for in
  ``JPEGImages/<seq>/``.
- Without ``ImageSets/all.txt`` the sequences are the subfolders of ``JPEGImages`` (hidden ones
  skipped), in natural sort order.
- Every frame is annotated: a frame without a mask in some object folder, or a mask without a
  frame of its stem, is an error.

Mask values (see :class:`SegTrackTruth`): masks are often 3-channel 0/255 images with some values
in between. A pixel belongs to an object where the maximum over its colour channels is above 127
(the middle of the 0-255 range: in-between values are read as whatever they are closer to, which
neither grows nor shrinks an object by its blurred edge). Where two objects' masks overlap, the
lower-numbered object keeps the pixel. Nothing is read as void (255).

The dataset has no splits: :func:`read_segtrackv2` lists every sequence under both ``val`` and
``test``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import StsegInputError
from ..io.flowfiles import natural_key
from ..io.outdir import check_name
from .listing import ListedFrame, ListedSequence, check_sizes, read_lines, read_names

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg")
"""Extensions (any case) of frames and masks."""

THRESHOLD = 127
"""A mask pixel is its object's where its largest channel value is above this."""

MAX_OBJECTS = 254
"""Object ids go up to 254 (255 is void in the converted PNGs)."""

_MODES = ("1", "L", "LA", "P", "PA", "RGB", "RGBA")


@dataclass(frozen=True)
class SegTrackTruth:
    """A SegTrackV2 sequence's ground truth: per frame index, its mask files (one per object)
    and, per position in those tuples, the object id each file's foreground gets.

    ``annotated``: every frame index -> its masks, in the order of ``objects``.
    ``objects``: the object ids, ``(1,)`` for a single-object sequence, the subfolder numbers
    ``(1, 2, ..., K)`` otherwise.
    """

    annotated: dict[int, tuple[Path, ...]]
    objects: tuple[int, ...]

    def read(self, index: int) -> np.ndarray:
        """The frame's (H, W) uint8 object ids: object k where its mask is above
        :data:`THRESHOLD` (largest channel), the lowest k where masks overlap, 0 elsewhere.

        Raises StsegInputError naming the file for an unreadable mask, a mode that is not an
        8-bit greyscale, indexed or colour image, or masks of different sizes.
        """
        ids: np.ndarray | None = None
        for file, object_id in zip(self.annotated[index], self.objects):
            foreground = read_mask(file)
            if ids is None:
                ids = np.zeros(foreground.shape, np.uint8)
            elif foreground.shape != ids.shape:
                first = self.annotated[index][0]
                raise StsegInputError(
                    f"{file}: mask is {foreground.shape[1]}x{foreground.shape[0]} but {first} is "
                    f"{ids.shape[1]}x{ids.shape[0]} (width x height)"
                )
            ids[foreground & (ids == 0)] = object_id  # a lower-numbered object keeps the pixel
        if ids is None:
            raise StsegInputError(f"frame {index}: no mask files")
        return ids


def read_mask(path: Path) -> np.ndarray:
    """One SegTrackV2 mask file as (H, W) bool: the largest colour channel above :data:`THRESHOLD`
    (alpha ignored; indexed images read through their palette)."""
    try:
        with Image.open(path) as image:
            image.load()
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise StsegInputError(f"{path}: not a readable image ({exc})") from exc
    if image.mode not in _MODES:
        raise StsegInputError(f"{path}: expected an 8-bit greyscale, indexed or colour mask, got mode {image.mode}")
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    return rgb.max(axis=-1) > THRESHOLD


def read_segtrackv2(root: str | Path) -> dict[str, list[ListedSequence]]:
    """Every sequence of a SegTrackV2 tree, as ``{"val": sequences, "test": sequences}`` (the
    same list: the dataset has no splits), each with its frames in order and a
    :class:`SegTrackTruth` annotating every frame.

    Raises StsegInputError, naming the file or folder (and the line of a listing), for: ROOT
    without ``JPEGImages/`` (saying what ROOT holds), a bad or repeated sequence name, a listed
    sequence without a frame folder, a frame folder without frames or with fewer than 2 (no
    flow possible), a sequence without a ``GroundTruth`` folder, an object subfolder not named
    by a number (or numbers not 1..K), a frame without a mask in some object folder, a mask
    without a frame of its stem, two files of one stem in one folder, a ``<seq>.txt`` line
    naming no frame, and a mask whose size differs from the frames'.
    """
    root = Path(root)
    frames_root = root / "JPEGImages"
    if not frames_root.is_dir():
        if not root.is_dir():
            raise StsegInputError(f"{root}: no such folder")
        entries = sorted((p.name + ("/" if p.is_dir() else "") for p in root.iterdir() if not p.name.startswith(".")), key=natural_key)
        held = ", ".join(entries[:10]) + (f", ... ({len(entries)} in all)" if len(entries) > 10 else "") if entries else "nothing"
        raise StsegInputError(
            f"{frames_root}: no such folder; is {root} a SegTrackV2 dataset (JPEGImages/, GroundTruth/, ImageSets/)? It holds {held}"
        )
    sequences = [read_sequence(root, name, where) for name, where in sequence_names(root)]
    for sequence in sequences:
        check_sizes(sequence)
    return {"val": sequences, "test": list(sequences)}


def sequence_names(root: Path) -> list[tuple[str, str]]:
    """(name, where it came from) of every sequence: the lines of ``ImageSets/all.txt`` with their
    leading ``*`` stripped, or the subfolders of ``JPEGImages`` without it."""
    listing = root / "ImageSets" / "all.txt"
    frames_root = root / "JPEGImages"
    names: list[tuple[str, str]] = []
    if listing.is_file():
        names = read_names(listing, prefix="*")
        for name, where in names:
            if not (frames_root / name).is_dir():
                raise StsegInputError(f"{where}: {frames_root / name}: no frame folder for sequence {name!r}")
        return names
    folders = sorted((p for p in frames_root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: natural_key(p.name))
    for folder in folders:
        names.append((check_name(folder.name, str(folder)), str(folder)))
    if not names:
        raise StsegInputError(f"{frames_root}: no sequence folders (and no {listing} to list them)")
    return names


def image_files(folder: Path) -> dict[str, Path]:
    """stem -> file of the images in ``folder`` (hidden files and other extensions skipped);
    StsegInputError naming both files when two share a stem."""
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if path.stem in files:
            raise StsegInputError(f"{path}: {files[path.stem].name} has the same stem; which one is meant is ambiguous")
        files[path.stem] = path
    return files


def frame_order(root: Path, name: str, frames: dict[str, Path]) -> list[str]:
    """The stems of the sequence's frames in order: those of ``ImageSets/<name>.txt`` (its first
    line, a path prefix, skipped unless it names a frame) when there is one, else all of them
    in natural sort order."""
    listing = root / "ImageSets" / f"{name}.txt"
    if not listing.is_file():
        return sorted(frames, key=natural_key)
    stems: list[str] = []
    seen: set[str] = set()
    lines = read_lines(listing)
    # Line 1 is the path prefix in the copies the peers read; a copy without it starts with a frame.
    first = lines[0].strip() if lines else ""
    start = 1 if first in frames or Path(first).stem in frames and Path(first).suffix.lower() in IMAGE_SUFFIXES else 2
    for number, line in enumerate(lines[start - 1:], start=start):
        stem = line.strip()
        if not stem:
            continue
        where = f"{listing}, line {number}"
        if stem not in frames and Path(stem).suffix.lower() in IMAGE_SUFFIXES:
            stem = Path(stem).stem  # tolerate a listed extension
        if stem not in frames:
            raise StsegInputError(f"{where}: no frame {stem!r} in {root / 'JPEGImages' / name}")
        if stem in seen:
            raise StsegInputError(f"{where}: frame {stem!r} is listed twice")
        seen.add(stem)
        stems.append(stem)
    if not stems:
        raise StsegInputError(f"{listing}: lists no frames (line 1 is a path prefix, then one frame name a line)")
    unlisted = len(frames) - len(stems)
    if unlisted:
        log.warning("%s: %d frame(s) of %s not listed; skipped", listing, unlisted, root / "JPEGImages" / name)
    return stems


def object_folders(truth: Path) -> list[tuple[int, Path]]:
    """(object id, mask folder) of a sequence's ground truth: ``[(1, truth)]`` when the masks lie
    in ``truth`` itself, else its numbered subfolders 1..K in order."""
    subfolders = [p for p in truth.iterdir() if p.is_dir() and not p.name.startswith(".")]
    loose = image_files(truth)
    if not subfolders:
        if not loose:
            raise StsegInputError(f"{truth}: no masks and no object subfolders 1/, 2/, ...")
        return [(1, truth)]
    if loose:
        raise StsegInputError(
            f"{next(iter(loose.values()))}: mask beside the object subfolders of {truth}; masks of a "
            "multi-object sequence belong in its numbered subfolders"
        )
    numbered: dict[int, Path] = {}
    for folder in subfolders:
        if not folder.name.isdigit() or not folder.name.isascii():
            raise StsegInputError(f"{folder}: object subfolder not named by a number (expected 1/, 2/, ...)")
        numbered[int(folder.name)] = folder
    expected = list(range(1, len(numbered) + 1))
    if sorted(numbered) != expected:
        raise StsegInputError(
            f"{truth}: object subfolders {', '.join(p.name for _, p in sorted(numbered.items()))}; expected 1 to {len(numbered)}"
        )
    if len(numbered) > MAX_OBJECTS:
        raise StsegInputError(f"{truth}: {len(numbered)} object subfolders; at most {MAX_OBJECTS} objects can be told apart")
    return sorted(numbered.items())


def read_sequence(root: Path, name: str, where: str) -> ListedSequence:
    """One sequence: its frames (``JPEGImages/<name>/``) in order and its masks
    (``GroundTruth/<name>/``) matched to them by stem; see :func:`read_segtrackv2` for the errors."""
    folder = root / "JPEGImages" / name
    if not folder.is_dir():
        raise StsegInputError(f"{where}: {folder}: no frame folder for sequence {name!r}")
    frames = image_files(folder)
    if not frames:
        davis = any(p.is_dir() for p in folder.iterdir())
        hint = f"; it holds folders: is {root} a DAVIS dataset (stseg-prepare davis)?" if davis else ""
        raise StsegInputError(f"{folder}: no frames ({', '.join(IMAGE_SUFFIXES)}){hint}")
    stems = frame_order(root, name, frames)
    if len(stems) < 2:
        raise StsegInputError(f"{folder}: sequence {name!r} has {len(stems)} frame; at least 2 are needed for optical flow")
    truth = root / "GroundTruth" / name
    if not truth.is_dir():
        raise StsegInputError(f"{truth}: no ground-truth folder for sequence {name!r}")
    objects = object_folders(truth)
    masks: list[dict[str, Path]] = []
    for _, mask_folder in objects:
        files = image_files(mask_folder)
        for stem, file in files.items():
            if stem not in frames:
                raise StsegInputError(f"{file}: no frame {stem!r} in {folder}")
        for stem in stems:
            if stem not in files:
                raise StsegInputError(f"{mask_folder}: no mask for frame {stem!r} ({frames[stem]})")
        masks.append(files)
    annotated = {index: tuple(files[stem] for files in masks) for index, stem in enumerate(stems)}
    listed = tuple(ListedFrame(stem, frames[stem], None) for stem in stems)
    return ListedSequence(name, listed, SegTrackTruth(annotated, tuple(k for k, _ in objects)))
