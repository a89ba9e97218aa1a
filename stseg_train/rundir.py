"""The run folder's logs, metrics.csv and results.csv, kept in step with its checkpoints.

The CSVs are written at the end of an epoch, just before last.pt, so a run can die with
rows last.pt never saw, and a new run in the same folder could append to an old one's rows:
this module refuses or clears an earlier run, and trims the logs back to the checkpoint on
resume, so that every run's CSVs read as if it had never been stopped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stseg_deploy.io.atomic import atomic_write

# Logged under the trainer's name: these lines are part of what the training loop says, and
# the log format shows the logger's name.
log = logging.getLogger("stseg_train.trainer")

METRICS_COLUMNS = ["epoch", "step", "train_loss", "val_loss", "val_jaccard", "seconds"]
# What makes a folder hold a run, checked and deleted in this order.
RUN_FILES = ("checkpoints/last.pt", "checkpoints/best.pt", "metrics.csv", "results.csv")


def refuse_or_clear_earlier_run(save_dir: Path, overwrite: bool) -> None:
    """Starting afresh: delete an earlier run's files if ``overwrite``, else refuse.

    Files without last.pt count too: a run that died at the end of its first epoch,
    before saving last.pt, leaves CSV rows (and perhaps best.pt) that a new run would
    otherwise append to or overwrite unasked.
    """
    found = [name for name in RUN_FILES if (save_dir / name).exists()]
    if not found:
        return
    if not overwrite:
        if "checkpoints/last.pt" in found:
            raise FileExistsError(
                f"{save_dir} already holds a training run ({save_dir / 'checkpoints' / 'last.pt'}); "
                "resume it (--resume) or start again and delete it (--overwrite)"
            )
        raise FileExistsError(
            f"{save_dir} holds files of an earlier run that saved no last.pt to resume "
            f"({', '.join(found)}); start again and delete them (--overwrite) or choose another save dir"
        )
    for name in found:
        (save_dir / name).unlink(missing_ok=True)


def metrics_row(
    epoch: int, step: int, losses: list[float], val_loss: float, val_jaccard: float, seconds: float
) -> dict[str, Any]:
    """metrics.csv's row for an epoch (or the part of it run so far) and its validation."""
    return {
        "epoch": epoch,
        "step": step,
        "train_loss": float(np.mean(losses)) if losses else np.nan,
        "val_loss": val_loss,
        "val_jaccard": val_jaccard,
        "seconds": round(seconds, 3),
    }


def write_metrics(save_dir: Path, metrics: list[dict[str, Any]]) -> None:
    """metrics.csv rewritten whole, atomically: one row per (possibly partial) epoch."""
    with atomic_write(save_dir / "metrics.csv", "w") as handle:
        pd.DataFrame(metrics, columns=METRICS_COLUMNS).to_csv(handle, index=False)


def append_results(save_dir: Path, rows: pd.DataFrame) -> None:
    """``rows`` appended to results.csv, with the header when the file is new."""
    path = save_dir / "results.csv"
    text = rows.to_csv(index=False, header=not path.exists())
    # One write of the whole epoch's block: a crash never leaves half an epoch.
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(text)


def refuse_other_world_size(path: Path, trained_by: int, world_size: int) -> None:
    """A run resumes only with the number of processes that trained it: the epoch's batches
    are cut per process and the batch-mode noise is drawn per rank, so another number would
    not continue the same run."""
    if trained_by != world_size:
        raise ValueError(
            f"{path}: trained by {trained_by} process(es), resumed by {world_size}; resume it with "
            f"{trained_by} ({'plain stseg-train' if trained_by == 1 else f'torchrun --nproc-per-node {trained_by}'}, "
            f"or that many in all over the nodes), or start a new run from its weights with --init {path}"
        )


def sync_logs_with_checkpoint(save_dir: Path, metrics: list[dict[str, Any]]) -> None:
    """Make metrics.csv and results.csv hold exactly the epochs ``metrics`` (the checkpoint's)
    knows.

    The trainer writes both CSVs before last.pt, so a run that dies in between leaves rows
    of an epoch the checkpoint never saw; --resume redoes that epoch, which would write
    its rows a second time. Results rows are kept by their (epoch, step) pair, so the
    validated partial epochs of earlier stops stay. Both files are rewritten atomically.
    """
    metrics_path = save_dir / "metrics.csv"
    if metrics or metrics_path.exists():
        write_metrics(save_dir, metrics)
    results_path = save_dir / "results.csv"
    if not results_path.exists():
        return
    try:
        results = pd.read_csv(results_path)
    except pd.errors.EmptyDataError:
        # Not even a header: append_results would then append rows without one.
        results_path.unlink()
        return
    known = {(m["epoch"], m["step"]) for m in metrics}
    # Pairs compare by value, so 1.0 == 1; a NaN from a cut-off line never matches.
    keep = np.array([pair in known for pair in zip(results["epoch"], results["step"])], dtype=bool)
    if "split" in results:
        # Training rows (--train-results) carry their own batch's step: they were
        # written with the validation of their epoch, so they stand or fall with it.
        last_known = max((m["step"] for m in metrics), default=-1)
        train = (results["split"] == "train").to_numpy()
        keep[train] = (results["step"][train] <= last_known).to_numpy()
    if keep.all():
        return
    dropped = sorted({int(e) for e in results.loc[~keep, "epoch"].dropna()})
    log.warning(
        "%s: dropping %d row(s) of epoch(s) %s that %s does not hold (the run stopped before "
        "saving it); they are redone now", results_path, int((~keep).sum()), dropped,
        save_dir / "checkpoints" / "last.pt",
    )
    with atomic_write(results_path, "w") as handle:
        results[keep].to_csv(handle, index=False)
