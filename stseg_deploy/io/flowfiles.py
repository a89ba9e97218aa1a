"""Listing the flow files of a sequence folder in a stable, human order (00002 before 00010)."""

from __future__ import annotations

import re
from pathlib import Path

from ..errors import StsegInputError
from .flowio import FLOW_SUFFIXES

_DIGITS = re.compile(r"(\d+)")
# stseg-flow's marker in a flow folder it wrote (see stseg_deploy.io.outdir).
FLOW_TOOL = "stseg-flow"
FLOW_MARKER = "stseg-flow.json"


def natural_key(text: str) -> tuple:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in _DIGITS.split(text))


def list_flow_files(folder: str | Path) -> list[Path]:
    """Flow files (.flo, .npy, .png) of a folder in natural sort order.

    Raises:
        FileNotFoundError: the folder does not exist.
        StsegInputError: it holds no flow files, or mixes several flow formats.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: flow folder not found")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in FLOW_SUFFIXES]
    if not files:
        raise StsegInputError(f"{folder}: no flow files ({', '.join(FLOW_SUFFIXES)}) in this folder")
    suffixes = {p.suffix.lower() for p in files}
    if len(suffixes) > 1:
        raise StsegInputError(
            f"{folder}: mixes flow formats {sorted(suffixes)}; keep one format per sequence folder"
        )
    return sorted(files, key=lambda p: natural_key(p.name))
