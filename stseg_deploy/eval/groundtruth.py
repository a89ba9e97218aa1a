"""Ground truth for scoring: where a sequence's masks are (a folder of PNGs or a DataSplit's
GtMask column) and reading them at the prediction's size, binary (:func:`read_gt`) or as
object ids (:func:`read_gt_objects`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import StsegInputError
from ..io.datasplit import read_datasplit, resolve, split_path
from ..io.masks import read_mask_png, read_object_png
from ..output.layout import SEQUENCE_FILE, marker_tool
from ..preprocess import resize_labels


def gt_from_folder(gt_dir: str | Path, sequence: str, frame_names: list[str]) -> list[Path | None]:
    """Mask paths GT_DIR/SEQ/<frame>.png (or None where absent)."""
    folder = Path(gt_dir) / sequence
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no ground truth for sequence {sequence!r} (no such folder)")
    return [(folder / f"{name}.png") if (folder / f"{name}.png").is_file() else None for name in frame_names]


def gt_from_datasplit(table: pd.DataFrame, base_dir: str | Path | None, sequence: str, frame_names: list[str]) -> list[Path | None]:
    """Mask paths of a DataSplit's rows, matched to output frames by the Flow file's stem.

    None where a frame has no row or an empty GtMask. A GtMask whose file does not exist is
    an error (FileNotFoundError naming it), not a frame without ground truth.
    """
    rows = table[table["Sequence"] == sequence]
    if rows.empty:
        known = sorted(table["Sequence"].unique())
        raise StsegInputError(
            f"sequence {sequence!r} is not in this DataSplit split (it has {', '.join(known[:4])}"
            f"{', ...' if len(known) > 4 else ''}); was it inferred from another --split?"
        )
    by_stem = {Path(f).stem: m for f, m in zip(rows["Flow"], rows["GtMask"])}
    masks = [resolve(base_dir, by_stem[n]) if isinstance(by_stem.get(n), str) else None for n in frame_names]
    missing = [m for m in masks if m is not None and not m.is_file()]
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise FileNotFoundError(f"{missing[0]}: ground-truth mask listed in the DataSplit's GtMask column not found{more}")
    return masks


class GroundTruth:
    """Where the masks are: ``gt_dir/<sequence>/<frame>.png``, or a DataSplit's GtMask column.

    Exactly one source; the DataSplit is read once, the folder checked once. A folder
    written by stseg (an stseg-infer output, a ``--davis17`` export) is refused as ground
    truth: scoring outputs against themselves gives J=1 and means nothing.
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
        if gt_dir is not None and (tool := marker_tool(Path(gt_dir))) is not None:
            raise StsegInputError(f"{gt_dir}: an {tool} output, not ground truth")
        self.gt_dir = gt_dir
        self.base_dir = base_dir
        self.split = split
        self.csv = split_path(data_file, split) if data_file is not None else None
        self.table = read_datasplit(data_file, split) if data_file is not None else None
        if self.table is not None and self.table["GtMask"].isna().all():
            # read_datasplit fills an absent column with empty cells: say which it was.
            columns = list(pd.read_csv(self.csv, nrows=0).columns)
            why = "its GtMask column is empty" if "GtMask" in columns else f"it has no GtMask column (columns: {', '.join(columns)})"
            raise StsegInputError(
                f"{self.csv}: lists no ground truth ({why}); stseg-eval needs mask files in a GtMask column, "
                "or a --gt-dir folder"
            )

    def masks(self, sequence: str, frame_names: list[str]) -> list[Path | None]:
        """Mask paths for a sequence's frames (None where a frame has none)."""
        if self.table is not None:
            return gt_from_datasplit(self.table, self.base_dir, sequence, frame_names)
        if (tool := marker_tool(Path(self.gt_dir) / sequence)) is not None:
            raise StsegInputError(f"{Path(self.gt_dir) / sequence}: an {tool} output, not ground truth")
        return gt_from_folder(self.gt_dir, sequence, frame_names)

    def sequences(self) -> list[str] | None:
        """The sequences the source asks for: a DataSplit's; None for a folder (it may hold more)."""
        return None if self.table is None else sorted(self.table["Sequence"].unique())


def size_error(path: Path, gt_size: tuple[int, int], size: tuple[int, int]) -> StsegInputError:
    return StsegInputError(
        f"{path}: ground truth is {gt_size[0]}x{gt_size[1]} (HxW) but the prediction's original size is "
        f"{size[0]}x{size[1]} (original_size in {SEQUENCE_FILE}); is it the right ground truth? "
        "--resize-gt (resize_gt=True) resizes masks to the prediction (nearest neighbour)"
    )


def read_gt(path: Path, size: tuple[int, int], resize_gt: bool = False) -> np.ndarray:
    """A ground-truth mask as (H, W) bool at ``size`` = the prediction's (H, W) original size.

    A mask of another size is an error naming both sizes, unless ``resize_gt``: then it is
    resized with nearest neighbour (a binary mask has no values between 0 and 1 to blend).
    """
    mask = read_mask_png(path)
    if mask.shape != tuple(size):
        if not resize_gt:
            raise size_error(path, mask.shape, size)
        mask = resize_labels(mask.astype(np.uint8), size).astype(bool)
    return mask


def read_gt_objects(path: Path, size: tuple[int, int], resize_gt: bool = False) -> np.ndarray:
    """Per-object ground truth as (H, W) uint8 object ids (0 background, 255 void, see
    :func:`~stseg_deploy.io.masks.read_object_png`) at ``size`` = the prediction's (H, W)
    original size; another size is an error as in :func:`read_gt`, unless ``resize_gt``
    (nearest neighbour: ids must not blend)."""
    ids = read_object_png(path)
    if ids.shape != tuple(size):
        if not resize_gt:
            raise size_error(path, ids.shape, size)
        ids = resize_labels(ids, size)
    return ids
