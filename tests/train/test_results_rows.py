"""stseg_train.results_rows: one row per window, scored on its centre frame alone, with NaN
scores where that frame has no ground truth."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import torch
import torch.nn.functional as F

from stseg_train.results_rows import window_rows

N_LABELS = 3


def _proba(labels: torch.Tensor) -> torch.Tensor:
    """(b, T, h, w) labels to one-hot (b, L, T, h, w) probabilities."""
    return F.one_hot(labels, N_LABELS).permute(0, 4, 1, 2, 3).float()


def test_rows_score_the_centre_frame() -> None:
    h, w = 4, 4
    labels = torch.full((3, 3, h, w), 2)  # the frames before and after the centre: one label only
    labels[0, 1] = 1
    labels[0, 1, :, : w // 2] = 0  # window 0: label 0 left, label 1 right (a tie in size)
    labels[1, 1] = 0  # window 1: one segment
    labels[2, 1] = 0
    labels[2, 1, : h // 2, : w // 2] = 1  # window 2: a quarter apart
    gt = torch.zeros(3, 3, h, w, dtype=torch.bool)
    gt[:, 1, :, : w // 2] = True  # the left half moves
    batch = {
        "index": torch.tensor([5, 2, 7]),
        "gt": gt,
        "has_gt": torch.tensor([[False, True, False], [False, False, False], [True, True, True]]),
    }
    dataset = SimpleNamespace(records={i: SimpleNamespace(centre=f"Flows/seq/{i:05d}.flo") for i in (2, 5, 7)})
    rows = window_rows("val", 3, 40, batch, _proba(labels), np.array([0.5, 0.25, 0.125]), dataset, N_LABELS)

    assert [(r["epoch"], r["step"], r["split"]) for r in rows] == [(3, 40, "val")] * 3
    assert [r["flow"] for r in rows] == ["Flows/seq/00005.flo", "Flows/seq/00002.flo", "Flows/seq/00007.flo"]
    assert [r["loss"] for r in rows] == [0.5, 0.25, 0.125]
    assert [r["masks_used"] for r in rows] == [2, 1, 2]
    # Window 0: "fair" takes the segment inside the ground truth (J 1); "exceptbiggest" drops
    # the biggest, ties going to the lowest label, and keeps the wrong half (J 0).
    assert (rows[0]["jaccard_fair"], rows[0]["jaccard_exceptbiggest"]) == (1.0, 0.0)
    assert math.isnan(rows[1]["jaccard_fair"]) and math.isnan(rows[1]["jaccard_exceptbiggest"])
    # Window 2: both keep the quarter, which covers half of the moving half (J 0.5).
    assert (rows[2]["jaccard_fair"], rows[2]["jaccard_exceptbiggest"]) == (0.5, 0.5)
    assert all(type(r["loss"]) is float and type(r["masks_used"]) is int for r in rows)


def test_rows_follow_the_argmax_of_soft_probabilities() -> None:
    proba = torch.tensor([0.2, 0.5, 0.3]).view(1, 3, 1, 1, 1).expand(1, 3, 3, 2, 2).clone()
    proba[0, :, 1, 0, 0] = torch.tensor([0.6, 0.3, 0.1])
    batch = {"index": torch.tensor([0]), "gt": torch.zeros(1, 3, 2, 2, dtype=torch.bool), "has_gt": torch.zeros(1, 3, dtype=torch.bool)}
    dataset = SimpleNamespace(records=[SimpleNamespace(centre="a.flo")])
    (row,) = window_rows("train", 0, 1, batch, proba.requires_grad_(), np.array([1.0]), dataset, N_LABELS)
    assert row["masks_used"] == 2 and row["split"] == "train"
