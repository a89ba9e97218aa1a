"""stseg-eval's files in OUT: ``scores.csv``, ``summary.csv``, with ``objects=True``
``objects.csv``, and the marker ``eval.json``,
written under the rule of :mod:`stseg_deploy.io.outdir`: a lock, never overwriting a user's
file, and earlier complete scores kept until a new complete set replaces them."""

from __future__ import annotations

import contextlib
import glob
import math
import numbers
import os
from pathlib import Path

from ..io.outdir import OutputLock, StsegOutputError, read_marker, read_record, stamp_of, write_marker
from ..output.layout import (
    EVAL_FILES,
    EVAL_LOCK,
    EVAL_MARKER,
    EVAL_TOOL,
    OBJECTS_FILE,
    SCORES_FILE,
    SEQUENCE_FILE,
    SUMMARY_FILE,
    TOOL,
)
from .davis17 import export_davis17
from .evaluation import SCORED, Evaluation, evaluate
from .options import EvalOptions

CSV_FILES = (SCORES_FILE, SUMMARY_FILE, OBJECTS_FILE)


def _check_eval_files_ours(out_dir: Path, objects: bool) -> tuple[str, ...]:
    """Refuse (StsegOutputError) eval file names in OUT that stseg-eval did not write, and
    return the CSV names this run may remove and write (``objects``: it writes objects.csv).

    Ours: an ``eval.json`` stamped by stseg-eval (complete or not); a scores.csv or
    summary.csv beside no such marker is a user's file. objects.csv came later than such
    markers, so it is ours only when the marker lists it or its run was asked for it
    (``settings.objects``, written before any CSV); another objects.csv is a user's file,
    refused when this run writes one, else left alone.
    """
    marker = out_dir / EVAL_MARKER
    record = read_record(marker)
    block = stamp_of(record)
    objects_path = out_dir / OBJECTS_FILE
    if block is not None and block.get("tool") == EVAL_TOOL:
        objects_ours = OBJECTS_FILE in (block.get("files") or []) or _settings_objects(record)
        if objects and not objects_ours and (objects_path.exists() or objects_path.is_symlink()):
            raise _not_ours(objects_path, f"not listed in its {EVAL_MARKER}")
        return CSV_FILES if objects or objects_ours else (SCORES_FILE, SUMMARY_FILE)
    if marker.exists() or marker.is_symlink():
        raise StsegOutputError(f"{marker}: not written by {EVAL_TOOL}; it will not overwrite it. Move it away, then run {EVAL_TOOL} again")
    for name in CSV_FILES if objects else (SCORES_FILE, SUMMARY_FILE):
        path = out_dir / name
        if path.exists() or path.is_symlink():
            raise _not_ours(path, f"no {EVAL_TOOL} {EVAL_MARKER} beside it")
    return CSV_FILES if objects else (SCORES_FILE, SUMMARY_FILE)


def _not_ours(path: Path, why: str) -> StsegOutputError:
    return StsegOutputError(
        f"{path}: not written by {EVAL_TOOL} ({why}); it never overwrites such a file. Move it away, then run {EVAL_TOOL} again"
    )


def _settings_objects(record: object) -> bool:
    """Whether an eval.json ``record`` says its run was asked for objects.csv."""
    settings = record.get("settings") if isinstance(record, dict) else None
    return isinstance(settings, dict) and settings.get("objects") is True


def _json_float(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 6)


def _json_figures(figures: dict | None) -> dict | None:
    """A protocol's overall figures for eval.json: counts as integers, the rest rounded."""
    if figures is None:
        return None
    return {k: int(v) if isinstance(v, numbers.Integral) else _json_float(v) for k, v in figures.items()}


def _write_marker(out_dir: Path, record: dict, complete: bool, files: list[str]) -> None:
    write_marker(out_dir / EVAL_MARKER, record, EVAL_TOOL, complete, files)


def _settings_record(out: Path, dest: Path, options: EvalOptions) -> dict:
    """eval.json's ``settings``: the options of the run, paths as given; the split and the
    export mode only where they applied (with a DataSplit, with an export)."""
    return {
        "out_dir": str(out),
        "scores_dir": str(dest),
        "gt_dir": _path_or_none(options.gt_dir),
        "data_file": _path_or_none(options.data_file),
        "split": options.split if options.data_file is not None else None,
        "base_dir": _path_or_none(options.base_dir),
        "binary": options.binary,
        "cut_size": options.cut_size,
        "resize_gt": options.resize_gt,
        "allow_partial": options.allow_partial,
        "davis17": _path_or_none(options.davis17),
        "davis17_mode": options.davis17_mode if options.davis17 is not None or options.protocol == "davis2017" else None,
        "protocol": options.protocol,
        "objects": options.objects,
    }


def _path_or_none(path: str | Path | None) -> str | None:
    return None if path is None else str(path)


def _result_record(result: Evaluation) -> dict:
    summary = result.summary
    scored = summary[summary["status"] == SCORED]
    return {
        "sequences": {"scored": result.scored, "skipped": {s.sequence: s.reason for s in result.skipped}},
        "frames": {"scored": int(scored["frames"].sum()), "without_gt": int(scored["frames_without_gt"].sum())},
        "model_file": {"sha256": result.model_sha256},
        "n_labels": result.n_labels,
        "overall_j": _json_float(result.overall),
        "protocol": result.protocol,
        "davis2016": None if result.davis is None else {
            "J_mean": _json_float(float(result.davis["J_mean"].mean())), "F_mean": _json_float(result.overall_f),
        },
        "fbms": _json_figures(result.fbms_total),
        "davis2017": _json_figures(result.davis2017_total),
        "partial": result.partial,
        "notes": result.notes,
        "davis17_files": result.exported,
        "objects": None if result.objects is None else {
            "J_mean": _json_float(result.overall_objects),  # over all objects, not sequence means
            "n_objects": result.n_objects,
            "naive_shared": result.naive_shared,
        },
    }


def evaluate_and_write(out_dir: str | Path, options: EvalOptions) -> Evaluation:
    """:func:`evaluate` the outputs in ``out_dir`` as ``options`` says
    (:class:`~stseg_deploy.eval.options.EvalOptions`), then write ``scores.csv``, ``summary.csv``
    and ``eval.json`` into ``options.scores_dir`` (default: ``out_dir``); with ``options.objects`` also
    ``objects.csv`` (one row per ground-truth object: sequence, object, frames, present, J,
    segments, naive_shared; see :mod:`stseg_deploy.eval.multiobject`).

    The rule of :mod:`stseg_deploy.io.outdir`, for files: a lock on ``.eval.lock`` (a second
    concurrent eval of the same folder fails at once); a scores.csv / summary.csv /
    eval.json that stseg-eval did not write (objects.csv too) is refused, never
    overwritten. Earlier scores are kept until a new complete set replaces them: nothing is
    touched while scoring, so a failed or interrupted run leaves them as they were; a
    partial result (some sequences skipped) does not replace an earlier result that scored
    every sequence (nothing is written, and ``result.not_written`` says why); the new
    CSVs are written under temporary names, then ``eval.json`` is stamped ``complete:
    false``, the CSVs renamed into place (an earlier run's objects.csv that this run does
    not write removed) and ``eval.json`` (``complete: true``) written last. ``options.davis17``:
    also run :func:`export_davis17` into that folder, in ``options.davis17_mode``.
    ``options.allow_partial`` is only recorded: deciding what a partial result means is the
    caller's (stseg-eval's exit status).

    eval.json holds: settings (the options), sequences {scored: [...], skipped: {name: reason}}, frames
    {scored, without_gt}, model_file {sha256}, n_labels, overall_j (null when none was
    scored), protocol, davis2016 / fbms / davis2017 (null, or the protocol's overall figures,
    as on summary.csv's overall row), partial, notes, davis17_files, objects (null, or
    {J_mean: mean over all objects, n_objects, naive_shared}), error (null), and
    ``"stseg": {"tool": "stseg-eval", "complete": ..., "files": [...], ...}``.
    """
    out = Path(out_dir)
    if not out.is_dir():
        raise FileNotFoundError(f"{out}: output folder not found")
    dest = out if options.scores_dir is None else Path(options.scores_dir)
    settings = _settings_record(out, dest, options)
    if read_marker(out, SEQUENCE_FILE, TOOL) is not None:
        raise StsegOutputError(f"{out}: is one sequence's {TOOL} output; give the folder that holds the sequence folders")
    if dest != out:
        if out.resolve() in dest.resolve().parents:
            raise StsegOutputError(
                f"{dest}: inside {out}, where every folder is read as a sequence's output; write the scores outside it"
            )
        if read_marker(dest, SEQUENCE_FILE, TOOL) is not None:
            raise StsegOutputError(f"{dest}: is one sequence's {TOOL} output; write the scores to a folder of their own")
        dest.mkdir(parents=True, exist_ok=True)
    with OutputLock(dest / EVAL_LOCK, f"{dest} ({EVAL_TOOL})"):
        ours = _check_eval_files_ours(dest, options.objects)
        for name in EVAL_FILES:  # temp files of an eval that was killed mid-write
            for stale in dest.glob(f".{glob.escape(name)}.*.tmp"):
                stale.unlink(missing_ok=True)
        result = evaluate(out, options)
        earlier = read_marker(dest, EVAL_MARKER, EVAL_TOOL)
        if result.partial and earlier is not None and earlier.get("partial") is False and earlier.get("error") is None:
            result.not_written = (
                f"{dest} holds an earlier eval that scored every sequence; this one skipped {len(result.skipped)}, so its "
                "scores were not written over those (write them elsewhere with --out DIR)"
            )
            return result
        if options.davis17 is not None:
            result.exported = export_davis17(out, options)
        tables = {SCORES_FILE: result.scores, SUMMARY_FILE: result.summary_table()}
        if result.objects is not None:
            tables[OBJECTS_FILE] = result.objects
        staged: dict[str, Path] = {}
        try:
            for name, table in tables.items():
                # Already a temporary name (the stale-file sweep above matches it), so a plain write.
                staged[name] = dest / f".{name}.new.{os.getpid()}.tmp"
                with open(staged[name], "w", encoding="utf-8") as handle:
                    table.to_csv(handle, index=False)
            # From here on a kill leaves a marker saying "incomplete" over the mixed files.
            _write_marker(dest, {"settings": settings, "error": None}, complete=False, files=[])
            for name, path in staged.items():
                os.replace(path, dest / name)
            for name in ours:
                if name not in tables:
                    (dest / name).unlink(missing_ok=True)
            _write_marker(dest, {"settings": settings, **_result_record(result), "error": None}, complete=True, files=list(tables))
        finally:
            for path in staged.values():
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
    return result
