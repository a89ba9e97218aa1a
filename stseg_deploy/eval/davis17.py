"""Multi-label PNGs for an external DAVIS-2017 evaluator, written as one output unit."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import StsegInputError
from ..io.masks import write_label_png
from ..io.outdir import OutputUnit, StsegOutputError, check_inputs_outside
from ..output.layout import TOOL, read_label_maps, scan_outputs
from ..preprocess import resize_labels
from .davis17_measures import proposal_lut
from .evaluation import check_one_model
from .groundtruth import GroundTruth, size_error
from .options import EvalOptions

DAVIS17_TOOL = "stseg-davis17"
DAVIS17_MARKER = "davis17.json"


def next_frame_name(name: str, source: str) -> str:
    """The frame after ``name`` in a numbered sequence, same width: ``"00078"`` → ``"00079"``."""
    if not name.isdigit():
        raise StsegInputError(
            f"{source}: frame {name!r} is not a number, so the frame after it cannot be named; "
            "--davis17-mode paper needs numbered frames"
        )
    return f"{int(name) + 1:0{len(name)}d}"


def _png_size(path: Path) -> tuple[int, int] | None:
    """(H, W) of an image from its header, None when unreadable (the evaluation names it)."""
    try:
        with Image.open(path) as image:
            return image.height, image.width
    except (OSError, SyntaxError):
        return None


def _export_size(truth: GroundTruth | None, name: str, frames: list[str], size: tuple[int, int], resize_gt: bool) -> tuple[int, int]:
    """The size to export a sequence at: its original size, checked against the ground truth.

    Ground truth of another size is the same error as for scoring; with ``resize_gt`` the
    export is at the ground truth's size instead, because an external DAVIS evaluator
    compares at its annotations' size and cannot be told to resize them.
    """
    if truth is None:
        return size
    try:
        masks = truth.masks(name, frames)
    except (OSError, ValueError):
        return size  # no ground truth: nothing to match (the evaluation names the sequence)
    other: dict[tuple[int, int], Path] = {}
    for mask in masks:
        gt_size = _png_size(mask) if mask is not None else None
        if gt_size is not None and gt_size != size:
            other.setdefault(gt_size, mask)
    if not other:
        return size
    gt_size, path = next(iter(other.items()))
    if not resize_gt:
        raise size_error(path, gt_size, size)
    if len(other) > 1:
        sizes = ", ".join(f"{h}x{w} ({p})" for (h, w), p in other.items())
        raise StsegInputError(f"{path.parent}: masks of several sizes ({sizes}); a DAVIS export needs one size per sequence")
    return gt_size


def export_davis17(out_dir: str | Path, options: EvalOptions) -> int:
    """Multi-label indexed PNGs for an external DAVIS-2017 style evaluator.

    Writes ``TARGET/SEQ/<frame>.png`` for every complete stseg-infer output in ``out_dir``,
    TARGET being ``options.davis17`` (ValueError when it is None). ``options.davis17_mode``
    (one of ``DAVIS17_MODES``): ``"background"``: per sequence the label covering most
    pixels becomes 0 (DAVIS reads 0 as background) by swapping it with label 0; ``"paper"``:
    the original's, every label + 1, and one more PNG after the last frame (the video's last
    frame, which has no flow) repeating the last map. Size: the flow's original size; ground
    truth (``options.gt_dir`` or ``options.data_file``, when given) of another size is an
    error, unless ``options.resize_gt``: then the PNGs are at the ground truth's size. The
    other scoring options do not apply. TARGET is one output unit
    (:class:`~stseg_deploy.io.outdir.OutputUnit`, tool ``stseg-davis17``, marker
    ``davis17.json``): written whole beside any earlier export and swapped in; a TARGET
    holding files it did not write is refused. Returns the number of PNGs written.
    """
    if options.davis17 is None:
        raise ValueError("davis17: no folder to export to (EvalOptions.davis17 is None)")
    target, mode, resize_gt = options.davis17, options.davis17_mode, options.resize_gt
    gt_dir, data_file = options.gt_dir, options.data_file
    scan = scan_outputs(out_dir)
    if not scan.complete:
        raise StsegInputError(f"{out_dir}: no complete {TOOL} output to export")
    model_sha256, n_labels = check_one_model(scan.complete)
    if mode == "paper" and n_labels > 255:
        raise StsegInputError(f"{out_dir}: {n_labels} labels do not fit 8-bit PNGs once shifted by 1")
    # Optional here: the ground truth only checks (or, with resize_gt, sets) the PNGs' size.
    truth = GroundTruth(gt_dir, data_file, options.split, options.base_dir) if gt_dir is not None or data_file is not None else None
    unit = OutputUnit(target, DAVIS17_TOOL, DAVIS17_MARKER)
    check_inputs_outside([unit.target], [out_dir, *([gt_dir] if gt_dir is not None else [])])
    target_real = Path(os.path.realpath(unit.target))  # real paths: a link must not lead inside
    for folder, _ in scan.complete.values():
        if target_real.is_relative_to(Path(os.path.realpath(folder))):
            raise StsegOutputError(f"{unit.target}: inside the {TOOL} output {folder}; choose a --davis17 folder outside it")
    written, sizes = 0, {}
    with unit:
        for name, (folder, _) in scan.complete.items():
            # The label maps at the original size (a refined output's PNGs, an unrefined one's
            # labels.npy upsampled): what --protocol davis2017 numbers its proposals on too.
            labels, record = read_label_maps(folder)
            frames = record["frames"]
            original = (int(record["original_size"][0]), int(record["original_size"][1]))
            size = _export_size(truth, name, frames, original, resize_gt)
            sizes[name] = list(size)
            lut = proposal_lut(labels, int(record["n_labels"]), mode)
            if mode == "paper":
                frames = [*frames, next_frame_name(frames[-1], str(folder))]
                labels = np.concatenate([labels, labels[-1:]])
            for frame_name, frame in zip(frames, labels):
                write_label_png(unit.tmp / name / f"{frame_name}.png", resize_labels(lut[frame], size))
                written += 1
        unit.commit({
            "source": str(out_dir),
            "sequences": sizes,  # name -> [H, W] of its PNGs
            "skipped": {s.sequence: s.reason for s in scan.skipped},
            "model_file": {"sha256": model_sha256},
            "n_labels": n_labels,
            "resize_gt": resize_gt,
            "mode": mode,
        })
    return written
