"""Training configuration: the one source of defaults, and the named presets built on them.

The dataclass defaults are the ``default`` preset. ``paper`` is the original research code's
setting, item by item (the README's table says where and why the default differs);
``small`` is the quick CPU recipe. A preset is a set of field values; options the user gives
explicitly override it, and ``config.json`` records the preset's name and the result.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stseg_deploy.preprocess import MAX_IMAGE_SIDE, RESIZE_MODES

# The defaults the training modules use too (losses, augment, motion import them from here).
DEFAULT_MOTION_MODEL = "QuadraticFullPT"
DEFAULT_AUGMENTATION = f"globalmotion.{DEFAULT_MOTION_MODEL}.light"
DEFAULT_REGULARISATION = {"EulerPottsl1R3": 1.0}
DEFAULT_OPSET = 18

# Choices of the items where this package and the original differ (the README's table):
NORMS = ("frame", "instance3d")  # a: stseg_train.model.NORMS describes them
NOISE_MODES = ("sample", "batch")  # c: stseg_train.augment
POTTS_MASKS = ("counted", "all")  # e: stseg_train.losses.temporal_regulariser
# d: stseg_deploy.preprocess.RESIZE_MODES; b: stseg_train.solvers.SOLVERS

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "small": {"image_size": (64, 112), "features_start": 16, "batch_size": 8, "lr": 1e-3},
    "paper": {
        "image_size": (128, 224),
        "n_labels": 4,
        "features_start": 32,
        "num_layers": 3,
        "batch_size": 10,
        "lr": 1e-4,
        "weight_decay": 0.0,
        "epochs": 1000,
        "param_model": DEFAULT_MOTION_MODEL,
        "flow_augmentation": (DEFAULT_AUGMENTATION,),
        "regularisation": dict(DEFAULT_REGULARISATION),
        "distance": "l1",
        "loss_scale": True,
        "input_noise": True,
        "input_noise_prob": 0.2,
        "norm": "instance3d",
        "solver": "lbfgs-paper",
        "input_noise_mode": "batch",
        "resize": "plain",
        "potts_mask": "all",
        "train_results": True,
    },
}
DEFAULT_PRESET = "default"

# What runs saved before a field existed did: read_checkpoint fills these in, so an old
# run resumes, fine-tunes and exports as it was trained even when a default changes.
PRE_PRESET_DEFAULTS: dict[str, Any] = {
    "preset": None,
    "norm": "frame",
    "input_noise_mode": "sample",
    "resize": "antialias",
    "potts_mask": "counted",
    "weight_decay": 0.0,
    "train_results": False,
}


@dataclass
class TrainConfig:
    """Everything a training run depends on; saved as ``SAVE/config.json`` and in checkpoints."""

    data_file: str
    base_dir: str
    save_dir: str
    image_size: tuple[int, int] = (128, 224)
    n_labels: int = 4
    param_model: str = DEFAULT_MOTION_MODEL
    flow_augmentation: tuple[str, ...] = (DEFAULT_AUGMENTATION,)
    input_noise: bool = True
    input_noise_prob: float = 0.2
    regularisation: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_REGULARISATION))
    distance: str = "l1"
    loss_scale: bool = True
    mover_weight: float = 0.0  # > 0: weigh pixels the dominant motion misses (losses.mover_weights)
    pseudo_labels: str | None = None  # an stseg-infer output on the training videos (stseg_train.pseudo)
    pseudo_weight: float = 1.0  # the pseudo-labels' cross-entropy, added to the loss at this weight
    solver: str = "lbfgs-paper"  # measured best at equal steps (README); "irls": the exact L1 fit
    batch_size: int = 10
    lr: float = 1e-4
    epochs: int = 100
    max_steps: int | None = None
    time_budget: float | None = None  # minutes
    features_start: int = 32
    num_layers: int = 3
    device: str = "auto"
    seed: int = 123
    workers: int = 2
    init: str | None = None  # a bundled checkpoint name or a .pt path: start from its weights
    weight_decay: float = 0.0  # Adam's L2 term, as the original's optim.weight_decay
    norm: str = "frame"
    input_noise_mode: str = "sample"
    resize: str = "antialias"
    potts_mask: str = "counted"
    train_results: bool = False  # results.csv rows for training batches as well
    preset: str | None = DEFAULT_PRESET  # the preset the other values started from

    def __post_init__(self) -> None:
        self.image_size = tuple(int(v) for v in self.image_size)  # type: ignore[assignment]
        self.flow_augmentation = tuple(self.flow_augmentation)
        self.regularisation = {str(k): float(v) for k, v in self.regularisation.items()}
        problems = []
        if len(self.image_size) != 2 or min(self.image_size) < 4:
            problems.append(f"image_size must be two sides >= 4, got {self.image_size}")
        elif max(self.image_size) > MAX_IMAGE_SIDE:
            # Checked here, before any tensor exists: a huge size would otherwise fail deep
            # inside an allocation (or, with overcommit, get the process killed).
            h, w = self.image_size
            problems.append(f"image_size sides must be <= {MAX_IMAGE_SIDE}, got {h}x{w}")
        for name in ("n_labels", "batch_size", "epochs", "features_start", "num_layers"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.n_labels < 2:
            problems.append(f"n_labels must be >= 2, got {self.n_labels}")
        if self.lr <= 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if self.max_steps is not None and self.max_steps < 1:
            problems.append(f"max_steps must be >= 1, got {self.max_steps}")
        if self.time_budget is not None and self.time_budget <= 0:
            problems.append(f"time_budget must be > 0 minutes, got {self.time_budget}")
        if not 0 <= self.input_noise_prob <= 1:
            problems.append(f"input_noise_prob must lie in [0, 1], got {self.input_noise_prob}")
        if not self.mover_weight >= 0:  # NaN too
            problems.append(f"mover_weight must be >= 0, got {self.mover_weight}")
        if not (math.isfinite(self.pseudo_weight) and self.pseudo_weight > 0):  # 0 would make --pseudo-labels do nothing
            problems.append(f"pseudo_weight must be a finite number > 0, got {self.pseudo_weight}")
        if self.weight_decay < 0:
            problems.append(f"weight_decay must be >= 0, got {self.weight_decay}")
        for name, valid in (
            ("norm", NORMS),
            ("input_noise_mode", NOISE_MODES),
            ("resize", RESIZE_MODES),
            ("potts_mask", POTTS_MASKS),
        ):
            if getattr(self, name) not in valid:
                problems.append(f"{name} must be one of {', '.join(valid)}, got {getattr(self, name)!r}")
        if self.preset is not None and self.preset not in PRESETS:
            problems.append(f"unknown preset {self.preset!r}; valid: {', '.join(PRESETS)}")
        if self.workers < 0:
            problems.append(f"workers must be >= 0, got {self.workers}")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["image_size"] = list(self.image_size)
        out["flow_augmentation"] = list(self.flow_augmentation)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown training configuration keys: {sorted(unknown)}")
        return cls(**data)

    def save(self, path: str | Path, **run: Any) -> None:
        """Write the resolved config as JSON, with facts of the run beside it (``run``, e.g.
        ``world_size``: how many processes train)."""
        from stseg_deploy.io.atomic import atomic_write

        with atomic_write(path, "w") as handle:
            json.dump({**self.to_dict(), **run}, handle, indent=2, sort_keys=True)
            handle.write("\n")


def default(name: str) -> Any:
    """The default of one TrainConfig field, for CLI help that cannot drift."""
    spec = {f.name: f for f in dataclasses.fields(TrainConfig)}[name]
    if spec.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return spec.default_factory()  # type: ignore[misc]
    return spec.default


def preset_values(name: str) -> dict[str, Any]:
    """Every TrainConfig field a preset sets, defaults included: ``{field: value}``.

    Raises ValueError for an unknown name, listing the valid ones.
    """
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; valid: {', '.join(PRESETS)}")
    values = {f.name: default(f.name) for f in dataclasses.fields(TrainConfig) if f.name not in ("data_file", "base_dir", "save_dir")}
    values.update(PRESETS[name])
    values["preset"] = name
    return values
