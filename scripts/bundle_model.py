"""Put a trained model into the package: the ONNX export, a slim training checkpoint, a card.

    python scripts/bundle_model.py CHECKPOINT --name davis-small --pred PRED --data "..." \
        --command "stseg-prepare ..." --command "stseg-train ..." --hardware "..."

When stseg-infer's default stages change, a bundled model's scores are redone without
touching its export: ``python scripts/bundle_model.py --rescore --name NAME --pred PRED
[--objects-pred OBJ] [--notes ...]`` rewrites the card's scores, inference settings, CPU
times (and notes, when given), and keeps the rest.

PRED is an stseg-infer output of this checkpoint's ONNX export on the held-out sequences,
scored with ``stseg-eval PRED ... --protocol davis2016`` (its eval.json gives J and F, its
sequence.json files the CPU time per frame). Writes stseg_deploy/models/NAME.{onnx,json} and
stseg_train/pretrained/NAME.pt: the checkpoint keeps the weights, architecture and
resolved config (all --init needs), not the optimiser and random states.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

from stseg_deploy.io.atomic import atomic_write
from stseg_deploy.runtime import load_model
from stseg_deploy.stages.linker import LinkSettings
from stseg_deploy.zoo import MODELS_DIR
from stseg_train.checkpoint import load_checkpoint, slim_payload
from stseg_train.pretrained import PRETRAINED_DIR


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint", type=Path, nargs="?", help="the trained checkpoint (not with --rescore)")
    parser.add_argument("--name", required=True)
    parser.add_argument("--pred", type=Path, required=True, help="stseg-infer output scored with --protocol davis2016")
    parser.add_argument("--rescore", action="store_true", help="only redo the scores of the bundled model NAME's card")
    parser.add_argument("--data", help="What it was trained on, with credit and licence.")
    parser.add_argument("--command", action="append", help="Exact commands that made it, in order.")
    parser.add_argument("--hardware", help="where the CPU times (from PRED) were measured")
    parser.add_argument("--notes", help="the card's notes (with --rescore: kept unless given)")
    parser.add_argument("--objects-pred", type=Path, help="stseg-infer output on multi-object videos scored with "
                        "stseg-eval --objects: its J_objects and binary J go on the card")
    parser.add_argument("--data-marker", type=Path, help="stseg-prepare.json of the training data: its flow recipe "
                        "replaces the checkpoint's data_flow (for checkpoints from before they recorded it, or data "
                        "re-prepared with a recipe that gives the same flows, e.g. --flow-scale auto for 0.5 at 480p)")
    args = parser.parse_args()
    if args.rescore:
        if args.checkpoint is not None or args.data or args.command:
            parser.error("--rescore keeps the export and its training record: give no CHECKPOINT, --data or --command")
        _rescore(args)
        return
    missing = [name for name, value in (("CHECKPOINT", args.checkpoint), ("--data", args.data),
                                         ("--command", args.command), ("--hardware", args.hardware)) if not value]
    if missing:
        parser.error(f"bundling needs {', '.join(missing)}")

    payload = load_checkpoint(args.checkpoint)
    if args.data_marker is not None:
        from stseg_deploy.datasets.prepare import read_prepared_flow

        flow = read_prepared_flow(args.data_marker)
        if flow is None:
            sys.exit(f"{args.data_marker}: no flow recipe in it (not an stseg-prepare marker, or --flows data)")
        if payload.get("data_flow") not in (None, flow):
            print(f"note: {args.checkpoint} records data flow {payload['data_flow']}; using {flow} from {args.data_marker}")
        payload["data_flow"] = flow
    onnx_path = MODELS_DIR / f"{args.name}.onnx"
    MODELS_DIR.mkdir(parents=True, exist_ok=True)
    PRETRAINED_DIR.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        slim = Path(tmp) / f"{args.name}.pt"
        torch.save(slim_payload(payload), slim)
        # Exported from the slim copy, so that the bundled pair is checked to agree.
        subprocess.run([str(Path(sys.executable).parent / "stseg-export"), str(slim), "--onnx", str(onnx_path)], check=True)
        (PRETRAINED_DIR / f"{args.name}.pt").write_bytes(slim.read_bytes())

    info = load_model(onnx_path).info
    config = payload["config"]
    card = {
        "name": args.name,
        "file": onnx_path.name,
        "checkpoint": f"stseg_train/pretrained/{args.name}.pt",
        "data": args.data,
        "commands": args.command,
        "hardware": args.hardware,
        "steps": payload["global_step"],
        "epochs_completed": payload["epoch"],
        "training_minutes": round(payload["seconds"] / 60, 1),
        "best_val_loss": payload["best_val_loss"],
        "preprocessing": {
            "input": "flow (B, 2, 3, H, W) float32, pixels at the model's input size: each flow is resized "
                     "bilinearly to (H, W) with its vectors scaled to the new grid, as stseg-infer does",
            "image_size": list(info.image_size),
            "n_labels": info.n_labels,
            "normalisation": info.normalisation,
            "flow": None if info.flow is None else info.flow.record(),
        },
        "training": {k: config[k] for k in ("image_size", "n_labels", "features_start", "num_layers", "batch_size", "lr",
                                            "param_model", "flow_augmentation", "input_noise", "regularisation", "seed")},
        **_scored(args.pred, args.objects_pred, args.hardware),
        "notes": args.notes or "",
    }
    with atomic_write(MODELS_DIR / f"{args.name}.json", "w") as handle:  # the one card, beside the export
        json.dump(card, handle, indent=2)
    print(f"bundled {args.name}: {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB), J={card['scores']['J_mean']} F={card['scores']['F_mean']}")


def _rescore(args: argparse.Namespace) -> None:
    """The bundled model's card with its scores, inference settings and CPU times redone."""
    card_path = MODELS_DIR / f"{args.name}.json"
    if not card_path.is_file():
        sys.exit(f"{card_path}: no bundled model {args.name!r} to rescore")
    if not args.hardware:
        sys.exit("--rescore takes the CPU times from PRED: say with --hardware where they were measured")
    card = json.loads(card_path.read_text())
    bundled_sha = hashlib.sha256((MODELS_DIR / card["file"]).read_bytes()).hexdigest()
    for pred in (args.pred, args.objects_pred):
        if pred is None:
            continue
        records = sorted(pred.glob("*/sequence.json"))
        if not records:
            sys.exit(f"{pred}: no sequence outputs")
        settings = set()
        for record_path in records:
            record = json.loads(record_path.read_text())
            sha = (record.get("model_file") or {}).get("sha256")
            if sha != bundled_sha:
                sys.exit(f"{record_path}: made with another model file (sha256 {str(sha)[:12]}), not {card['file']} ({bundled_sha[:12]})")
            settings.add(json.dumps(record["settings"], sort_keys=True))
        if len(settings) > 1:
            sys.exit(f"{pred}: its sequences were made with different settings; score one setting at a time")
    scored = _scored(args.pred, args.objects_pred, args.hardware)
    if args.objects_pred is None and "objects" in card["scores"]:
        sys.exit(f"{card_path}: the card has multi-object scores; give --objects-pred to redo them too")
    card.update(scored)
    if args.notes is not None:
        card["notes"] = args.notes
    with atomic_write(card_path, "w") as handle:
        json.dump(card, handle, indent=2)
    print(f"rescored {args.name}: J={card['scores']['J_mean']} F={card['scores']['F_mean']}"
          + (f" J_objects={card['scores']['objects']['J_objects']}" if "objects" in card["scores"] else ""))


def _scored(pred: Path, objects_pred: Path | None, hardware: str) -> dict:
    """The card's scores, inference settings and CPU times from a scored stseg-infer output
    of the held-out sequences (and, optionally, of multi-object videos)."""
    scores = json.loads((pred / "eval.json").read_text())
    if scores.get("protocol") != "davis2016" or not scores["stseg"]["complete"]:
        sys.exit(f"{pred / 'eval.json'}: not a complete stseg-eval --protocol davis2016 result")
    summary = {row["sequence"]: row for row in _csv_rows(pred / "summary.csv")}
    frames = model_s = total_s = 0.0
    for record_path in sorted(pred.glob("*/sequence.json")):
        record = json.loads(record_path.read_text())
        frames += len(record["frames"])
        model_s += record["seconds"]["model"]
        total_s += record["seconds"]["total"]
    out = {
        "scores": {
            "on": f"{', '.join(scores['sequences']['scored'])} (held out from training), optimax per cut-size chunk, --protocol davis2016",
            "J_mean": round(float(summary["overall"]["J_mean"]), 3),
            "F_mean": round(float(summary["overall"]["F_mean"]), 3),
            "J_recall": round(float(summary["overall"]["J_recall"]), 3),
            "per_sequence": {k: {"J": round(float(v["J_mean"]), 3), "F": round(float(v["F_mean"]), 3)}
                             for k, v in summary.items() if k != "overall"},
        },
        "inference": {k: v for k, v in _settings(pred).items() if k in STAGE_KEYS},
        "cpu_ms_per_frame": {"model": round(1000 * model_s / frames, 1), "pipeline": round(1000 * total_s / frames, 1),
                             "measured": hardware},
    }
    if objects_pred is not None:
        objects = json.loads((objects_pred / "eval.json").read_text())
        if not objects.get("objects") or not objects["stseg"]["complete"]:
            sys.exit(f"{objects_pred / 'eval.json'}: not a complete stseg-eval --objects result")
        out["scores"]["objects"] = {
            "on": f"{len(objects['sequences']['scored'])} multi-object videos, {objects['objects']['n_objects']} objects, "
                  "stseg-eval --objects (each object matched to a segment of its own, per cut-size chunk)",
            "J_objects": round(float(objects["objects"]["J_mean"]), 3),
            "binary_J": round(float(objects["overall_j"]), 3),
            "inference": {k: v for k, v in _settings(objects_pred).items() if k in STAGE_KEYS},
        }
    return out


# Linking's keys come from its settings, so a new linking option reaches the card by itself.
STAGE_KEYS = (*LinkSettings().record(), "tta", "refine", "guided", "split", "motion_split", "carry", "temporal_carry")


def _settings(pred: Path) -> dict:
    """The stseg-infer settings of an output folder's first sequence."""
    record_path = next(iter(sorted(pred.glob("*/sequence.json"))), None)
    if record_path is None:
        sys.exit(f"{pred}: no sequence outputs")
    return json.loads(record_path.read_text())["settings"]


def _csv_rows(path: Path) -> list[dict]:
    import csv

    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


if __name__ == "__main__":
    main()
