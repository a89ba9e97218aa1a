"""Learning curves: score training checkpoints end to end with the project's own commands.

    python scripts/score_checkpoints.py runs/RUN/snapshots/*.pt --out curve.csv \
        --dev dev480/DAVIS2016=dev480 --train t240/DAVIS2016=t240@train \
        --objects mo_eval/DataSplit/Synth=mo_eval

Each checkpoint is exported (stseg-export), then run with stseg-infer's defaults on the
split of each DataSplit given (``PREFIX=BASE_DIR[@SPLIT]``, val unless said) and scored with
stseg-eval: ``--dev`` (the development sequences) and ``--train`` (the training sequences,
seen without labels in training) with ``--protocol davis2016`` (J and F; ``all27_J`` and
``all27_F`` pool both over their sequences), ``--objects`` with ``--objects`` (binary J and
J_objects). ``--infer-args`` go to every stseg-infer call. One CSV row per checkpoint, with its training step, epoch and minutes, so a
run is chosen by its curve, not by one point. Rows already in ``--out`` are kept (a
checkpoint is scored once), and the CSV is rewritten whole after each checkpoint.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch

from stseg_deploy.io.atomic import atomic_write

COLUMNS = ["checkpoint", "step", "epoch", "minutes", "dev_J", "dev_F", "train_J", "train_F", "all27_J", "all27_F", "objects_binary_J", "J_objects"]


def _bin(name: str) -> str:
    return str(Path(sys.executable).with_name(name))


def _split(value: str) -> tuple[str, str, str]:
    value, _, split = value.rpartition("@") if "@" in value else (value, "", "val")
    prefix, sep, base = value.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected PREFIX=BASE_DIR[@SPLIT], got {value!r}")
    return prefix, base, split


def _infer_and_eval(model: Path, data: tuple[str, str, str], out: Path, eval_args: list[str], infer_args: list[str]) -> dict:
    prefix, base, split = data
    where = ["--data-file", prefix, "--split", split, "--base-dir", base]
    subprocess.run([_bin("stseg-infer"), "--model", str(model), *where, "--out", str(out), *infer_args], check=True, capture_output=True, text=True)
    subprocess.run([_bin("stseg-eval"), str(out), *where, *eval_args], check=True, capture_output=True, text=True)
    return json.loads((out / "eval.json").read_text())


def _sequence_scores(out: Path) -> pd.DataFrame:
    summary = pd.read_csv(out / "summary.csv")
    return summary[(summary["status"] == "scored") & (summary["sequence"] != "overall")][["J_mean", "F_mean"]]


def score(checkpoint: Path, dev, objects, train=None, infer_args: list[str] = ()) -> dict:
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
        pooled = []
        for name, data in (("dev", dev), ("train", train)):
            if data is not None:
                result = _infer_and_eval(model, data, Path(tmp) / name, ["--protocol", "davis2016"], list(infer_args))
                row[f"{name}_J"], row[f"{name}_F"] = result["davis2016"]["J_mean"], result["davis2016"]["F_mean"]
                pooled.append(_sequence_scores(Path(tmp) / name))
        if len(pooled) == 2:
            both = pd.concat(pooled)
            row["all27_J"], row["all27_F"] = float(both["J_mean"].mean()), float(both["F_mean"].mean())
        if objects is not None:
            result = _infer_and_eval(model, objects, Path(tmp) / "objects", ["--objects"], list(infer_args))
            row["objects_binary_J"], row["J_objects"] = result["overall_j"], result["objects"]["J_mean"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", type=Path, nargs="+")
    parser.add_argument("--out", type=Path, required=True, help="CSV to write (rows already there are kept)")
    parser.add_argument("--dev", type=_split, help="PREFIX=BASE_DIR[@SPLIT] of a DataSplit with binary masks (DAVIS development)")
    parser.add_argument("--train", type=_split, help="PREFIX=BASE_DIR[@SPLIT] of the DAVIS training sequences")
    parser.add_argument("--objects", type=_split, help="PREFIX=BASE_DIR[@SPLIT] of a DataSplit with object-id masks (stseg-synth)")
    parser.add_argument("--infer-args", default="", help="stseg-infer options for every run, as one string")
    args = parser.parse_args()
    if args.dev is None and args.objects is None and args.train is None:
        parser.error("give --dev, --train, --objects or several")
    table = (pd.read_csv(args.out) if args.out.exists() else pd.DataFrame()).reindex(columns=COLUMNS)
    done = set(table["checkpoint"])
    for checkpoint in args.checkpoints:
        if str(checkpoint) in done:
            continue
        row = score(checkpoint, args.dev, args.objects, args.train, shlex.split(args.infer_args))
        print(", ".join(f"{k}={v}" for k, v in row.items()), flush=True)
        table = pd.concat([table, pd.DataFrame([row])], ignore_index=True).sort_values(["step", "checkpoint"])
        with atomic_write(args.out, "w") as handle:
            table.to_csv(handle, index=False, columns=COLUMNS)


if __name__ == "__main__":
    main()
