"""The inference-side quality table: stseg-infer's --tta and --refine settings on a
prepared DataSplit, each scored with stseg-eval --protocol davis2016.

    python scripts/refine_study.py --data prep/DAVIS2016 --base-dir prep --out runs/refine_study
    python scripts/refine_study.py ... --variants none:none flip:guided:32:0.01:4

A variant is ``TTA:REFINE[:RADIUS:EPS:SUBSAMPLE]`` (radius in pixels of a 480-row frame).
Each one runs the project's own commands (the bundled default model unless --model), one
after the other, and the table (J, F, and stseg-infer's model and refine seconds per
frame from each sequence.json) goes to OUT/study.csv and stdout as Markdown. Scores do not
depend on the machine's load; the seconds do, so time on a quiet machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

# Every setting of the README's table, in its order: both stages alone and together at the
# settings first tried, then the guided filter's radius and eps (with the flip) around the
# best, its subsample, and the refinement without the flip at the chosen filter.
DEFAULT_VARIANTS = [
    "none:none",
    "flip:none",
    "none:guided:32:0.01:4",
    *[f"flip:guided:{r}:{e}:4" for r in (16, 24, 32, 48) for e in (0.03, 0.01, 0.003)],
    *[f"flip:guided:{r}:{e}:4" for r in (32, 48, 64) for e in (0.001, 0.0003, 0.0001)],
    "flip:guided:64:0.003:4",
    "flip:guided:96:0.003:4",
    "flip:guided:96:0.001:4",
    *[f"flip:guided:48:0.003:{s}" for s in (2, 8)],
    "flip:guided:48:0.001:8",
    "flip:guided:64:0.0003:8",
    *[f"none:guided:{r}:{e}:4" for r, e in ((48, 0.003), (64, 0.0003), (64, 0.0001))],
]


def parse_variant(text: str) -> dict:
    parts = text.split(":")
    if len(parts) not in (2, 5) or parts[1] not in ("none", "guided") or (parts[1] == "none") != (len(parts) == 2):
        raise argparse.ArgumentTypeError(f"{text!r}: expected TTA:none or TTA:guided:RADIUS:EPS:SUBSAMPLE")
    variant = {"tta": parts[0], "refine": parts[1]}
    if parts[1] == "guided":
        variant.update(radius=float(parts[2]), eps=float(parts[3]), subsample=int(parts[4]))
    return variant


def infer_args(variant: dict) -> list[str]:
    args = ["--tta", variant["tta"], "--refine", variant["refine"]]
    if variant["refine"] == "guided":
        args += ["--guided-radius", str(variant["radius"]), "--guided-eps", str(variant["eps"]),
                 "--guided-subsample", str(variant["subsample"])]
    return args


def run_variant(variant: dict, args, out: Path) -> dict:
    split = ["--data-file", args.data, "--split", args.split, "--base-dir", args.base_dir]
    model = ["--model", args.model] if args.model else []
    started = time.perf_counter()
    subprocess.run(["stseg-infer", *model, *split, "--out", str(out), *infer_args(variant)], check=True, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    scored = subprocess.run(["stseg-eval", str(out), *split, "--protocol", "davis2016"], check=True, capture_output=True, text=True)
    match = re.fullmatch(r"J=([0-9.]+) F=([0-9.]+)", scored.stdout.strip().splitlines()[-1])
    if match is None:
        raise RuntimeError(f"stseg-eval printed no J=... F=... line:\n{scored.stdout}")
    frames, model_s, refine_s = 0, 0.0, 0.0
    for record_file in sorted(out.glob("*/sequence.json")):
        record = json.loads(record_file.read_text())
        frames += len(record["frames"])
        model_s += record["seconds"]["model"]
        refine_s += record["seconds"].get("refine", 0.0)
    return {
        **{k: variant.get(k, "") for k in ("tta", "refine", "radius", "eps", "subsample")},
        "J": float(match[1]), "F": float(match[2]), "frames": frames,
        "infer_s": round(seconds, 1), "model_ms_per_frame": round(model_s / frames * 1e3, 1),
        "refine_ms_per_frame": round(refine_s / frames * 1e3, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="DataSplit prefix (stseg-prepare's OUT/DAVIS2016)")
    parser.add_argument("--base-dir", required=True)
    parser.add_argument("--split", default="val")
    parser.add_argument("--model", default=None, help="model file or bundled name [default: the bundled default]")
    parser.add_argument("--out", required=True, type=Path, help="folder for each variant's outputs and study.csv")
    parser.add_argument("--variants", nargs="+", type=parse_variant, default=[parse_variant(v) for v in DEFAULT_VARIANTS])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for number, variant in enumerate(args.variants):
        name = "_".join(str(v) for v in variant.values())
        row = run_variant(variant, args, args.out / name)
        rows.append(row)
        print(f"[{number + 1}/{len(args.variants)}] {name}: J={row['J']:.3f} F={row['F']:.3f} ({row['infer_s']} s)", file=sys.stderr, flush=True)
        with open(args.out / "study.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    print("| tta | refine | radius (px at 480 rows) | eps | subsample | J | F | model ms/frame | refine ms/frame |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['tta']} | {r['refine']} | {r['radius']} | {r['eps']} | {r['subsample']} | {r['J']:.3f} | {r['F']:.3f} "
              f"| {r['model_ms_per_frame']} | {r['refine_ms_per_frame']} |")


if __name__ == "__main__":
    main()
