"""Writing a segmented sequence: labels.npy, per-frame palette PNGs, optional proba/features.

Layout of ``OUT/SEQ/``:
- ``labels.npy``: (F, h, w) uint8 at model resolution, linked labels;
- ``<frame>.png``: indexed label maps (DAVIS palette) at the frames' size (``original_size``):
  the labels upsampled (nearest), or with refinement (``settings.refine == "guided"``) the
  refined label maps, which then only these PNGs hold (see :func:`read_label_maps`);
- ``proba/<frame>.npy``: (L, h, w) float32 renamed probabilities (``save_proba``);
- ``features/<frame>.npy``: (C, h, w) float16 last-layer features (``save_features``);
- ``sequence.json``: frame names, sizes, model metadata, the settings, the model file's
  SHA-256, timings, and the completeness marker (written last: see :mod:`stseg_deploy.io.outdir`);
- with ``overlay``: ``flow/<frame>.png`` (Middlebury colour wheel), ``overlay/<frame>.png``
  and ``overlay.mp4``: the video's frames (or, for flow input, the flow colours) with the
  segments blended in, one fixed colour per label.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .errors import StsegInputError
from .io.flowfiles import FLOW_MARKER
from .linker import LinkedFrame
from .io.outdir import OutputUnit, check_inputs_outside, check_name, file_sha256, is_complete, read_marker
from .pipeline import Segmenter, SequenceStats
from .preprocess import resize_labels
from .sinks import LABELS_FILE, FolderSink, OverlaySink
from .sources import Sequence
from .io.videoio import DEFAULT_FPS

TOOL = "stseg-infer"
SEQUENCE_FILE = "sequence.json"
# stseg-viz writes its contact sheet into a finished sequence folder by default.
LATER_FILES = ("contact_sheet.png",)


def sequence_output_unit(out_dir: str | Path, name: str) -> OutputUnit:
    """The output unit ``out_dir/name`` of stseg-infer (see :mod:`stseg_deploy.io.outdir`)."""
    from .eval.scorefiles import EVAL_FILES  # here: scorefiles builds on this module

    if check_name(name) in EVAL_FILES:
        raise StsegInputError(f"sequence name {name!r} is the name of a file stseg-eval writes beside the sequence folders")
    return OutputUnit(Path(out_dir) / name, TOOL, SEQUENCE_FILE, also_ours=LATER_FILES)


def sequence_inputs(sequence, frames: bool = True) -> list[Path]:
    """Every file or folder a sequence reads: its flow files and masks, or its video, and
    with ``frames`` the image files it has for refinement (``Sequence.images``)."""
    if sequence.video is not None:
        return [Path(sequence.video.path)]
    images = getattr(sequence, "images", ()) if frames else ()
    return [Path(p) for p in (*sequence.flows, *sequence.masks, *images) if p is not None]


def input_stamp(sequence, frames: bool = False) -> str:
    """A digest of the size and modification time of every file a sequence reads (a frame
    folder's files too; with ``frames``, the image files that guide its refinement): what
    tells ``--skip-done`` that inputs of the same names were made again. The frames count
    only for a refined output, so the stamps of unrefined outputs are as before."""
    import hashlib

    digest = hashlib.sha256()
    for path in sequence_inputs(sequence, frames):
        files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
        for file in files:
            try:
                stat = file.stat()
            except OSError:
                digest.update(f"{file}|missing\n".encode())
                continue
            digest.update(f"{file}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def check_outputs_spare_inputs(sequences: Iterable, out_dir: str | Path) -> None:
    """Refuse, before anything is written, an ``out_dir`` whose sequence folders would hold
    any sequence's input (flows, masks, frames or video)."""
    sequences = list(sequences)
    check_inputs_outside(
        [Path(out_dir) / check_name(s.name) for s in sequences],
        [p for s in sequences for p in sequence_inputs(s)],
    )


def segment_to_folder(
    segmenter: Segmenter,
    sequence: Sequence,
    out_dir: str | Path,
    save_proba: bool = False,
    save_features: bool = False,
    on_frame: Callable[[LinkedFrame], None] | None = None,
    overlay: bool = False,
    model_sha256: str | None = None,
) -> SequenceStats:
    """Segment ``sequence`` and write its outputs to ``out_dir / sequence.name``.

    The folder is an output unit (:mod:`stseg_deploy.io.outdir`): it is written beside any
    earlier output under a temporary name and swapped in only when complete, so a failed
    or interrupted run leaves the earlier output as it was; a folder holding files stseg
    did not write, or one of this sequence's inputs, is refused; a second writer of the
    same sequence fails at once. ``sequence.json`` is written last and marks the output
    complete, with the settings and the model file's SHA-256 (``model_sha256``, computed
    from the model's file when not given).

    The files come from :class:`~stseg_deploy.sinks.FolderSink` (and
    :class:`~stseg_deploy.sinks.OverlaySink` with ``overlay``) fed by
    :meth:`Segmenter.run`. Memory stays flat: labels stream into ``labels.npy`` frame by
    frame, other files are written by a background thread as frames are linked
    (``on_frame`` is called from that thread, once a frame's files are written).
    """
    unit = sequence_output_unit(out_dir, sequence.name)
    check_inputs_outside([unit.target], sequence_inputs(sequence))
    if model_sha256 is None:
        model_sha256 = model_file_sha256(segmenter)
    with unit:
        markers = _flow_markers(sequence)
        names = sequence.frame_names
        sinks = [FolderSink(unit.tmp, names, segmenter.image_size, save_proba, save_features, on_frame)]
        if overlay:
            fps = sequence.video.fps if sequence.video is not None else DEFAULT_FPS
            sinks.append(OverlaySink(unit.tmp, names, fps))
        stats = segmenter.run(sequence, sinks, keep_proba=save_proba, keep_features=save_features)
        if _flow_markers(sequence) != markers:
            raise StsegInputError(
                f"{sequence.name}: its flow folder was replaced by another stseg-flow run while being read; "
                "nothing was written, run again"
            )
        unit.commit(_sequence_record(segmenter, sequence, stats, model_sha256, save_proba, save_features, overlay))
    return stats


def _flow_markers(sequence) -> dict[Path, bytes | None]:
    """The stseg-flow markers of a sequence's flow folders, as bytes (None where absent).

    stseg-flow swaps a folder in whole with a new marker, so an unchanged marker before
    and after reading means every flow came from one run.
    """
    if sequence.video is not None:
        return {}
    found = {}
    for folder in {Path(p).parent for p in sequence.flows}:
        try:
            found[folder] = (folder / FLOW_MARKER).read_bytes()
        except OSError:
            found[folder] = None
    return found


def model_file_sha256(segmenter: Segmenter) -> str | None:
    """SHA-256 of the segmenter's model file (None for a model that has no file)."""
    path = getattr(segmenter.model, "path", None)
    return file_sha256(path) if path is not None else None


def output_settings(segmenter: Segmenter, sequence, save_proba: bool, save_features: bool, overlay: bool) -> dict:
    """The settings a sequence's output is made with, as sequence.json records them."""
    settings = {
        "batch_size": segmenter.batch_size,
        "cut_size": segmenter.cut_size,
        "link": segmenter.link,
        "image_size": list(segmenter.image_size),
        "resize": segmenter.model.info.resize,  # the model's training resize, which inference repeats
        "save_proba": save_proba,
        "save_features": save_features,
        "overlay": overlay,
        **quality_settings(segmenter, sequence),
    }
    if sequence.video is not None:  # a video: its flow was computed here
        size = None if sequence.size is None else list(sequence.size)
        settings["flow"] = {"method": sequence.method, "size": size, "step": sequence.step}
    return settings


# What outputs written before the test-time flip and the refinement existed were made with.
STAGES_BEFORE = {"tta": "none", "refine": "none", "split": "none"}


def quality_settings(segmenter: Segmenter, sequence) -> dict:
    """The stages that change a sequence's masks beyond the model and linking, as
    sequence.json's settings record them: ``tta``, ``refine`` (as applied to this
    sequence: "guided" or "none") and, when guided, ``guided`` (its settings); ``split``
    and, when "motion", ``motion_split`` (its settings). Outputs written before these
    stages existed have none of these keys: "none" for each (:func:`stage_settings`). Raises StsegInputError for ``refine="guided"`` on a sequence
    without frames."""
    refine = segmenter.refinement(sequence)
    out = {"tta": segmenter.tta, "refine": refine}
    if refine == "guided":
        out["guided"] = segmenter.guided.as_dict()
    out["split"] = segmenter.split
    if segmenter.split == "motion":
        out["motion_split"] = segmenter.split_settings.as_dict()
    return out


def stage_settings(record: dict) -> dict:
    """``tta``, ``refine``, ``guided``, ``split`` and ``motion_split`` of a sequence record
    (see :func:`quality_settings`), with the values outputs written before these stages
    existed mean."""
    settings = {**STAGES_BEFORE, **(record.get("settings") or {})}
    return {
        "tta": settings["tta"], "refine": settings["refine"], "guided": settings.get("guided"),
        "split": settings["split"], "motion_split": settings.get("motion_split"),
    }


def is_done(out_dir: str | Path, sequence, settings: dict, model_sha256: str | None) -> bool:
    """Whether ``out_dir/<sequence>`` is a complete output of this sequence's inputs as they
    are now (names, sizes and times: :func:`input_stamp`), made with ``settings`` (see
    :func:`output_settings`) by the model file ``model_sha256``: what ``--skip-done`` skips.
    Timings, engine and device may differ."""
    record = read_marker(Path(out_dir) / sequence.name, SEQUENCE_FILE, TOOL)
    if record is None:
        return False
    done_with = {**STAGES_BEFORE, **(record.get("settings") or {})}
    return (
        model_sha256 is not None
        and (record.get("model_file") or {}).get("sha256") == model_sha256
        and done_with == settings
        and record.get("frames") == sequence.frame_names
        and record.get("flows") == [str(p) for p in sequence.flows]
        and record.get("input_stamp") == input_stamp(sequence, frames=settings.get("refine") == "guided")
    )


def _sequence_record(
    segmenter: Segmenter,
    sequence: Sequence,
    stats: SequenceStats,
    model_sha256: str | None,
    save_proba: bool,
    save_features: bool,
    overlay: bool,
) -> dict:
    info = segmenter.model.info
    settings = output_settings(segmenter, sequence, save_proba, save_features, overlay)
    path = getattr(segmenter.model, "path", None)
    refine = {"asked": segmenter.refine, "applied": settings["refine"]}
    if segmenter.refine == "auto" and settings["refine"] == "none":
        refine["note"] = "no frames known for this sequence (flow files only): labels upsampled, nearest"
    return {
        "sequence": sequence.name,
        "frames": sequence.frame_names,
        "flows": [str(p) for p in sequence.flows],
        "masks": [None if m is None else str(m) for m in sequence.masks],
        "input_stamp": input_stamp(sequence, frames=settings["refine"] == "guided"),
        "original_size": list(stats.original_size),
        "model_size": list(segmenter.image_size),
        "n_labels": segmenter.n_labels,
        "cut_size": segmenter.cut_size,
        "link": segmenter.link,
        "settings": settings,
        "refine": refine,
        "model_file": {"path": None if path is None else str(path), "sha256": model_sha256},
        "model": {**asdict(info), "image_size": list(info.image_size)},
        "engine": segmenter.model.engine,
        "device": segmenter.model.device,
        "seconds": {k: round(v, 4) for k, v in asdict(stats).items() if isinstance(v, float)},
    }


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
    if stage_settings(record)["refine"] == "none":
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
        if refined_maps and stage_settings(record)["refine"] != "none":
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
