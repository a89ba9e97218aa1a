"""How often label maps alternate row by row: the checkerboard symptom of strided transposed
convolutions.

For every sequence of an stseg-infer output folder, the share of pixels whose label differs
from both vertical neighbours while those two agree (a one-row stripe), and the same across
columns as a control: transposed 1x2x2 convolutions upsample rows and columns alike, so an
artefact of theirs shows as row stripes well above the column rate.

    python scripts/stripe_check.py PRED
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from stseg_deploy.output.layout import read_sequence_output


def stripe_rates(labels: np.ndarray) -> tuple[float, float]:
    """``labels: (T, H, W)`` → (share of one-row stripes, share of one-column stripes)."""
    rows = (labels[:, 1:-1] != labels[:, :-2]) & (labels[:, :-2] == labels[:, 2:])
    cols = (labels[:, :, 1:-1] != labels[:, :, :-2]) & (labels[:, :, :-2] == labels[:, :, 2:])
    return float(rows.mean()), float(cols.mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pred", type=Path, help="an stseg-infer --out folder")
    args = parser.parse_args()
    totals = []
    for folder in sorted(p.parent for p in args.pred.glob("*/sequence.json")):
        labels, _ = read_sequence_output(folder)
        rows, cols = stripe_rates(labels)
        totals.append((rows, cols))
        print(f"{folder.name:20s} rows {rows:.4%}  columns {cols:.4%}")
    if not totals:
        raise SystemExit(f"{args.pred}: no stseg-infer sequence outputs")
    rows, cols = np.mean(totals, axis=0)
    print(f"{'mean':20s} rows {rows:.4%}  columns {cols:.4%}  (ratio {rows / max(cols, 1e-12):.2f})")


if __name__ == "__main__":
    main()
