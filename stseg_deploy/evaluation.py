"""Scoring segmentations against binary ground truth, as the paper evaluates.

Per sequence: labels are brought to the ground truth's resolution (nearest neighbour),
binarised (``optimax``: per-chunk greedy selection with :func:`stseg_kernels.select_masks`;
``fair``; ``exceptbiggest``), then Jaccard per frame with ground truth. The overall J is the
mean of the per-sequence means (the DAVIS convention).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from stseg_kernels import jaccard, select_masks

from .binarise import BINARISATIONS, binarise_exceptbiggest, binarise_fair
from .datasplit import read_datasplit, resolve
from .errors import StsegInputError
from .masks import read_mask_png, write_label_png
from .outputs import SEQUENCE_FILE, read_sequence_output
from .preprocess import resize_labels

log = logging.getLogger(__name__)

# cut_size value meaning "the cut size the sequence was linked with" (from sequence.json),
# so selection chunks match linking chunks unless the user asks otherwise.
SAME_CUT = "same"


def resolve_cut_size(cut_size: int | str | None, record: dict) -> int | None:
    """``cut_size``, or the sequence's own (stored by stseg-infer) when it is ``"same"``."""
    return record.get("cut_size") if cut_size == SAME_CUT else cut_size


@dataclass
class SequenceScore:
    sequence: str
    frames: pd.DataFrame  # columns sequence, frame, jaccard


def output_sequences(out_dir: str | Path) -> list[Path]:
    """Sequence folders (those holding sequence.json) of an stseg-infer output, sorted."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        raise FileNotFoundError(f"{out_dir}: output folder not found")
    found = sorted(p.parent for p in out_dir.glob(f"*/{SEQUENCE_FILE}"))
    if not found:
        raise StsegInputError(f"{out_dir}: no sequence folders with {SEQUENCE_FILE}; run stseg-infer first")
    return found


def gt_from_folder(gt_dir: str | Path, sequence: str, frames: list[str]) -> list[Path | None]:
    """Mask paths GT_DIR/SEQ/<frame>.png (or None where absent)."""
    folder = Path(gt_dir) / sequence
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no ground-truth folder for sequence {sequence!r}")
    return [(folder / f"{name}.png") if (folder / f"{name}.png").is_file() else None for name in frames]


def gt_from_datasplit(table: pd.DataFrame, base_dir: str | Path | None, sequence: str, frames: list[str]) -> list[Path | None]:
    """Mask paths of a DataSplit's rows, matched to output frames by the Flow file's stem."""
    rows = table[table["Sequence"] == sequence]
    if rows.empty:
        known = sorted(table["Sequence"].unique())
        raise StsegInputError(
            f"sequence {sequence!r} is not in this DataSplit split (it has {', '.join(known[:4])}"
            f"{', ...' if len(known) > 4 else ''}); was it inferred from another --split?"
        )
    by_stem = {Path(f).stem: m for f, m in zip(rows["Flow"], rows["GtMask"])}
    return [resolve(base_dir, by_stem[n]) if isinstance(by_stem.get(n), str) else None for n in frames]


class GroundTruth:
    """Where the masks are: ``gt_dir/<sequence>/<frame>.png``, or a DataSplit's GtMask column.

    Exactly one source; the DataSplit is read once, the folder checked once.
    """

    def __init__(
        self,
        gt_dir: str | Path | None = None,
        data_file: str | Path | None = None,
        split: str = "val",
        base_dir: str | Path | None = None,
    ) -> None:
        if (gt_dir is None) == (data_file is None):
            raise ValueError("give exactly one ground-truth source: gt_dir or data_file")
        if gt_dir is not None and not Path(gt_dir).is_dir():
            raise FileNotFoundError(f"{gt_dir}: ground-truth folder not found")
        self.gt_dir = gt_dir
        self.base_dir = base_dir
        self.table = read_datasplit(data_file, split) if data_file is not None else None

    def masks(self, sequence: str, frames: list[str]) -> list[Path | None]:
        """Mask paths for a sequence's frames (None where a frame has none)."""
        if self.table is not None:
            return gt_from_datasplit(self.table, self.base_dir, sequence, frames)
        return gt_from_folder(self.gt_dir, sequence, frames)


def _binarise(labels: np.ndarray, gt: np.ndarray, has_gt: np.ndarray, n_labels: int, method: str, cut_size: int | None) -> np.ndarray:
    if method == "optimax":
        return select_masks(labels, gt, has_gt, n_labels, cut_size)
    out = np.zeros(labels.shape, dtype=bool)
    for f in np.flatnonzero(has_gt):
        out[f] = binarise_fair(labels[f], gt[f], n_labels) if method == "fair" else binarise_exceptbiggest(labels[f], n_labels)
    return out


def score_sequence(seq_dir: Path, masks: list[Path | None], binary: str = "optimax", cut_size: int | str | None = SAME_CUT) -> SequenceScore:
    """Per-frame Jaccard of one output folder against the given mask files.

    ``cut_size``: frames per selection chunk; ``"same"`` (default) uses the cut size the
    sequence was linked with; None, the whole sequence."""
    if binary not in BINARISATIONS:
        raise ValueError(f"unknown binarisation {binary!r}; expected one of {BINARISATIONS}")
    labels, record = read_sequence_output(seq_dir)
    cut_size = resolve_cut_size(cut_size, record)
    frames = record["frames"]
    has_gt = np.array([m is not None for m in masks], dtype=bool)
    if not has_gt.any():
        raise StsegInputError(f"{seq_dir}: no ground-truth mask matches any of its {len(frames)} frames")
    gt_size = None
    gts: dict[int, np.ndarray] = {}
    for f in np.flatnonzero(has_gt):
        mask = read_mask_png(masks[f])
        if gt_size is None:
            gt_size = mask.shape
        elif mask.shape != gt_size:
            raise StsegInputError(f"{masks[f]}: mask size {mask.shape} differs from the sequence's {gt_size}")
        gts[f] = mask
    full = np.stack([resize_labels(l, gt_size) for l in labels])
    gt = np.zeros(full.shape, dtype=bool)
    for f, mask in gts.items():
        gt[f] = mask
    n_labels = int(record["n_labels"])
    foreground = _binarise(full, gt, has_gt, n_labels, binary, cut_size)
    scores = jaccard(gt[has_gt], foreground[has_gt])
    table = pd.DataFrame(
        {"sequence": record["sequence"], "frame": [frames[f] for f in np.flatnonzero(has_gt)], "jaccard": scores}
    )
    return SequenceScore(record["sequence"], table)


def evaluate(
    out_dir: str | Path,
    *,
    gt_dir: str | Path | None = None,
    data_file: str | Path | None = None,
    split: str = "val",
    base_dir: str | Path | None = None,
    binary: str = "optimax",
    cut_size: int | str | None = SAME_CUT,
) -> tuple[pd.DataFrame, pd.DataFrame, float]:
    """Score every sequence of an stseg-infer output.

    Returns (scores: sequence, frame, jaccard; summary: sequence, frames, jaccard_mean;
    overall J = mean of the sequence means).
    """
    truth = GroundTruth(gt_dir, data_file, split, base_dir)
    parts, skipped = [], []
    for seq_dir in output_sequences(out_dir):
        _, record = read_sequence_output(seq_dir)
        frames = record["frames"]
        try:
            parts.append(score_sequence(seq_dir, truth.masks(record["sequence"], frames), binary, cut_size).frames)
        except (FileNotFoundError, StsegInputError) as exc:
            # One sequence without ground truth should not hide the others' scores.
            skipped.append(f"{record['sequence']} ({exc})")
    if skipped:
        log.warning("scored without %d sequence(s): %s", len(skipped), "; ".join(skipped))
    if not parts:
        raise StsegInputError(f"{out_dir}: no sequence could be scored: {'; '.join(skipped)}")
    scores = pd.concat(parts, ignore_index=True)
    summary = (
        scores.groupby("sequence", sort=True)["jaccard"]
        .agg(frames="count", jaccard_mean="mean")
        .reset_index()
    )
    overall = float(summary["jaccard_mean"].mean())
    return scores, summary, overall


def export_davis17(
    out_dir: str | Path,
    target: str | Path,
    *,
    gt_dir: str | Path | None = None,
    data_file: str | Path | None = None,
    split: str = "val",
    base_dir: str | Path | None = None,
) -> int:
    """Multi-label indexed PNGs for an external DAVIS-2017 style evaluator.

    Writes ``TARGET/SEQ/<frame>.png``; per sequence the label covering most pixels becomes 0
    (DAVIS reads 0 as background) by swapping it with label 0. Size: the ground truth's
    (from ``gt_dir`` or the DataSplit, as for :func:`evaluate`) when a sequence has any,
    else the flow's original size. Returns the number of files written.
    """
    truth = GroundTruth(gt_dir, data_file, split, base_dir) if gt_dir is not None or data_file is not None else None
    written = 0
    for seq_dir in output_sequences(out_dir):
        labels, record = read_sequence_output(seq_dir)
        frames = record["frames"]
        masks = truth.masks(record["sequence"], frames) if truth is not None else []
        first = next((m for m in masks if m is not None), None)
        size = read_mask_png(first).shape if first is not None else tuple(record["original_size"])
        sizes = np.bincount(labels.reshape(-1), minlength=int(record["n_labels"]))
        biggest = int(np.argmax(sizes))
        swap = np.arange(256, dtype=np.uint8)
        swap[0], swap[biggest] = biggest, 0
        for name, frame in zip(frames, labels):
            write_label_png(Path(target) / record["sequence"] / f"{name}.png", resize_labels(swap[frame], size))
            written += 1
    return written
