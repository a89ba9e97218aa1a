"""Self-describing checkpoints: model arguments + resolved config + weights (+ training state).

A checkpoint alone rebuilds the model, so export and inference need no side file.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import torch

from stseg_deploy import __version__
from stseg_deploy.errors import error_line
from stseg_deploy.io.atomic import atomic_write

from .config import PRE_PRESET_DEFAULTS
from .model import UNet3D

FORMAT = "stseg-checkpoint-1"
# What a checkpoint needs to rebuild, export and describe its model (no optimiser, no RNG
# states): what is kept of it to bundle or to store a run's best weights.
SLIM_KEYS = ("format", "version", "model_args", "model", "config", "data_flow", "epoch", "global_step", "best_val_loss", "seconds", "metrics")


def save_checkpoint(path: str | Path, model: UNet3D, state: dict[str, Any]) -> None:
    """Write ``path`` atomically. ``state`` holds config, optimizer, epoch, metrics, RNG states.

    The unwrapped module's ``state_dict`` is stored, so wrappers (DDP, compile) never leak
    their prefixes into the file.
    """
    module = getattr(model, "_orig_mod", model)
    module = getattr(module, "module", module)
    payload = {
        "format": FORMAT,
        "version": __version__,
        "model_args": dict(module.config),
        "model": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        **state,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_write(path, durable=True) as handle:
        handle.write(buffer.getvalue())


def slim_payload(payload: dict[str, Any], half: bool = False) -> dict[str, Any]:
    """The :data:`SLIM_KEYS` of a loaded checkpoint; with ``half`` its floating-point weights
    in float16 (half the size; :func:`model_from_checkpoint` loads them back as float32)."""
    slim = {k: payload[k] for k in SLIM_KEYS if k in payload}
    if half:
        slim["model"] = {k: v.half() if v.is_floating_point() else v for k, v in slim["model"].items()}
    return slim


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`, with clear errors for other files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        # weights_only: a checkpoint is data; never run code from a file a user downloaded.
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except OSError as exc:
        if exc.filename is not None:  # the file itself could not be opened: permissions and such
            raise
        raise _unreadable(path, exc) from exc
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise _unreadable(path, exc) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not an stseg checkpoint (missing format tag {FORMAT!r})")
    for key in ("model_args", "model", "config"):
        if key not in payload:
            raise ValueError(f"{path}: checkpoint lacks {key!r}")
    # Fields added after a checkpoint was written take the value every run had before them.
    payload["model_args"].setdefault("norm", "frame")
    for name, value in PRE_PRESET_DEFAULTS.items():
        payload["config"].setdefault(name, value)
    return payload


def _unreadable(path: Path, exc: BaseException) -> ValueError:
    """The error for a file torch cannot load, as one whole sentence that names the file.

    torch writes checkpoints as zip archives: a cut-off copy lacks the archive's central
    directory (a RuntimeError from PytorchStreamReader), ends inside a record (an OSError
    without a file name) or is empty (an EOFError). Its message runs to a page of advice,
    some of it unsafe (load with weights_only=False); the first sentence says enough.
    """
    empty = path.stat().st_size == 0
    truncated = empty or isinstance(exc, (EOFError, OSError)) or "PytorchStreamReader" in str(exc)
    if empty:
        reason = "the file is empty"
    elif isinstance(exc, OSError) and exc.strerror:
        reason = exc.strerror[0].lower() + exc.strerror[1:]  # not "[Errno 22] Invalid argument"
    elif isinstance(exc, EOFError):
        reason = "the file ends early"
    elif isinstance(exc, pickle.UnpicklingError):
        # torch's advice here is to load with weights_only=False, i.e. to run the file's code.
        reason = "not plain tensors and data: torch's weights-only loader refused it"
    else:
        reason = error_line(exc, limit=200).rstrip(".")
        if len(reason) < 20:  # e.g. KeyError('101') from a text file: the type says more
            reason = f"{type(exc).__name__}: {reason}"
    if truncated:
        return ValueError(
            f"{path}: not a readable stseg checkpoint (truncated or corrupt: {reason}); "
            "copy it again or use another checkpoint"
        )
    return ValueError(
        f"{path}: not a readable stseg checkpoint ({reason}); "
        "stseg-export takes the .pt files that stseg-train writes"
    )


def model_from_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> tuple[UNet3D, dict[str, Any]]:
    """Rebuild the model from the file alone. Returns (model in eval mode, checkpoint dict)."""
    payload = load_checkpoint(path, map_location)
    model = UNet3D(**payload["model_args"])
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        raise ValueError(f"{path}: weights do not match the model arguments stored with them ({exc})") from exc
    return model.eval(), payload
