"""Learning curves: score training checkpoints end to end with the project's own commands.

    python scripts/score_checkpoints.py runs/RUN/snapshots/*.pt --out curve.csv \
        --dev prep/DAVIS2016=prep --objects mo_eval/DataSplit/Synth=mo_eval

Each checkpoint is exported (stseg-export), then run with stseg-infer's defaults on the
validation split of each DataSplit given (``PREFIX=BASE_DIR``) and scored with stseg-eval:
``--dev`` with ``--protocol davis2016`` (J and F), ``--objects`` with ``--objects`` (binary J
and J_objects). One CSV row per checkpoint, with its training step, epoch and minutes, so a
run is chosen by its curve, not by one point. Rows already in ``--out`` are kept (a
checkpoint is scored once), and the CSV is rewritten whole after each checkpoint.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from stseg_deploy.io.atomic import atomic_write

COLUMNS = ["checkpoint", "step", "epoch", "minutes", "dev_J", "dev_F", "objects_binary_J", "J_objects"]


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _split(value: str) -> tuple[str, str]:
    prefix, sep, base = value.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected PREFIX=BASE_DIR, got {value!r}")
    return prefix, base


def _infer_and_eval(model: Path, data: tuple[str, str], out: Path, eval_args: list[str]) -> dict:
    prefix, base = data
    where = ["--data-file", prefix, "--split", "val", "--base-dir", base]
    subprocess.run([_bin("stseg-infer"), "--model", str(model), *where, "--out", str(out)], check=True, capture_output=True, text=True)
    subprocess.run([_bin("stseg-eval"), str(out), *where, *eval_args], check=True, capture_output=True, text=True)
    return json.loads((out / "eval.json").read_text())


def score(checkpoint: Path, dev: tuple[str, str] | None, objects: tuple[str, str] | None) -> dict:
    payload = torch.load(checkpoint, map_location="cpu", weights_only=False)
    row = {
        "checkpoint": str(checkpoint),
        "step": payload.get("global_step"),
        "epoch": payload.get("epoch"),
        "minutes": round(float(payload.get("seconds", float("nan"))) / 60, 1),
    }
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model.onnx"
        subprocess.run([_bin("stseg-export"), str(checkpoint), "--onnx", str(model)], check=True, capture_output=True, text=True)
        if dev is not None:
            result = _infer_and_eval(model, dev, Path(tmp) / "dev", ["--protocol", "davis2016"])
            row["dev_J"], row["dev_F"] = result["davis2016"]["J_mean"], result["davis2016"]["F_mean"]
        if objects is not None:
            result = _infer_and_eval(model, objects, Path(tmp) / "objects", ["--objects"])
            row["objects_binary_J"], row["J_objects"] = result["overall_j"], result["objects"]["J_mean"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write (rows already there are kept)")
    parser.add_argument("--dev", type=_split, help="PREFIX=BASE_DIR of a DataSplit with binary masks (DAVIS)")
    parser.add_argument("--objects", type=_split, help="PREFIX=BASE_DIR of a DataSplit with object-id masks (stseg-synth)")
    args = parser.parse_args()
    if args.dev is None and args.objects is None:
        parser.error("give --dev, --objects or both")
    table = pd.read_csv(args.out) if args.out.exists() else pd.DataFrame(columns=COLUMNS)
    done = set(table["checkpoint"])
    for checkpoint in args.checkpoints:
        if str(checkpoint) in done:
            continue
        row = score(checkpoint, args.dev, args.objects)
        print(", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True).sort_values(["step", "checkpoint"])
        with atomic_write(args.out, "w") as handle:
            table.to_csv(handle, index=False, columns=COLUMNS)


if __name__ == "__main__":
    main()
