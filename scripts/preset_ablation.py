"""Measure, on real flow, what each item where stseg differs from the original changes.

Every run trains the ``small`` preset for the same number of steps (so a slower solver is
not also a shorter training) with one item switched to the original's, then exports its
best checkpoint (lowest validation loss), segments the validation split and scores it with
the DAVIS-2016 protocol, all with the project's own commands. Prints a Markdown table (J,
F, training minutes) and writes it to OUT/ablation.csv; runs already scored are reused.

    python scripts/preset_ablation.py --data PREP/DAVIS2016 --base-dir PREP --out runs/ablation \\
        --steps 1000 --variants default norm solver noise resize

PREP comes from ``stseg-prepare davis`` (its train split trains, its val split is scored).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# One item of the README's table each: the option that switches it to the original's.
VARIANTS: dict[str, list[str]] = {
    "default": [],
    "norm": ["--norm", "instance3d"],  # a
    "solver": ["--solver", "lbfgs-paper"],  # b
    "noise": ["--input-noise-mode", "batch"],  # c
    "resize": ["--resize", "plain"],  # d
    "potts": ["--potts-mask", "all"],  # e
    "all": ["--norm", "instance3d", "--solver", "lbfgs-paper", "--input-noise-mode", "batch",
            "--resize", "plain", "--potts-mask", "all"],
}


def _tool(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _run(command: list[str], log: Path) -> None:
    with open(log, "a", encoding="utf-8") as handle:
        handle.write("$ " + " ".join(command) + "\n")
        handle.flush()
        subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, check=True)


def _last_line(path: Path) -> str:
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def run_variant(name: str, seed: int, args: argparse.Namespace) -> dict:
    tag = f"{name}-s{seed}"
    root = args.out / tag
    result_file = root / "result.json"
    if result_file.exists():
        return json.loads(result_file.read_text())
    if root.exists():
        shutil.rmtree(root)  # an unfinished run: start it again
    root.mkdir(parents=True)
    log = root / "log.txt"
    started = time.monotonic()
    _run([_tool("stseg-train"), "--preset", "small", "--data-file", args.data, "--base-dir", args.base_dir,
          "--save-dir", str(root / "run"), "--max-steps", str(args.steps), "--epochs", "1000",
          "--seed", str(seed), "--workers", "0", *VARIANTS[name]], log)
    train_minutes = (time.monotonic() - started) / 60
    model = root / "best.onnx"
    _run([_tool("stseg-export"), str(root / "run" / "checkpoints" / "best.pt"), "--onnx", str(model)], log)
    pred = root / "pred"
    _run([_tool("stseg-infer"), "--model", str(model), "--data-file", args.data, "--split", "val",
          "--base-dir", args.base_dir, "--out", str(pred), "--threads", str(args.threads)], log)
    score_log = root / "eval.txt"
    _run([_tool("stseg-eval"), str(pred), "--data-file", args.data, "--split", "val", "--base-dir",
          args.base_dir, "--protocol", "davis2016"], score_log)
    j_part, f_part = _last_line(score_log).split()
    result = {
        "variant": name, "seed": seed, "options": " ".join(VARIANTS[name]) or "(none)",
        "steps": args.steps, "J": float(j_part.split("=")[1]), "F": float(f_part.split("=")[1]),
        "train_minutes": round(train_minutes, 1),
    }
    result_file.write_text(json.dumps(result, indent=2) + "\n")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="DataSplit prefix (PREP/DAVIS2016)")
    parser.add_argument("--base-dir", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[123])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--variants", nargs="+", default=["default", "norm", "solver", "noise", "resize"],
                        choices=sorted(VARIANTS))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results = [run_variant(name, seed, args) for seed in args.seeds for name in args.variants]
    with open(args.out / "ablation.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(results[0]))
        writer.writeheader()
        writer.writerows(results)
    print("| variant | option | seed | J | F | training minutes |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        print(f"| {r['variant']} | `{r['options']}` | {r['seed']} | {r['J']:.3f} | {r['F']:.3f} | {r['train_minutes']} |")


if __name__ == "__main__":
    main()
