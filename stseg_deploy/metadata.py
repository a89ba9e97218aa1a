"""What an exported model says about itself, stored inside the ONNX / TorchScript file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from .flow.recipe import FlowRecipe
from .preprocess import DEFAULT_RESIZE, RESIZE_MODES

METADATA_KEY = "stseg"
TORCHSCRIPT_EXTRA_FILE = "stseg_metadata.json"


@dataclass(frozen=True)
class ModelInfo:
    """Metadata of an exported model.

    n_labels: segments L; frames: T per window (3); image_size: (H, W) the model was
    trained at, the default inference size; param_model: the loss's motion model;
    normalisation: how the network normalises; features: channels of the ``features``
    output; version: stseg version that exported it; epoch: checkpoint epoch; flow: the
    optical flow its training data was made with, when known (from the data's
    ``stseg-prepare.json``), which stseg-infer then uses for video inputs unless told
    otherwise; resize: how flows were brought to the model's size in
    training (``stseg_deploy.preprocess.RESIZE_MODES``), which inference repeats. Files
    exported before the field existed were all trained with ``"antialias"``.
    """

    n_labels: int
    frames: int
    image_size: tuple[int, int]
    param_model: str
    normalisation: str
    features: int
    version: str
    epoch: int
    flow: FlowRecipe | None = None
    resize: str = DEFAULT_RESIZE

    def to_metadata(self) -> dict[str, str]:
        """Flat string key/values (ONNX metadata_props), plus the whole record as JSON."""
        record = asdict(self)
        record["image_size"] = list(self.image_size)
        record["flow"] = None if self.flow is None else self.flow.record()
        flat = {k: json.dumps(v) if not isinstance(v, str) else v for k, v in record.items()}
        flat[METADATA_KEY] = json.dumps(record, sort_keys=True)
        return flat

    @classmethod
    def from_metadata(cls, meta: dict[str, str], source: str | Path) -> ModelInfo:
        """Parse metadata written by :meth:`to_metadata`; clear error for foreign models."""
        if METADATA_KEY not in meta:
            raise ValueError(
                f"{source}: no stseg metadata in this model file (was it exported by stseg-export?)"
            )
        try:
            record = json.loads(meta[METADATA_KEY])
            record["image_size"] = tuple(int(v) for v in record["image_size"])
            record["flow"] = FlowRecipe.from_record(record.get("flow"))
            info = cls(**record)
        except (json.JSONDecodeError, TypeError, KeyError, ValueError) as exc:
            raise ValueError(f"{source}: corrupt stseg metadata ({exc})") from exc
        if info.resize not in RESIZE_MODES:
            raise ValueError(
                f"{source}: unknown resize mode {info.resize!r} in its metadata "
                f"(this stseg knows {', '.join(RESIZE_MODES)}; is the model newer than stseg?)"
            )
        return info
