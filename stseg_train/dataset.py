"""Training samples from a DataSplit: 3-frame flow windows (Flow-1, Flow, Flow+1) and masks."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from stseg_deploy.errors import FlowFileError
from stseg_deploy.io.datasplit import read_datasplit, resolve, window_centres
from stseg_deploy.io.flowio import check_flo_header, read_flow
from stseg_deploy.io.masks import read_mask_png
from stseg_deploy.preprocess import DEFAULT_RESIZE, WINDOW, resize_flow, resize_labels

from .pseudo import PseudoLabels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowRecord:
    """One usable window: three flow files, their masks (or None), the centre row's Flow value."""

    flows: tuple[Path, Path, Path]
    masks: tuple[Path | None, Path | None, Path | None]
    centre: str
    sequence: str


class FlowWindowDataset(Dataset):
    """Windows of a DataSplit split, preprocessed by :func:`stseg_deploy.preprocess.resize_flow`
    with ``resize`` (one of its modes).

    Items are dicts: ``flow`` (2, 3, h, w) float32 tensor, pixels at model size; ``gt``
    (3, h, w) bool tensor (all False when absent); ``has_gt`` (3,) bool; ``index`` int; and
    with ``pseudo``, ``pseudo`` (3, h, w) int64 labels (:data:`.pseudo.IGNORE` where absent).
    Windows whose neighbours are missing from the CSV or whose flow files are missing on
    disk are skipped, and counted in one warning.
    """

    def __init__(
        self,
        data_file: str | Path,
        split: str,
        base_dir: str | Path,
        image_size: tuple[int, int],
        resize: str = DEFAULT_RESIZE,
        pseudo: PseudoLabels | None = None,
    ):
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.resize = resize
        self.pseudo = pseudo
        table = read_datasplit(data_file, split)
        triples = window_centres(table)
        # A sequence's first and last rows never have both neighbours: that is expected,
        # only rows cut off by gaps are worth a warning.
        ends = int(table.groupby("Sequence").size().clip(upper=2).sum())
        no_neighbours = len(table) - len(triples) - ends
        exists: dict[str, bool] = {}
        readable: dict[str, bool] = {}

        def present(relative: str) -> bool:
            if relative not in exists:
                exists[relative] = resolve(base_dir, relative).is_file()
            return exists[relative]

        def flow_ok(relative: str) -> bool:
            # .flo headers are checked now, so a truncated file is skipped here rather
            # than stopping an epoch halfway.
            if relative not in readable:
                path = resolve(base_dir, relative)
                readable[relative] = True
                if path.suffix.lower() == ".flo":
                    try:
                        check_flo_header(path)
                    except FlowFileError as exc:
                        log.warning("%s", exc)
                        readable[relative] = False
            return readable[relative]

        records, missing_files, broken_files = [], 0, 0
        for rows in triples:
            flows = [table.at[r, "Flow"] for r in rows]
            if not all(present(f) for f in flows):
                missing_files += 1
                continue
            if not all(flow_ok(f) for f in flows):
                broken_files += 1
                continue
            masks = []
            for r in rows:
                gt = table.at[r, "GtMask"]
                masks.append(resolve(base_dir, gt) if isinstance(gt, str) and present(gt) else None)
            records.append(
                WindowRecord(
                    flows=tuple(resolve(base_dir, f) for f in flows),  # type: ignore[arg-type]
                    masks=tuple(masks),  # type: ignore[arg-type]
                    centre=flows[1],
                    sequence=str(table.at[rows[1], "Sequence"]),
                )
            )
        if no_neighbours or missing_files or broken_files:
            log.warning(
                "%s_%s.csv: skipped %d row(s) whose neighbours are missing (gaps in Sequence_Index), "
                "%d window(s) with missing flow files and %d with unreadable ones; %d windows remain",
                data_file, split, no_neighbours, missing_files, broken_files, len(records),
            )
        if not records:
            raise ValueError(
                f"{data_file}_{split}.csv: no usable 3-frame windows (need consecutive rows of one "
                f"sequence whose flow files exist under base dir {base_dir})"
            )
        self.records = records

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict:
        record = self.records[index]
        h, w = self.image_size
        flow = np.stack([resize_flow(read_flow(p), (h, w), self.resize) for p in record.flows], axis=1)
        gt = np.zeros((WINDOW, h, w), dtype=bool)
        has_gt = np.zeros(WINDOW, dtype=bool)
        for t, mask_path in enumerate(record.masks):
            if mask_path is not None:
                gt[t] = resize_labels(read_mask_png(mask_path).astype(np.uint8), (h, w)) > 0
                has_gt[t] = True
        item = {
            "flow": torch.from_numpy(flow),
            "gt": torch.from_numpy(gt),
            "has_gt": torch.from_numpy(has_gt),
            "index": index,
        }
        if self.pseudo is not None:
            item["pseudo"] = torch.from_numpy(self.pseudo.window(record.sequence, record.flows))
        return item
