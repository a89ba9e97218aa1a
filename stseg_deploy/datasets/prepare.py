"""Turning a dataset of frames into flows and a DataSplit that train, infer and eval read.

Dataset-specific readers (:mod:`stseg_deploy.datasets.davis`) produce :class:`ListedSequence` s; this
module computes their flows (one stseg-flow output unit per sequence, kept when complete and
made with the same settings) and writes the DataSplit CSVs. Frame t's flow goes from frame t
to frame t + 1 and is named after frame t; the last frame has no flow and no CSV row.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path

import pandas as pd

from ..errors import StsegInputError
from ..flow.recipe import FlowRecipe
from ..io.datasplit import COLUMNS, write_datasplit
from ..io.flowfiles import FLOW_MARKER, FLOW_TOOL, list_flow_files
from ..io.outdir import OutputLock, StsegOutputError, read_marker, read_record, read_stamp, write_marker
from ..io.videoio import ImageListSource, frame_name, list_image_files
from .listing import ListedSequence, image_size

log = logging.getLogger(__name__)

PREPARE_TOOL = "stseg-prepare"
PREPARE_MARKER = "stseg-prepare.json"
# The marker's settings that every CSV it lists shares (what --split runs must agree on).
SHARED_SETTINGS = ("dataset", "root", "resolution", "flows", "flow_method", "flow_size", "flow_scale")


def flows_up_to_date(
    folder: Path, source: Path, method: str, size: tuple[int, int] | None, frames: list[Path]
) -> bool:
    """Whether ``folder`` is a complete stseg-flow output of ``frames`` (in ``source``, in
    this order) made the same way. A record that does not name its frames (written before
    stseg-flow recorded them) counts only when ``source`` holds exactly ``frames``."""
    record = read_marker(folder, FLOW_MARKER, FLOW_TOOL)
    names = [f.name for f in frames]
    if record is None or "frames" in record and record["frames"] != names:
        return False
    if "frames" not in record:
        on_disk = [p.name for p in list_image_files(source)] if source.is_dir() else []
        if on_disk != names:
            return False
    return (
        record.get("source") == str(source)
        and record.get("method") == method
        and record.get("size") == (None if size is None else list(size))
        and record.get("step") == 1
        and len(record.get("flows", [])) == len(frames) - 1
    )


def compute_sequence_flows(sequence: ListedSequence, folder: Path, recipe: FlowRecipe) -> str:
    """Make ``folder`` hold the sequence's flows; returns "kept" or "computed".

    Runs in a worker process: one OpenCV thread, as the workers share the cores.
    """
    import cv2

    from ..flow.opticalflow import flow_from_video

    cv2.setNumThreads(1)
    source = sequence.folder.resolve()
    files = [frame.image.resolve() for frame in sequence.frames]
    size = recipe.size_for(image_size(sequence.frames[0].image))
    if flows_up_to_date(folder, source, recipe.method, size, files):
        return "kept"
    # The listed files, in listed order: a dataset's folder may hold other images, or frames
    # whose names do not sort in time order.
    flow_from_video(ImageListSource(files, source), folder, recipe.method, size)
    return "computed"


def compute_flows(
    sequences: list[ListedSequence],
    flow_root: Path,
    recipe: FlowRecipe,
    workers: int = 1,
    on_done: Callable[[str, str | None], None] | None = None,
    ray=None,
) -> dict[str, str]:
    """Flows of every sequence into ``flow_root/<seq>/``, ``workers`` sequences at a time in
    processes of this machine, or with ``ray`` (connected: see
    :func:`stseg_deploy.cluster.raykit.ray_session`) one per CPU of the cluster.

    Returns {sequence: "kept" | "computed" | error line}; a failed sequence does not stop the
    others. ``on_done(name, error)`` is called as each finishes (for a progress bar).
    """
    from ..errors import error_line

    if ray is not None:
        from ..cluster.raykit import map_on_ray

        calls = {s.name: (s, flow_root / s.name, recipe) for s in sequences}
        return map_on_ray(ray, compute_sequence_flows, calls, flow_root, on_done)

    results: dict[str, str] = {}

    def finish(name: str, future: Future) -> None:
        try:
            results[name] = future.result()
            error = None
        except (OSError, ValueError, RuntimeError) as exc:
            results[name] = error = error_line(exc)
        if on_done is not None:
            on_done(name, error)

    # spawn, not fork: forking a process whose other threads hold locks can hang the child.
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=multiprocessing.get_context("spawn")) as pool:
        pending = {pool.submit(compute_sequence_flows, s, flow_root / s.name, recipe): s.name for s in sequences}
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                finish(pending.pop(future), future)
    return results


def datasplit_rows(sequences: list[ListedSequence], flows: dict[str, list[Path]], base_dir: Path) -> pd.DataFrame:
    """DataSplit rows: one per frame that has a flow (all but each sequence's last).

    Flow is relative to ``base_dir`` when it lies under it, else absolute; Image and GtMask
    are absolute (they stay in the dataset's folder).
    """
    rows = []
    base = base_dir.resolve()
    for sequence in sequences:
        paths = flows[sequence.name]
        for index, (frame, flow) in enumerate(zip(sequence.frames, paths)):
            flow = flow.resolve()
            rows.append({
                "Flow": flow.relative_to(base).as_posix() if flow.is_relative_to(base) else str(flow),
                "GtMask": "" if frame.mask is None else str(frame.mask.resolve()),
                "Image": str(frame.image.resolve()),
                "Sequence": sequence.name,
                "Sequence_Index": index,
            })
    return pd.DataFrame(rows, columns=list(COLUMNS))


def user_flows(sequence: ListedSequence, folder: Path) -> list[Path]:
    """Flows the user brought for a sequence (``--flows``): one per frame but the last, each
    named after its frame's file (``bear01_0001.flo``) or after its position in the sequence
    (``00000.flo``, as stseg-prepare and stseg-flow name them); the frame's name wins where
    both exist. Raises StsegInputError naming what is missing."""
    if not folder.is_dir():
        raise StsegInputError(f"{folder}: no flow folder for sequence {sequence.name!r}")
    files = {p.stem: p for p in list_flow_files(folder)}
    found = [files.get(frame.name) or files.get(frame_name(t)) for t, frame in enumerate(sequence.frames[:-1])]
    missing = [f"{frame.name}" for frame, flow in zip(sequence.frames, found) if flow is None]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise StsegInputError(
            f"{folder}: no flow for frame(s) {', '.join(missing[:3])}{more} of {sequence.name!r} (a flow is named after "
            f"its frame's file, e.g. {sequence.frames[0].name}.flo, or its position, {frame_name(0)}.flo)"
        )
    return found


def check_settings_agree(out_dir: Path, prefix: str, splits: list[str], settings: dict) -> None:
    """Refuse to write some splits' CSVs into ``out_dir`` with other :data:`SHARED_SETTINGS`
    than the CSVs its marker lists and this run leaves (StsegOutputError naming both)."""
    marker = out_dir / PREPARE_MARKER
    block = read_stamp(marker)
    files = block.get("files") if block is not None and block.get("tool") == PREPARE_TOOL else None
    kept = sorted(set(files or []) - {f"{prefix}_{split}.csv" for split in splits})
    if not kept:
        return
    before = read_record(marker)
    before = before if isinstance(before, dict) else {}
    differ = [key for key in SHARED_SETTINGS if before.get(key) != settings.get(key)]
    if differ:
        raise StsegOutputError(
            f"{marker}: {', '.join(kept)} were prepared with other settings "
            f"({', '.join(f'{k} {before.get(k)!r}, now {settings.get(k)!r}' for k in differ)}); one marker "
            "describes every CSV beside it: prepare into another --out, or every split with the same settings"
        )


def write_datasplits(out_dir: Path, prefix: str, tables: dict[str, pd.DataFrame], settings: dict) -> list[Path]:
    """``OUT/<prefix>_<split>.csv`` for each table, atomically, under a lock, with the marker
    ``OUT/stseg-prepare.json``; a CSV of that name that stseg-prepare did not write is refused.

    The marker's settings (where the frames are, how the flows were made) describe every CSV
    it lists, and a model trained on them takes its flow recipe from there: a run that writes
    only some splits (``--split``) with other settings than the CSVs it leaves is refused."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    with OutputLock(out_dir / f".{PREPARE_MARKER}.lock", f"{out_dir} ({PREPARE_TOOL})"):
        marker = out_dir / PREPARE_MARKER
        ours: set[str] = set()
        if marker.exists():
            block = read_stamp(marker)
            files = block.get("files") if block is not None else None
            if block is None or (block.get("tool") == PREPARE_TOOL and not isinstance(files, list)):
                raise StsegOutputError(f"{marker}: not written by {PREPARE_TOOL}; move it away")
            ours = set(files) if block.get("tool") == PREPARE_TOOL else set()
        check_settings_agree(out_dir, prefix, list(tables), settings)
        for split in tables:
            path = out_dir / f"{prefix}_{split}.csv"
            if path.exists() and path.name not in ours:
                raise StsegOutputError(f"{path}: exists and was not written by {PREPARE_TOOL}; stseg never overwrites it")
        for split, table in tables.items():
            path = out_dir / f"{prefix}_{split}.csv"
            written.append(write_datasplit(path, table))
        files = sorted(ours | {p.name for p in written})
        write_marker(marker, settings, PREPARE_TOOL, True, files)
    return written


def prepared_flow(data_file: str) -> dict | None:
    """How the DataSplit's flows were made, when stseg-prepare made them: ``{"method", "size",
    "scale"}`` from ``stseg-prepare.json`` beside the CSVs, else None (flows of unknown origin).

    Kept in checkpoints and exported models, so inference can compute the same flow.
    """
    return read_prepared_flow(Path(data_file).parent / PREPARE_MARKER)


def read_prepared_flow(marker: Path) -> dict | None:
    """The flow recipe in a ``stseg-prepare.json`` (see :func:`prepared_flow`), or None."""
    try:
        record = json.loads(marker.read_text())
    except (OSError, ValueError):
        return None
    if not record.get("flow_method"):  # --flows: the user's own flows, engine unknown
        return None
    return {"method": record["flow_method"], "size": record.get("flow_size"), "scale": record.get("flow_scale")}


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)
