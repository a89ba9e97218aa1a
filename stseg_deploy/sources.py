"""Where sequences come from: flow folders or the Sequence column of a DataSplit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from .datasplit import read_datasplit, resolve
from .errors import StsegInputError
from .frames import list_flow_files

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Sequence:
    """A named sequence: its flow files in frame order and, when known, ground-truth masks."""

    name: str
    flows: tuple[Path, ...]
    masks: tuple[Path | None, ...]

    @property
    def frame_names(self) -> list[str]:
        """Output frame names: the flow files' stems."""
        return [p.stem for p in self.flows]


def sequences_from_folders(folders: list[str | Path]) -> list[Sequence]:
    """One sequence per folder, named after it; frames are its flow files in natural order."""
    out, names = [], set()
    for folder in folders:
        folder = Path(folder)
        flows = list_flow_files(folder)
        name = folder.resolve().name
        if name in names:
            raise StsegInputError(f"{folder}: two input folders are both named {name!r}; outputs would collide")
        names.add(name)
        out.append(Sequence(name, tuple(flows), (None,) * len(flows)))
    return out


def sequences_from_datasplit(prefix: str | Path, split: str, base_dir: str | Path | None) -> list[Sequence]:
    """Sequences of a DataSplit split, rows ordered by Sequence_Index.

    Raises FileNotFoundError naming the first missing flow file: inference cannot skip
    frames without shifting every later label.
    """
    table = read_datasplit(prefix, split)
    out = []
    for name, group in table.groupby("Sequence", sort=False):
        flows = tuple(resolve(base_dir, f) for f in group["Flow"])
        for path in flows:
            if not path.is_file():
                raise FileNotFoundError(f"{path}: flow file of sequence {name!r} not found (listed in {prefix}_{split}.csv)")
        masks = tuple(resolve(base_dir, m) if isinstance(m, str) else None for m in group["GtMask"])
        indices = group["Sequence_Index"].to_numpy()
        if len(indices) > 1 and (indices[1:] - indices[:-1] != 1).any():
            log.warning("sequence %s of %s_%s.csv has gaps in Sequence_Index; frames are used in order", name, prefix, split)
        out.append(Sequence(str(name), flows, masks))
    return out
