"""Training checkpoints shipped with the package: ``stseg_train/pretrained/<name>.pt``, the
same names as the exported models in :mod:`stseg_deploy.zoo` (whose folder holds each
model's one card), for ``stseg-train --init``."""

from __future__ import annotations

from pathlib import Path

import torch

from stseg_deploy.zoo import lookup

from .checkpoint import load_checkpoint
from .model import UNet3D
from .widen import widen_state_dict

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def bundled_checkpoints() -> dict[str, Path]:
    """Bundled checkpoint name -> its .pt file, sorted by name."""
    return {p.stem: p for p in sorted(PRETRAINED_DIR.glob("*.pt"))}


def resolve_init(spec: str) -> Path:
    """The checkpoint file for ``--init``: an existing path, or a bundled name
    (:func:`stseg_deploy.zoo.lookup`)."""
    return lookup(spec, bundled_checkpoints(), "--init")[0]


# An added segment starts empty: its head weights zero and its bias this far below the others'.
EMPTY_SEGMENT_BIAS = -4.0


def load_init_weights(model: torch.nn.Module, spec: str) -> Path:
    """Copy the weights of checkpoint ``spec`` into ``model``; returns the file used.

    The network's shape must match (levels, normalisation), except that ``model`` may have
    more segments (``n_labels``) than the checkpoint: the checkpoint's segments keep their
    head weights and each added one starts empty (zero weights, a bias
    :data:`EMPTY_SEGMENT_BIAS` below the mean of the others), for training to fill; and more
    features (``features_start``): the network is widened so that it computes what the
    checkpoint did (:mod:`stseg_train.widen`). The optimiser starts afresh, since
    fine-tuning is a new run. Raises ValueError naming what differs.
    """
    path = resolve_init(spec)
    payload = load_checkpoint(path, map_location="cpu")
    mine, theirs = dict(model.config), dict(payload["model_args"])
    differ = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
    grows = {"n_labels", "features_start"}
    larger = all(k in grows and int(mine[k]) > int(theirs[k]) for k in differ)
    if differ and not larger:
        detail = ", ".join(f"{k} {theirs.get(k)} there, {mine.get(k)} here" for k in differ)
        raise ValueError(f"{path}: --init needs the same network (or more segments or features): {detail}")
    more_segments = "n_labels" in differ
    weights = dict(payload["model"])
    if "features_start" in differ:
        # Widened at the checkpoint's segment count; added segments are handled below.
        weights = widen_state_dict(weights, _narrow_head(model, int(theirs["n_labels"])))
    if more_segments:
        known = int(theirs["n_labels"])
        head_w, head_b = model.head.weight.detach().clone(), model.head.bias.detach().clone()
        head_w.zero_()
        head_w[:known] = weights["head.weight"]
        head_b[:known] = weights["head.bias"]
        head_b[known:] = weights["head.bias"].mean() + EMPTY_SEGMENT_BIAS
        weights["head.weight"], weights["head.bias"] = head_w, head_b
    model.load_state_dict(weights)
    return path


def _narrow_head(model: torch.nn.Module, n_labels: int) -> torch.nn.Module:
    """A fresh copy of ``model``'s architecture with ``n_labels`` segments, for widening a
    checkpoint that has fewer segments than ``model``."""
    if int(model.n_labels) == n_labels:
        return model
    return UNet3D(**{**model.config, "n_labels": n_labels})
