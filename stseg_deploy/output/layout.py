"""The stseg-infer OUT folder: every file name in it, reading a sequence's output, and the
scan of a whole OUT folder. The one home of the format: :mod:`stseg_deploy.output.folder` writes
it, :mod:`stseg_deploy.eval` and :mod:`stseg_deploy.viz` read it through here, so that
scoring an output never loads the inference pipeline.

Layout of ``OUT/SEQ/`` (one folder per sequence, written as one unit: see
:mod:`stseg_deploy.io.outdir`):

- ``labels.npy``: (F, h, w) uint8 at model resolution, the linked labels;
- ``<frame>.png``: indexed label maps (DAVIS palette) at the frames' size (``original_size``):
  the labels upsampled (nearest), or for a refined output (``settings.refine == "guided"``)
  the refined label maps, which then only these PNGs hold (see :func:`read_label_maps`);
- ``foreground/<frame>.png``: 0/255 masks of the moving objects, DAVIS-2016 style, and
  ``objects/<frame>.png``: object-id maps (0 background, an object's id = its label + 1, as
  stable over time as the labels), both at ``original_size``, when the foreground was decided
  (``settings.foreground == "motion"``; which labels are objects, per frame, is sequence.json's
  ``objects``);
- ``proba/<frame>.npy``: (L, h, w) float32 renamed probabilities (``--save-proba``);
- ``features/<frame>.npy``: (C, h, w) float16 last-layer features (``--save-features``);
- ``flow/<frame>.png``, ``overlay/<frame>.png``, ``overlay.mp4`` (``--overlay``);
- ``sequence.json``: frame names, sizes, model metadata, the settings, the model file's
  SHA-256, timings, and the completeness marker (written last);
- ``contact_sheet.png``: written later by stseg-viz, into a finished output.

Beside the sequence folders, stseg-eval writes ``scores.csv``, ``summary.csv``,
``objects.csv`` (``--objects``) and ``eval.json``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import StsegInputError
from ..io.outdir import OLD_TAG, TMP_TAG, OutputBusyError, OutputUnit, check_name, is_complete, read_marker, read_stamp
from ..preprocess import resize_labels
from ..settings import InferenceSettings

log = logging.getLogger(__name__)

# -- names -----------------------------------------------------------------------------------

TOOL = "stseg-infer"
SEQUENCE_FILE = "sequence.json"
LABELS_FILE = "labels.npy"
PROBA_DIR = "proba"
FOREGROUND_DIR = "foreground"
OBJECTS_DIR = "objects"
FEATURES_DIR = "features"
FLOW_DIR = "flow"
OVERLAY_DIR = "overlay"
OVERLAY_VIDEO = "overlay.mp4"
CONTACT_SHEET = "contact_sheet.png"
# stseg-viz writes its contact sheet into a finished sequence folder by default.
LATER_FILES = (CONTACT_SHEET,)

EVAL_TOOL = "stseg-eval"
EVAL_MARKER = "eval.json"
SCORES_FILE = "scores.csv"
SUMMARY_FILE = "summary.csv"
OBJECTS_FILE = "objects.csv"
EVAL_LOCK = ".eval.lock"
EVAL_FILES = (SCORES_FILE, SUMMARY_FILE, OBJECTS_FILE, EVAL_MARKER)

NOT_COMPLETE = f"not a complete {TOOL} output (no marked {SEQUENCE_FILE})"
INTERRUPTED = "interrupted run, no complete output"


def sequence_output_unit(out_dir: str | Path, name: str) -> OutputUnit:
    """The output unit ``out_dir/name`` of stseg-infer (see :mod:`stseg_deploy.io.outdir`)."""
    if check_name(name) in EVAL_FILES:
        raise StsegInputError(f"sequence name {name!r} is the name of a file stseg-eval writes beside the sequence folders")
    return OutputUnit(Path(out_dir) / name, TOOL, SEQUENCE_FILE, also_ours=LATER_FILES)


@dataclass(frozen=True)
class OutputOptions:
    """What a sequence's output holds beyond labels.npy and the label PNGs: ``save_proba``
    (proba/<frame>.npy), ``save_features`` (features/<frame>.npy), ``overlay`` (flow/,
    overlay/ and overlay.mp4). stseg-infer's --save-proba, --save-features and --overlay,
    passed whole from the command line to the writer (and to Ray workers)."""

    save_proba: bool = False
    save_features: bool = False
    overlay: bool = False


# What outputs written before the test-time flip, the refinement, the motion split, the
# temporal carry and the foreground decision existed were made with.
def recorded_settings(record: dict, where: str | Path = SEQUENCE_FILE) -> InferenceSettings:
    """The stages a sequence record says its output was made with (an output written before
    a stage existed: "none" for it). Raises ValueError naming ``where`` for a value no
    stage accepts."""
    settings = record.get("settings") or {}
    try:
        if not isinstance(settings, dict):
            raise ValueError(f"'settings' must be an object, got {type(settings).__name__}")
        return InferenceSettings.from_record(settings)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc


def record_objects(record: dict, where: str | Path = "sequence.json") -> np.ndarray | None:
    """Which labels are moving objects in each frame, from a sequence record: (F, L) bool,
    or None for an output whose foreground was not decided (``--foreground none``, or
    written before the decision existed). Raises ValueError naming ``where`` when the
    record's ``objects`` does not fit its frames and labels."""
    if not recorded_settings(record, where).foreground.on:
        return None
    chosen = record.get("objects")
    n_frames, n_labels = len(record["frames"]), int(record["n_labels"])
    if not isinstance(chosen, list) or len(chosen) != n_frames:
        raise ValueError(f"{where}: 'objects' must list the object labels of each of its {n_frames} frames")
    out = np.zeros((n_frames, n_labels), dtype=bool)
    for t, labels in enumerate(chosen):
        # type() is int: JSON true/false load as bool, a subclass of int.
        if not isinstance(labels, list) or any(type(x) is not int or not 0 <= x < n_labels for x in labels):
            raise ValueError(f"{where}: 'objects' of frame {record['frames'][t]} must be labels in [0, {n_labels}), got {labels!r}")
        out[t, np.asarray(labels, dtype=np.int64)] = True
    return out


def object_id_maps(maps: np.ndarray, objects: np.ndarray) -> np.ndarray:
    """Object-id maps from label maps (F, H, W) uint8 and :func:`record_objects` (F, L): (F,
    H, W) uint8, 0 for background, label + 1 for an object's pixels."""
    ids = np.where(objects, np.arange(1, objects.shape[1] + 1), 0).astype(np.uint8)  # (F, L)
    return np.take_along_axis(ids, maps.reshape(len(maps), -1).astype(np.int64), axis=1).reshape(maps.shape)


# -- one sequence's output --------------------------------------------------------------------


@contextlib.contextmanager
def _folder_snapshot(folder: Path):
    """An ``opener`` for files of ``folder`` as it is now: they are opened relative to one
    directory handle, so sequence.json and labels.npy come from the same output even if a
    rerun swaps a new one in meanwhile (the swap renames folders; the handle stays)."""
    if os.open not in os.supports_dir_fd or not hasattr(os, "O_DIRECTORY"):  # Windows
        yield lambda name, flags: os.open(folder / name, flags)
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise FileNotFoundError(f"{folder}: not an output folder") from exc
    try:
        yield lambda name, flags: os.open(name, flags, dir_fd=fd)
    finally:
        os.close(fd)


def read_sequence_output(seq_dir: str | Path) -> tuple[np.ndarray, dict]:
    """labels (F, h, w) uint8 at model size and the sequence.json record of a complete
    output folder: the linked labels, before any refinement.

    Raises FileNotFoundError when ``seq_dir`` is not a complete stseg-infer output (no
    ``sequence.json``, or one without the completeness marker), ValueError when its files
    disagree."""
    labels, record, _ = _read_output(Path(seq_dir), refined_maps=False)
    return labels, record


def read_segment_maps(seq_dir: str | Path) -> tuple[np.ndarray, dict]:
    """The label maps to score or draw an output from, and its sequence.json record: the
    refined maps (its PNGs, (F, H, W) uint8 at ``original_size``) when it was refined, else
    labels.npy ((F, h, w) uint8 at model size), so that an unrefined output is resized from
    its labels as before.

    Everything comes from one snapshot of the folder (a rerun swapping a new output in
    meanwhile is not mixed in). Raises as :func:`read_sequence_output`, and ValueError
    naming a PNG that is missing, unreadable or of another size."""
    labels, record, refined = _read_output(Path(seq_dir), refined_maps=True)
    return (labels if refined is None else refined), record


def read_label_maps(seq_dir: str | Path) -> tuple[np.ndarray, dict]:
    """The label maps an output stands for, (F, H, W) uint8 at its ``original_size``, and
    its sequence.json record: the refined maps (its PNGs) when it was refined, else
    labels.npy upsampled (nearest), which is what the PNGs of such an output hold too.
    Raises as :func:`read_segment_maps`."""
    maps, record = read_segment_maps(seq_dir)
    if not recorded_settings(record, Path(seq_dir) / SEQUENCE_FILE).refine.on:
        size = (int(record["original_size"][0]), int(record["original_size"][1]))
        maps = np.stack([resize_labels(frame, size) for frame in maps])
    return maps, record


def _read_output(seq_dir: Path, refined_maps: bool) -> tuple[np.ndarray, dict, np.ndarray | None]:
    """labels.npy, the record and, with ``refined_maps`` and a refined output, its PNGs
    (else None), all through one snapshot of the folder."""
    meta_path = seq_dir / SEQUENCE_FILE
    labels_path = seq_dir / LABELS_FILE
    refined = None
    with _folder_snapshot(seq_dir) as opener:
        try:
            with open(SEQUENCE_FILE, "rb", opener=opener) as handle:
                text = handle.read()
            with open(LABELS_FILE, "rb", opener=opener) as handle:
                try:
                    labels = np.load(handle, allow_pickle=False)
                except (ValueError, EOFError, OSError) as exc:
                    raise ValueError(f"{labels_path}: unreadable ({exc})") from exc
        except FileNotFoundError as exc:
            raise FileNotFoundError(
                f"{seq_dir / Path(exc.filename or SEQUENCE_FILE).name}: missing; is {seq_dir} a complete "
                f"{TOOL} output folder (or was it replaced while being read)?"
            ) from exc
        record = _parse_record(text, meta_path)
        if labels.ndim != 3 or labels.shape[0] != len(record["frames"]):
            raise ValueError(
                f"{labels_path}: shape {labels.shape} does not match the {len(record['frames'])} frames of {meta_path}"
            )
        if refined_maps and recorded_settings(record, meta_path).refine.on:
            size = (int(record["original_size"][0]), int(record["original_size"][1]))
            refined = np.stack([_read_png(seq_dir, name, opener, size) for name in record["frames"]])
    return labels, record, refined


def _parse_record(text: bytes, meta_path: Path) -> dict:
    try:
        record = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{meta_path}: corrupt JSON ({exc})") from exc
    if not is_complete(record, TOOL):
        raise FileNotFoundError(f"{meta_path}: not marked as a complete {TOOL} output; run {TOOL} again")
    return record


def _read_png(seq_dir: Path, name: str, opener, size: tuple[int, int]) -> np.ndarray:
    """One refined label map, (H, W) uint8, read through the folder's snapshot."""
    from io import BytesIO

    from PIL import Image, UnidentifiedImageError

    path = seq_dir / f"{name}.png"
    try:
        with open(f"{name}.png", "rb", opener=opener) as handle:
            data = handle.read()
        with Image.open(BytesIO(data)) as image:
            image.load()
            mode = image.mode
            maps = np.asarray(image, dtype=np.uint8)
    except FileNotFoundError as exc:
        raise ValueError(f"{path}: missing; the output is refined, so its label maps are its PNGs") from exc
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ValueError(f"{path}: not a readable label PNG ({exc})") from exc
    if mode not in ("P", "L") or maps.shape != tuple(size):
        raise ValueError(
            f"{path}: expected an indexed label map of {size[1]}x{size[0]} (original_size), got mode {mode} "
            f"{maps.shape[1] if maps.ndim > 1 else '?'}x{maps.shape[0]}"
        )
    return maps


# -- what OUT holds ---------------------------------------------------------------------------


@dataclass
class Skipped:
    """A sequence that was asked for but not scored, and why (one line)."""

    sequence: str
    reason: str


@dataclass
class OutputScan:
    """What an stseg-infer OUT folder holds, sorted by sequence name.

    ``complete``: sequence name -> (folder, sequence.json record) of complete outputs;
    ``skipped``: visible folders that are not complete outputs, and sequences that only an
    interrupted run left (hidden temp folders); ``notes``: leftovers beside complete outputs,
    worth a mention but no reason to skip; ``ignored``: other stseg tools' outputs.
    """

    folder: Path
    complete: dict[str, tuple[Path, dict]] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)


def _other_tool(folder: Path) -> str | None:
    """The tool named by a stseg marker JSON (other than stseg-infer's) in ``folder``, else None."""
    tool = marker_tool(folder)
    return tool if tool != TOOL else None


def marker_tool(folder: Path) -> str | None:
    """The stseg tool named by a marker JSON in ``folder`` (e.g. ``stseg-infer``), else None."""
    for path in sorted(folder.glob("*.json")):
        try:
            if path.stat().st_size > 1 << 24:  # a marker is small; do not parse a data file
                continue
        except OSError:
            continue
        block = read_stamp(path)
        tool = block.get("tool") if block is not None else None
        if isinstance(tool, str):
            return tool
    return None


def _writer_alive(holder: str) -> bool:
    """Whether the temp folder's writer (``<host>.<pid>``) is a live process on this host."""
    host, _, pid = holder.rpartition(".")
    if host != socket.gethostname() or not pid.isdigit():
        return False  # another machine's process cannot be checked from here
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, under another user
        return True
    return True


def scan_outputs(out_dir: str | Path) -> OutputScan:
    """Classify every entry of an stseg-infer OUT folder (see :class:`OutputScan`).

    Raises FileNotFoundError when ``out_dir`` is not a folder.
    """
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise FileNotFoundError(f"{out_dir}: output folder not found")
    scan = OutputScan(out_dir)
    _restore_moved_aside(out_dir)
    leftovers: dict[str, list[tuple[Path, str | None]]] = {}  # sequence -> (entry, writer)
    for entry in sorted(out_dir.iterdir()):
        name = entry.name
        if name.startswith("."):
            # Hidden names are stseg's own: temp folders, moved-aside outputs, locks.
            if TMP_TAG in name and entry.is_dir():
                seq, _, holder = name[1:].partition(TMP_TAG)
                leftovers.setdefault(seq, []).append((entry, holder))
            elif name.endswith(OLD_TAG) and entry.is_dir():
                leftovers.setdefault(name[1 : -len(OLD_TAG)], []).append((entry, None))
            continue
        if entry.is_symlink() and not entry.exists():
            scan.skipped.append(Skipped(name, f"{entry}: a broken symbolic link"))
            continue
        if not entry.is_dir():
            continue  # scores.csv and the like
        record = read_marker(entry, SEQUENCE_FILE, TOOL)
        if record is not None:
            if record.get("sequence") != name:
                scan.skipped.append(Skipped(name, f"{entry / SEQUENCE_FILE}: holds sequence {record.get('sequence')!r}; was the folder renamed?"))
            else:
                scan.complete[name] = (entry, record)
        elif (tool := _other_tool(entry)) is not None:
            scan.ignored.append(name)
            log.debug("%s: an output of %s, not of %s; ignored", entry, tool, TOOL)
        else:
            scan.skipped.append(Skipped(name, NOT_COMPLETE))
    visible = set(scan.complete) | {s.sequence for s in scan.skipped} | set(scan.ignored)
    for seq, entries in sorted(leftovers.items()):
        running = [e for e, holder in entries if holder is not None and _writer_alive(holder)]
        where = ", ".join(e.name for e, _ in entries)
        if seq in scan.complete:
            what = "being written now by a running stseg-infer" if running else "left by an interrupted run"
            scan.notes.append(f"{out_dir / seq}: scored its complete output; {where} beside it is {what}")
        elif seq in visible:
            if seq not in scan.ignored:
                scan.notes.append(f"{out_dir / seq}: {where} beside it is left by an interrupted run")
        else:
            reason = f"being written now by a running stseg-infer ({running[0].name})" if running else INTERRUPTED
            scan.skipped.append(Skipped(seq, reason))
            scan.notes.append(f"{out_dir / seq}: no output, only {where}")
    scan.skipped.sort(key=lambda s: s.sequence)
    return scan


def _restore_moved_aside(out_dir: Path) -> None:
    """Put back outputs that a killed stseg-infer left moved aside (``.SEQ.stseg-old`` with no
    ``SEQ``), as the next stseg-infer run would, so that they are scored rather than missed."""
    for entry in out_dir.iterdir():
        name = entry.name
        if name.startswith(".") and name.endswith(OLD_TAG) and entry.is_dir():
            seq = name[1 : -len(OLD_TAG)]
            if not (out_dir / seq).exists():
                with contextlib.suppress(OutputBusyError):  # its writer is at work: leave it
                    OutputUnit(out_dir / seq, TOOL, SEQUENCE_FILE).recover()
