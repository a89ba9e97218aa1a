"""FBMS-59 (Ochs, Malik & Brox, TPAMI 2014) in its own layout, or in the processed copy many
peers use, read and checked before any work is done.

The dataset as distributed::

    ROOT/Trainingset/<seq>/      (29 sequences; "TrainingSet" is accepted too)  -> split train
    ROOT/Testset/<seq>/          (30 sequences; "TestSet" too)                  -> splits val and test
        <seq>_0001.jpg ...       frames; numbering differs per sequence (cars1_01.jpg,
                                 tennis454.jpg, marple4 starts at 325)
        <seq>.bmf                "N 1", then the N frames in order, named .ppm though the
                                 frames are .jpg
        GroundTruth/<seq>Def.dat the annotated frames (0-based positions in the sequence) and
                                 the value of each region
        GroundTruth/...          the masks Def.dat names: grey .pgm with a black background
                                 (the older, BMS-26 sequences) or colour ..._gt.ppm with a
                                 white background (the others), beside _gt.pgm probability
                                 maps and PROB files that are not masks

Def.dat is the only authority on which frames are annotated and what each mask value means:
a frame is annotated when Def.dat lists it, and its mask is the file Def.dat names (so the
probability maps and PROB files are never read as masks). A region's value is the grey level
(.pgm) or R·65536 + G·256 + B (.ppm); the background (black, or white in colour masks) becomes
object id 0 and the other regions ids 1, 2, ... in Def.dat's order, the same in every frame of
the sequence. A mask value Def.dat does not list (cats04_0020_gt.ppm has one) is read as
background, with a warning (the official evaluator, by an accident of its code, gives such
pixels to Def.dat's first region).

The processed copy (``ROOT/JPEGImages/<seq>/00001.jpg``, ``ROOT/Annotations/<seq>/00001.png``,
binary masks of the annotated frames only, objects merged) is detected from those two folders.
It says nothing of splits, so every sequence goes to val and test. Its masks are matched to the
frames by file stem; an indexed mask keeps its palette indices as object ids, any other one is
foreground (id 1) where a channel is above 127. Known limit of such copies: the script that
makes them numbers frames from 00001 but masks after the original frame number, so for a
sequence not numbered from 1 (tennis from 454, marple4 from 325) the masks do not sit on their
frames; a mask past the last frame is refused, one inside cannot be told apart. A copy holding
the annotated frames only (a mask on every frame) is refused: its images are 20 frames apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import StsegInputError
from ..io.flowfiles import natural_key
from ..io.masks import VOID
from ..io.outdir import check_name
from ..io.videoio import IMAGE_SUFFIXES
from .listing import ListedFrame, ListedSequence, check_sizes, read_lines

log = logging.getLogger(__name__)

# The original spelling first; other copies of the dataset capitalise the S.
SPLIT_FOLDERS = {"train": ("Trainingset", "TrainingSet"), "test": ("Testset", "TestSet")}
FRAME_SUFFIXES = (*IMAGE_SUFFIXES, ".ppm")
WHITE = 0xFFFFFF
# Above this a processed copy's grey or colour mask is foreground: its masks are 0/255, and
# JPEG-like noise or anti-aliasing must not make a pixel foreground.
PROCESSED_THRESHOLD = 127


@dataclass(frozen=True)
class LabelledFrame:
    """One annotated frame of Def.dat: its position in the sequence (0-based), its mask file
    (relative to Def.dat's folder), the image file Def.dat names, and Def.dat's line."""

    index: int
    file: str
    input: str
    line: int


@dataclass(frozen=True)
class Definition:
    """A ``<seq>Def.dat``: the region values in its order, the frame count, the annotated frames."""

    path: Path
    keys: tuple[int, ...]
    n_frames: int
    labelled: tuple[LabelledFrame, ...]
    n_frames_line: int = 0  # where the frame count is, for messages


class _Lines:
    """Def.dat's non-empty lines, one at a time, with their line numbers for messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines = [(n, line.strip()) for n, line in enumerate(read_lines(path), start=1) if line.strip()]
        self.at = 0
        self.number = 0  # the line last read

    def next(self, what: str) -> tuple[int, str]:
        if self.at >= len(self.lines):
            raise StsegInputError(f"{self.path}: ends early, expected {what}")
        self.at += 1
        self.number = self.lines[self.at - 1][0]
        return self.lines[self.at - 1]

    def label(self, label: str) -> None:
        number, line = self.next(repr(label))
        # Case and the dataset's own spelling ("penality") aside, a label must match.
        if not line.lower().startswith(label.lower()):
            raise StsegInputError(f"{self.path}, line {number}: expected {label!r}, got {line!r}")

    def integer(self, what: str) -> int:
        number, line = self.next(what)
        try:
            return int(line)
        except ValueError:
            raise StsegInputError(f"{self.path}, line {number}: expected {what} (an integer), got {line!r}") from None


def read_definition(path: Path) -> Definition:
    """Parse a ground-truth definition file; StsegInputError naming the line where it departs
    from the format (see the module docstring)."""
    lines = _Lines(path)
    lines.label("Ground truth definition file")
    lines.label("Total number of regions:")
    n_regions = lines.integer("the number of regions")
    keys = []
    for region in range(n_regions):
        lines.label(f"Scale of region {region}:")
        keys.append(lines.integer(f"the value of region {region}"))
    if len(set(keys)) != len(keys):
        raise StsegInputError(f"{path}: two regions have the same value ({', '.join(map(str, keys))})")
    lines.label("Confusion penality matrix:")
    for _ in range(n_regions):
        lines.next("a row of the confusion penalty matrix")
    lines.label("Total number of frames in this shot:")
    n_frames = lines.integer("the number of frames")
    n_frames_line = lines.number
    lines.label("Total number of labeled frames for this shot:")
    n_labelled = lines.integer("the number of labelled frames")
    labelled = []
    for _ in range(n_labelled):
        lines.label("Frame number:")
        index = lines.integer("a frame number")
        number = lines.number
        lines.label("File name:")
        _, file = lines.next("a mask file name")
        lines.label("Input file name:")
        _, image = lines.next("an image file name")
        if not 0 <= index < n_frames:
            raise StsegInputError(f"{path}, line {number}: frame number {index} outside the shot's {n_frames} frames (0-based)")
        labelled.append(LabelledFrame(index, file, image, number))
    if lines.at < len(lines.lines):
        number, line = lines.lines[lines.at]
        raise StsegInputError(f"{path}, line {number}: more than the {n_labelled} labelled frames it announces ({line!r})")
    if len({f.index for f in labelled}) != len(labelled):
        raise StsegInputError(f"{path}: a frame is labelled twice")
    return Definition(path, tuple(keys), n_frames, tuple(labelled), n_frames_line)


@dataclass(frozen=True)
class FbmsTruth:
    """A sequence's Def.dat regions as object ids (the :class:`~.listing.ObjectTruth` of FBMS).

    ``annotated``: frame index -> (its mask file,); ``ids``: region value -> object id
    (background 0); ``colour``: whether the masks are colour (.ppm, white background) or grey
    (.pgm, black background)."""

    annotated: dict[int, tuple[Path, ...]]
    ids: dict[int, int]
    colour: bool

    def read(self, index: int) -> np.ndarray:
        path = self.annotated[index][0]
        keys = _mask_values(path, self.colour)
        values, inverse = np.unique(keys, return_inverse=True)
        unknown = [int(v) for v in values if int(v) not in self.ids]
        if unknown:
            shown = ", ".join(f"#{v:06x}" if self.colour else str(v) for v in unknown[:5])
            log.warning("%s: value(s) %s not among its Def.dat's regions; read as background", path, shown)
        ids = np.array([self.ids.get(int(v), 0) for v in values], dtype=np.uint8)
        return ids[inverse.reshape(keys.shape)]


def _mask_values(path: Path, colour: bool) -> np.ndarray:
    """(H, W) int64 region values of an FBMS mask: the grey level, or R·65536 + G·256 + B."""
    try:
        with Image.open(path) as image:
            if colour:
                rgb = np.asarray(image.convert("RGB"), dtype=np.int64)
                return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
            if image.mode not in ("L", "P", "I", "I;16"):
                raise StsegInputError(f"{path}: a {image.mode} mask among grey ones (.pgm) of the same sequence")
            return np.asarray(image, dtype=np.int64)
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise StsegInputError(f"{path}: not a readable mask ({exc})") from exc


def _is_colour(path: Path) -> bool:
    try:
        with Image.open(path) as image:
            return image.mode in ("RGB", "RGBA")
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise StsegInputError(f"{path}: not a readable mask ({exc})") from exc


def _images(folder: Path) -> list[Path]:
    return sorted(
        (p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in FRAME_SUFFIXES),
        key=lambda p: natural_key(p.name),
    )


def _by_stem(files: list[Path]) -> dict[str, Path]:
    """Stem -> file, a .jpg preferred where several files share a stem."""
    found: dict[str, Path] = {}
    for file in files:
        if file.stem not in found or file.suffix.lower() == ".jpg":
            found[file.stem] = file
    return found


def read_frames(folder: Path, name: str) -> list[Path]:
    """A sequence's frames in order: those ``<seq>.bmf`` lists (each name's stem matched to
    an image of the folder, whatever its extension), or without one every image of the folder
    in natural order. StsegInputError naming the file for a malformed .bmf or a listed frame
    that is not there."""
    images = _images(folder)
    bmf = folder / f"{name}.bmf"
    if not bmf.is_file():
        if not images:
            raise StsegInputError(f"{folder}: no frames (no {name}.bmf and no images)")
        log.info("%s: no %s; its %d images in natural order", folder, bmf.name, len(images))
        return images
    lines = [line.strip() for line in read_lines(bmf) if line.strip()]
    header = lines[0].split() if lines else []
    if not header or not header[0].isdigit():
        raise StsegInputError(f"{bmf}, line 1: expected 'N 1' (the number of frames), got {lines[0] if lines else 'nothing'!r}")
    listed = lines[1:]
    if len(listed) != int(header[0]):
        raise StsegInputError(f"{bmf}: announces {header[0]} frames but lists {len(listed)}")
    stems = _by_stem(images)
    frames = []
    for number, entry in enumerate(listed, start=2):
        stem = Path(entry.replace("\\", "/")).stem
        if stem not in stems:
            raise StsegInputError(f"{bmf}, line {number}: frame {entry!r} not found in {folder} (as {stem}.jpg or another image)")
        frames.append(stems[stem])
    return frames


def _definition_file(folder: Path, name: str) -> Path:
    named = folder / f"{name}Def.dat"
    if named.is_file():
        return named
    found = sorted(folder.glob("*.dat"))
    if len(found) == 1:
        return found[0]
    if not found:
        raise StsegInputError(f"{folder}: no {named.name}, the ground-truth definition naming the annotated frames")
    raise StsegInputError(f"{folder}: no {named.name} and several .dat files ({', '.join(p.name for p in found)}); which is Def.dat?")


def read_fbms_sequence(folder: Path) -> ListedSequence:
    """One FBMS sequence folder: its frames and Def.dat's ground truth, checked (the count of
    frames against Def.dat's, every mask file present and of the frames' size, every image Def.dat
    names at the position it gives)."""
    name = check_name(folder.name, str(folder))
    frames = read_frames(folder, name)
    gt_folder = folder / "GroundTruth"
    if not gt_folder.is_dir():
        raise StsegInputError(f"{gt_folder}: no such folder; an FBMS sequence keeps its ground truth there")
    definition = read_definition(_definition_file(gt_folder, name))
    if definition.n_frames != len(frames):
        raise StsegInputError(
            f"{definition.path}, line {definition.n_frames_line}: says the shot has {definition.n_frames} frames, "
            f"but {folder} has {len(frames)}"
        )
    position = {frame.stem: t for t, frame in enumerate(frames)}
    annotated: dict[int, tuple[Path, ...]] = {}
    for entry in definition.labelled:
        mask = gt_folder / entry.file.replace("\\", "/")
        if not mask.is_file():
            raise StsegInputError(f"{definition.path}, line {entry.line}: mask {entry.file!r} not found in {gt_folder}")
        named = position.get(Path(entry.input.replace("\\", "/")).stem)
        if named is not None and named != entry.index:
            raise StsegInputError(
                f"{definition.path}, line {entry.line}: frame number {entry.index} but its input file {entry.input!r} is "
                f"frame {named} of {folder}"
            )
        annotated[entry.index] = (mask,)
    if not annotated:
        raise StsegInputError(f"{definition.path}: labels no frame")
    colour = {_is_colour(files[0]) for files in annotated.values()}
    if len(colour) > 1:
        raise StsegInputError(f"{gt_folder}: masks of both kinds, colour and grey; Def.dat's values mean one of them")
    is_colour = colour.pop()
    background = WHITE if is_colour else 0
    objects = [key for key in definition.keys if key != background]
    if len(objects) >= VOID:
        raise StsegInputError(f"{definition.path}: {len(objects)} object regions; object-id PNGs hold at most {VOID - 1}")
    ids = {background: 0, **{key: i for i, key in enumerate(objects, start=1)}}
    sequence = ListedSequence(
        name,
        tuple(ListedFrame(frame.stem, frame, None) for frame in frames),
        FbmsTruth(annotated, ids, is_colour),
    )
    check_sizes(sequence)
    return sequence


def _split_folder(root: Path, split: str) -> Path | None:
    found = [root / spelling for spelling in SPLIT_FOLDERS[split] if (root / spelling).is_dir()]
    if len(found) > 1:
        raise StsegInputError(f"{root}: both {found[0].name} and {found[1].name}; which is the {split} set?")
    return found[0] if found else None


def _sequence_folders(folder: Path) -> list[Path]:
    return sorted((p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: natural_key(p.name))


def read_fbms(root: str | Path) -> dict[str, list[ListedSequence]]:
    """The splits of an FBMS-59 root, as distributed (train, val and test) or processed (val
    and test); see the module docstring. StsegInputError naming the file or folder for
    anything that cannot be read."""
    root = Path(root)
    if (root / "JPEGImages").is_dir() and (root / "Annotations").is_dir():
        sequences = read_processed(root)
        return {"val": sequences, "test": sequences}
    splits: dict[str, list[ListedSequence]] = {}
    for split in SPLIT_FOLDERS:
        folder = _split_folder(root, split)
        if folder is None:
            continue
        folders = _sequence_folders(folder)
        if not folders:
            raise StsegInputError(f"{folder}: no sequence folders")
        splits[split] = [read_fbms_sequence(f) for f in folders]
    if not splits:
        found = sorted(p.name for p in root.iterdir() if not p.name.startswith(".")) if root.is_dir() else []
        raise StsegInputError(
            f"{root}: not an FBMS-59 root: neither Trainingset/ nor Testset/ (nor the processed copy's JPEGImages/ and "
            f"Annotations/); it holds {', '.join(found[:6]) or 'nothing'}"
        )
    if "test" in splits:
        splits["val"] = splits["test"]
    return {split: splits[split] for split in ("train", "val", "test") if split in splits}


@dataclass(frozen=True)
class ProcessedTruth:
    """The processed copy's masks (the :class:`~.listing.ObjectTruth` of its sequences)."""

    annotated: dict[int, tuple[Path, ...]]

    def read(self, index: int) -> np.ndarray:
        path = self.annotated[index][0]
        try:
            with Image.open(path) as image:
                if image.mode == "P":
                    return np.asarray(image, dtype=np.uint8)
                array = np.asarray(image.convert("RGB") if image.mode not in ("L", "RGB") else image)
        except (UnidentifiedImageError, OSError, SyntaxError) as exc:
            raise StsegInputError(f"{path}: not a readable mask ({exc})") from exc
        grey = array.max(axis=-1) if array.ndim == 3 else array
        return (grey > PROCESSED_THRESHOLD).astype(np.uint8)


def read_processed(root: Path) -> list[ListedSequence]:
    """The processed copy: ``JPEGImages/<seq>/`` frames in natural order, ``Annotations/<seq>/``
    masks matched by stem (a mask without its frame is an error naming it)."""
    folders = _sequence_folders(root / "JPEGImages")
    if not folders:
        raise StsegInputError(f"{root / 'JPEGImages'}: no sequence folders")
    sequences = []
    for folder in folders:
        name = check_name(folder.name, str(folder))
        frames = _images(folder)
        if not frames:
            davis = any(p.is_dir() for p in folder.iterdir())
            raise StsegInputError(
                f"{folder}: no frames" + (f" but folders; is {root} a DAVIS dataset (stseg-prepare davis)?" if davis else "")
            )
        masks_folder = root / "Annotations" / name
        if not masks_folder.is_dir():
            raise StsegInputError(f"{masks_folder}: no such folder; the processed copy keeps {name!r}'s masks there")
        position = {frame.stem: t for t, frame in enumerate(frames)}
        annotated: dict[int, tuple[Path, ...]] = {}
        for mask in _images(masks_folder):
            if mask.stem not in position:
                raise StsegInputError(
                    f"{mask}: no frame {mask.stem} in {folder} (copies made by FBMS_clean number masks after the original "
                    "frame number but frames from 00001: use the original FBMS-59 layout for sequences not numbered from 1)"
                )
            annotated[position[mask.stem]] = (mask,)
        if not annotated:
            raise StsegInputError(f"{masks_folder}: no masks")
        if len(annotated) == len(frames) > 2:
            # FBMS annotates every 20th frame: a mask on every frame means a copy of the
            # annotated frames only, whose neighbours are 20 frames apart (no usable flow).
            raise StsegInputError(
                f"{masks_folder}: a mask for every frame of {folder}; FBMS annotates every 20th frame, so this looks like a "
                "copy of the annotated frames only, whose consecutive images are 20 frames apart: give the copy with every frame"
            )
        sequence = ListedSequence(name, tuple(ListedFrame(f.stem, f, None) for f in frames), ProcessedTruth(annotated))
        check_sizes(sequence)
        sequences.append(sequence)
    return sequences


__all__ = ["Definition", "FbmsTruth", "LabelledFrame", "ProcessedTruth", "read_definition", "read_fbms", "read_frames",
           "read_fbms_sequence", "read_processed"]
