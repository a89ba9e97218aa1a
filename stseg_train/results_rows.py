"""results.csv's rows: one per window, scored on its centre frame.

A window stands for its centre frame (the DataSplit row it was built around), so one row per
window gives one row per frame: what the network's segmentation of that frame costs and how
well it matches the ground truth, without a frame counted once per window it falls in.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from stseg_deploy.eval.binarise import binarise_exceptbiggest, binarise_fair
from stseg_deploy.preprocess import WINDOW
from stseg_kernels import jaccard

from .dataset import FlowWindowDataset
from .torchthreads import torch_threads_kept


def window_rows(
    split: str, epoch: int, step: int, batch: dict, proba: torch.Tensor, losses: np.ndarray,
    dataset: FlowWindowDataset, n_labels: int,
) -> list[dict[str, Any]]:
    """One results.csv row per window of ``batch`` (see FlowWindowDataset), for its centre
    frame: loss, masks used (distinct labels of the argmax), Jaccard with "fair" and with
    "exceptbiggest" binarisation (NaN without ground truth)."""
    with torch_threads_kept():  # the Jaccard is a numba kernel (stseg_train.torchthreads)
        return _rows(split, epoch, step, batch, proba, losses, dataset, n_labels)


def _rows(
    split: str, epoch: int, step: int, batch: dict, proba: torch.Tensor, losses: np.ndarray,
    dataset: FlowWindowDataset, n_labels: int,
) -> list[dict[str, Any]]:
    centre = WINDOW // 2
    labels = proba.detach()[:, :, centre].argmax(dim=1).cpu().numpy()
    rows = []
    for i, index in enumerate(batch["index"].tolist()):
        row = {
            "epoch": epoch,
            "step": step,
            "split": split,
            "flow": dataset.records[index].centre,
            "loss": float(losses[i]),
            "masks_used": int(np.unique(labels[i]).size),
            "jaccard_fair": np.nan,
            "jaccard_exceptbiggest": np.nan,
        }
        if bool(batch["has_gt"][i, centre]):
            gt = batch["gt"][i, centre].numpy()
            fair = binarise_fair(labels[i], gt, n_labels)
            biggest = binarise_exceptbiggest(labels[i], n_labels)
            row["jaccard_fair"] = float(jaccard(gt, fair)[0])
            row["jaccard_exceptbiggest"] = float(jaccard(gt, biggest)[0])
        rows.append(row)
    return rows
