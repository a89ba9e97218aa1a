"""One DataSplit made of several: their rows together, every path made absolute, so that
stseg-train can train on a mix (say synthetic videos and DAVIS) with ``--base-dir /``.

    python scripts/mix_datasplits.py OUT/Mix synth/DataSplit/Synth=synth prep/DAVIS2016=prep

Each source is ``PREFIX=BASE_DIR`` (the --data-file and --base-dir you would give it alone).
Writes ``OUT/Mix_{split}.csv`` for each split from the sources that have it (a source
without one is named and left out of that split); an Image column is kept only when every
row has one. Sequence names must not collide across sources.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from stseg_deploy.io.datasplit import SPLITS, read_datasplit, resolve, write_datasplit

PATH_COLUMNS = ("Flow", "GtMask", "Image")


def absolute(table: pd.DataFrame, base_dir: Path) -> pd.DataFrame:
    out = table.copy()
    for column in PATH_COLUMNS:
        if column in out:
            out[column] = [str(resolve(base_dir.absolute(), p)) if isinstance(p, str) and p else p for p in out[column]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="prefix of the mixed DataSplit")
    parser.add_argument("sources", nargs="+", help="PREFIX=BASE_DIR")
    parser.add_argument("--val-frames", type=int, default=None,
                        help="keep only the first N flow frames of each val sequence: a cheaper validation at large input sizes")
    args = parser.parse_args()
    for split in SPLITS:
        tables = []
        for source in args.sources:
            prefix, _, base = source.partition("=")
            if not base:
                parser.error(f"{source!r}: expected PREFIX=BASE_DIR")
            if not Path(f"{prefix}_{split}.csv").is_file():
                print(f"{prefix}_{split}.csv: not there; {split} has no rows from {prefix}")
                continue
            tables.append(absolute(read_datasplit(prefix, split), Path(base)))
        if not tables:
            continue
        seen: dict[str, int] = {}
        for table in tables:
            for name in set(table["Sequence"]):
                seen[name] = seen.get(name, 0) + 1
        clash = {name for name, count in seen.items() if count > 1}
        if clash:
            parser.error(f"sequence names in several sources: {', '.join(sorted(clash)[:5])}")
        if not all("Image" in t and t["Image"].map(lambda v: isinstance(v, str) and bool(v)).all() for t in tables):
            tables = [t.drop(columns=["Image"], errors="ignore") for t in tables]
        mixed = pd.concat(tables, ignore_index=True)
        if split == "val" and args.val_frames is not None:
            mixed = mixed.groupby("Sequence", sort=False, group_keys=False).head(args.val_frames).reset_index(drop=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        path = args.out.parent / f"{args.out.name}_{split}.csv"
        write_datasplit(path, mixed)
        print(f"{path}: {len(mixed)} rows from {len(tables)} DataSplits")


if __name__ == "__main__":
    main()
