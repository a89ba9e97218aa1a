"""What a run checks before it loads any data or builds the model: the device it asked for and
the names in its config, so that a typo fails in a second with the valid choices instead of
after the data is read, or at the first step."""

from __future__ import annotations

import torch

from .config import TrainConfig


def resolve_device(name: str) -> torch.device:
    """``auto`` → CUDA when present, else CPU; anything else is passed to torch as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available")
    return device


def check_names(cfg: TrainConfig) -> None:
    """Refuse unknown augmentation, regulariser, motion model or distance names up front,
    before data and model are loaded, rather than at the first step."""
    from .augment import parse_global_motion
    from .losses import DISTANCES, REGULARISERS
    from .motion import MOTION_MODELS

    for name in cfg.flow_augmentation:
        parse_global_motion(name)
    unknown = sorted(set(cfg.regularisation) - set(REGULARISERS))
    if unknown:
        raise ValueError(f"unknown regulariser(s) {unknown}; valid: {sorted(REGULARISERS)}")
    if cfg.param_model not in MOTION_MODELS:
        raise ValueError(f"unknown motion model {cfg.param_model!r}; valid: {sorted(MOTION_MODELS)}")
    if cfg.distance not in DISTANCES:
        raise ValueError(f"unknown distance {cfg.distance!r}; valid: {list(DISTANCES)}")
