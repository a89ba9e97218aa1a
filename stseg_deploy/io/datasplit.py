"""The DataSplit CSV format: ``PREFIX_train.csv``, ``PREFIX_val.csv``, ``PREFIX_test.csv``.

Columns: ``Flow`` (required), ``GtMask``, ``Image``, ``Sequence``, ``Sequence_Index``
(optional); extra columns are ignored. Paths are relative to a base directory.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import DataSplitError, StsegInputError
from .atomic import atomic_write
from .flowfiles import natural_key
from .outdir import check_name

SPLITS = ("train", "val", "test")
REQUIRED_COLUMNS = ("Flow",)
OPTIONAL_COLUMNS = ("GtMask", "Image", "Sequence", "Sequence_Index")
COLUMNS = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)  # the order every stseg tool writes them in


def split_path(prefix: str | Path, split: str) -> Path:
    """``PREFIX_split.csv`` for a DataSplit prefix such as ``DataSplit/DAVIS_D16Split``."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    return Path(f"{prefix}_{split}.csv")


def write_datasplit(path: str | Path, table: pd.DataFrame) -> Path:
    """Write one split's CSV at ``path`` atomically (never half-written): the table's
    columns in the format's order (:data:`COLUMNS`), ``Flow`` required, no others; the one
    writer of DataSplit files (stseg-prepare, stseg-synth, scripts). Returns ``path``."""
    path = Path(path)
    unknown = [c for c in table.columns if c not in COLUMNS]
    if unknown or "Flow" not in table.columns:
        raise ValueError(f"{path}: a DataSplit has columns {list(COLUMNS)} (Flow required), got {list(table.columns)}")
    with atomic_write(path, "w") as handle:
        table.to_csv(handle, index=False, columns=[c for c in COLUMNS if c in table.columns], lineterminator="\n")
    return path


def read_datasplit(prefix: str | Path, split: str) -> pd.DataFrame:
    """Read and normalise one split of a DataSplit.

    Returns a DataFrame with columns Flow, GtMask, Image (str or None), Sequence (str),
    Sequence_Index (int), sorted by sequence then index, index reset. When Sequence is
    absent it is the Flow file's parent folder name; when Sequence_Index is absent it is
    the natural order of Flow names within the sequence.

    Raises:
        FileNotFoundError: the CSV does not exist.
        DataSplitError: unreadable CSV, missing Flow column, empty split, bad indices,
            duplicate (Sequence, Sequence_Index) pairs.
    """
    path = split_path(prefix, split)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: DataSplit CSV not found (expected PREFIX_{split}.csv)")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataSplitError(f"{path}: not a readable CSV ({exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
    if missing:
        raise DataSplitError(
            f"{path}: missing column(s) {missing}; found {list(table.columns)}; "
            f"required {list(REQUIRED_COLUMNS)}, optional {list(OPTIONAL_COLUMNS)}"
        )
    if table.empty:
        raise DataSplitError(f"{path}: the split has no rows")
    empty_flow = table["Flow"].str.strip() == ""
    if empty_flow.any():
        raise DataSplitError(f"{path}: empty Flow cell on CSV line(s) {_lines(empty_flow)}")
    out = pd.DataFrame({"Flow": table["Flow"].str.strip()})
    for column in ("GtMask", "Image"):
        if column in table.columns:
            out[column] = table[column].str.strip().replace("", None)
        else:
            out[column] = None
    if "Sequence" in table.columns:
        out["Sequence"] = table["Sequence"].str.strip()
        if (out["Sequence"] == "").any():
            raise DataSplitError(f"{path}: empty Sequence cell on CSV line(s) {_lines(out['Sequence'] == '')}")
        _check_sequence_names(path, out["Sequence"])
    else:
        # Derived names are checked where they become folder names (inference), so a
        # training split of files without folders stays usable.
        out["Sequence"] = [Path(p).parent.name for p in out["Flow"]]
    if "Sequence_Index" in table.columns:
        index = pd.to_numeric(table["Sequence_Index"], errors="coerce")
        bad = index.isna() | (index != np.floor(index))
        if bad.any():
            raise DataSplitError(
                f"{path}: Sequence_Index must be an integer, bad on CSV line(s) {_lines(bad)}"
            )
        out["Sequence_Index"] = index.astype(np.int64)
    else:
        out["Sequence_Index"] = 0
        for _, group in out.groupby("Sequence", sort=False):
            order = sorted(group.index, key=lambda i: natural_key(out.at[i, "Flow"]))
            out.loc[order, "Sequence_Index"] = np.arange(len(order))
    dup = out.duplicated(["Sequence", "Sequence_Index"], keep=False)
    if dup.any():
        raise DataSplitError(f"{path}: duplicate (Sequence, Sequence_Index) on CSV line(s) {_lines(dup)}")
    return out.sort_values(["Sequence", "Sequence_Index"], kind="stable").reset_index(drop=True)


def _check_sequence_names(path: Path, names: pd.Series) -> None:
    """Sequence names become output folder names: refuse any that is not one plain name."""
    for name in names.unique():
        try:
            check_name(name)
        except StsegInputError as exc:
            raise DataSplitError(f"{path}: CSV line(s) {_lines(names == name)}: {exc}") from None


def _lines(mask: pd.Series) -> str:
    # +2: one for the header row, one because people count lines from 1.
    lines = [str(i + 2) for i in np.flatnonzero(mask.to_numpy())]
    return ", ".join(lines[:10]) + (" ..." if len(lines) > 10 else "")


def window_centres(table: pd.DataFrame) -> list[tuple[int, int, int]]:
    """Row triples (previous, centre, next) whose three frames are consecutive in one sequence.

    ``table`` is the output of :func:`read_datasplit`. Rows at a sequence's ends or next to
    a gap in Sequence_Index have no window.
    """
    triples = []
    seq = table["Sequence"].to_numpy()
    idx = table["Sequence_Index"].to_numpy()
    for row in range(1, len(table) - 1):
        if seq[row - 1] == seq[row] == seq[row + 1] and idx[row - 1] + 1 == idx[row] == idx[row + 1] - 1:
            triples.append((row - 1, row, row + 1))
    return triples


def resolve(base_dir: str | Path | None, relative: str) -> Path:
    """A DataSplit path resolved against ``base_dir`` (absolute paths stay as they are)."""
    path = Path(relative)
    return path if path.is_absolute() or base_dir is None else Path(base_dir) / path
