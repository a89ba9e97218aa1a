"""Pretrained models shipped inside the package, by name, each with a model card.

``stseg_deploy/models/<name>.onnx`` is the exported model (its preprocessing is in its
metadata) and ``<name>.json`` its card: training data, exact commands, steps, hardware,
scores. :func:`resolve_model` turns what a user gives as ``--model`` (a bundled name or a
path; nothing for the default) into a file.
"""

from __future__ import annotations

import json
from pathlib import Path

from .errors import StsegInputError

MODELS_DIR = Path(__file__).resolve().parent / "models"
DEFAULT_MODEL = "mix-small"


def bundled_models() -> dict[str, Path]:
    """Bundled model name -> its .onnx file, sorted by name."""
    return {p.stem: p for p in sorted(MODELS_DIR.glob("*.onnx"))}


def model_card(name: str) -> dict:
    """The card of a bundled model (StsegInputError for an unknown name)."""
    models = bundled_models()
    if name not in models:
        raise StsegInputError(f"no bundled model {name!r}; bundled: {', '.join(models) or 'none'}")
    return json.loads((MODELS_DIR / f"{name}.json").read_text())


def lookup(spec: str | Path, bundled: dict[str, Path], option: str) -> tuple[Path, str | None]:
    """``(file, bundled name or None)`` for what a user gave ``option``: a value naming an
    existing file, or with a file suffix, is a path (a folder of that name, say an output
    folder called like a model, does not count); anything else must be a name of
    ``bundled`` (name -> file). The one rule for ``--model`` (the exported models) and
    ``--init`` (their training checkpoints, :mod:`stseg_train.pretrained`)."""
    path = Path(spec)
    if path.is_file() or path.suffix:
        return path, None
    if str(spec) in bundled:
        return bundled[str(spec)], str(spec)
    raise StsegInputError(
        f"{option} {str(spec)!r}: neither a file nor a bundled name (bundled: {', '.join(bundled) or 'none'})"
    )


def resolve_model(spec: str | Path | None) -> tuple[Path, str | None]:
    """``(model file, bundled name or None)`` for a ``--model`` value (see :func:`lookup`);
    None means the default bundled model."""
    models = bundled_models()
    if spec is None:
        if DEFAULT_MODEL not in models:
            raise StsegInputError(f"this install has no bundled model {DEFAULT_MODEL!r}; give --model PATH")
        return models[DEFAULT_MODEL], DEFAULT_MODEL
    return lookup(spec, models, "--model")
