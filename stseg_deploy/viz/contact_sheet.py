"""Contact sheets of a segmented sequence: flow, segments, foreground, selected mask, ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..eval.binarise import binarise_exceptbiggest
from ..eval.evaluation import resolve_cut_size
from ..eval.groundtruth import gt_from_folder
from ..eval.options import SAME_CUT
from ..io.masks import label_palette, read_label_png, read_mask_png
from ..io.outdir import StsegOutputError
from ..output.layout import CONTACT_SHEET, object_id_maps, read_segment_maps, record_objects
from ..preprocess import resize_labels

VIZ_TOOL = "stseg-viz"


def _flow_picture(seq_dir: Path, record: dict, t: int) -> np.ndarray | None:
    from PIL import Image

    from ..io.flowio import read_flow
    from .flowcolour import flow_to_rgb

    saved = seq_dir / "flow" / f"{record['frames'][t]}.png"
    if saved.is_file():
        with Image.open(saved) as image:
            return np.asarray(image.convert("RGB"))
    source = Path(record["flows"][t])
    return flow_to_rgb(read_flow(source)) if source.is_file() else None


def sequence_contact_sheet(
    seq_dir: str | Path,
    gt_dir: str | Path | None = None,
    n_columns: int = 6,
    cut_size: int | str | None = SAME_CUT,
    out: str | Path | None = None,
) -> Path:
    """Write a contact sheet PNG for an stseg-infer output folder; returns its path.

    Rows: flow (colour wheel), segments (the label PNGs' colours, the background black when
    the foreground was decided), foreground (the moving objects stseg-infer chose, no ground
    truth used; an output without a decision shows every segment but the largest instead),
    the mask selected with the ground truth, ground truth. Columns: ``n_columns`` frames
    spread evenly over the sequence. Ground truth comes from ``gt_dir/<frame>.png`` or, when
    the sequence was inferred from a DataSplit, from its GtMask files; the selected mask is
    the paper's per-chunk selection (``stseg_kernels.select_masks``), shown only with ground
    truth. Default output: ``seq_dir/contact_sheet.png``.
    """
    from stseg_kernels import select_masks

    from .overlay import contact_sheet

    seq_dir = Path(seq_dir)
    # A refined output's PNGs are its label maps; an unrefined one's, its labels.npy.
    labels, record = read_segment_maps(seq_dir)
    cut_size = resolve_cut_size(cut_size, record)
    frames = record["frames"]
    if n_columns < 1:
        raise ValueError(f"n_columns must be >= 1, got {n_columns}")
    if gt_dir is not None:
        if not Path(gt_dir).is_dir():
            raise FileNotFoundError(f"{gt_dir}: ground-truth folder not found")
        masks = gt_from_folder(Path(gt_dir).parent, Path(gt_dir).name, frames)
    else:
        masks = [Path(m) if m and Path(m).is_file() else None for m in record.get("masks", [None] * len(frames))]
    size = tuple(record["original_size"])
    columns = sorted(set(np.linspace(0, len(frames) - 1, min(n_columns, len(frames))).round().astype(int)))
    has_gt = np.array([m is not None for m in masks])
    n_labels = int(record["n_labels"])
    objects = record_objects(record, seq_dir / "sequence.json")
    if objects is not None:
        foreground = object_id_maps(labels, objects) > 0
        foreground_title = "foreground"
    else:
        foreground = np.stack([binarise_exceptbiggest(f, n_labels) for f in labels])
        foreground_title = "all but largest"
    selected = None
    if has_gt.any():
        gt = np.zeros((len(frames), *labels.shape[1:]), dtype=bool)
        for t in np.flatnonzero(has_gt):
            gt[t] = resize_labels(read_mask_png(masks[t]).astype(np.uint8), labels.shape[1:]) > 0
        selected = select_masks(labels, gt, has_gt, n_labels, cut_size)
    rows: list[list[np.ndarray | None]] = [[], [], [], [], []]
    for t in columns:
        rows[0].append(_flow_picture(seq_dir, record, t))
        png = seq_dir / f"{frames[t]}.png"
        segments = read_label_png(png) if png.is_file() else resize_labels(labels[t], size)
        rows[1].append(label_palette(None if objects is None else objects[t])[segments])
        rows[2].append(resize_labels(foreground[t].astype(np.uint8), size) > 0)
        if selected is not None:
            rows[3].append(resize_labels(selected[t].astype(np.uint8), size) > 0)
            rows[4].append(read_mask_png(masks[t]) if masks[t] is not None else None)
    titles = ["flow", "segments", foreground_title, f"selected with GT (cut {cut_size})", "ground truth"]
    if selected is None:
        rows, titles = rows[:3], titles[:3]
    if all(picture is None for picture in rows[0]):
        # A video's flow is not kept unless stseg-infer ran with --overlay: no empty row.
        rows, titles = rows[1:], titles[1:]
    target = Path(out) if out is not None else seq_dir / CONTACT_SHEET
    _check_replaceable(target)
    return contact_sheet(
        rows, titles, target, column_titles=[frames[t] for t in columns], cell_size=(size[0], size[1]),
        png_text={"Software": VIZ_TOOL},
    )


def _check_replaceable(target: Path) -> None:
    """Refuse to overwrite anything but a contact sheet stseg-viz wrote (StsegOutputError)."""
    from PIL import Image

    if not (target.exists() or target.is_symlink()):
        return
    ours = False
    if target.is_file() and not target.is_symlink():
        try:
            with Image.open(target) as image:
                ours = getattr(image, "text", {}).get("Software") == VIZ_TOOL
        except (OSError, SyntaxError):
            ours = False
    if not ours:
        raise StsegOutputError(
            f"{target}: exists and is not a contact sheet {VIZ_TOOL} wrote; stseg never overwrites it. "
            "Choose another --out, or move it away"
        )
