"""Keep a training run in git, compactly, so that a later session can resume it.

    python scripts/pack_run.py runs/mix1 experiments/mix1
    cp -r experiments/mix1 runs/mix1 && stseg-train ... --save-dir runs/mix1 --resume   # next session

Copies ``config.json``, ``metrics.csv`` and ``checkpoints/last.pt`` as they are (``--resume``
needs last.pt's optimiser and RNG states to continue exactly), and writes
``checkpoints/best.pt`` slim: the model, its config and metrics, weights in float16, no
optimiser (enough for ``stseg-export`` and ``--init``). results.csv is left out (it is
large and rebuilt by validation). Files are written whole (temp file, then rename).
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import torch

from stseg_deploy.io.atomic import atomic_write
from stseg_train.checkpoint import load_checkpoint, slim_payload


def copy(src: Path, dst: Path) -> None:
    with atomic_write(dst) as handle:
        handle.write(src.read_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="a stseg-train --save-dir")
    parser.add_argument("out", type=Path, help="the tracked folder to write")
    args = parser.parse_args()
    for name in ("config.json", "metrics.csv", "checkpoints/last.pt", "checkpoints/best.pt"):
        if not (args.run / name).is_file():
            sys.exit(f"{args.run / name}: missing; is {args.run} a stseg-train run with at least one validation?")
    (args.out / "checkpoints").mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "metrics.csv", "checkpoints/last.pt"):
        copy(args.run / name, args.out / name)
    buffer = io.BytesIO()
    torch.save(slim_payload(load_checkpoint(args.run / "checkpoints" / "best.pt"), half=True), buffer)
    with atomic_write(args.out / "checkpoints" / "best.pt") as handle:
        handle.write(buffer.getvalue())
    sizes = ", ".join(f"{p.relative_to(args.out)} {p.stat().st_size / 1e6:.1f} MB" for p in sorted(args.out.rglob("*")) if p.is_file())
    print(f"{args.out}: {sizes}")


if __name__ == "__main__":
    main()
