"""Why the model puts objects that move differently into one segment, in numbers.

    python scripts/merge_study.py [--model davis-small] [--videos 4] [--objects 2 3] [--out merge_study.csv]

Synthetic flow videos with K objects each (``stseg_synth.flows.synth_sequence``, 180x320,
the size the issue's multi-object videos have) go through the model window by window at its
input size. For every window it records:

- the segments in use (argmax area above 1 % of the window) and the smallest one's area;
- whether two objects that move their own way share a segment (each has over half of its
  visible pixels in it): a merge;
- the training loss (coherence with θ fitted by the original's solver, plus the temporal
  regulariser at weight 1) of the model's hard label map, and of the same map with the
  merged objects split by the ground truth: the second object's pixels moved to the
  segment the model uses least. A negative split gain means the loss itself prefers the
  split, so the network fails to find a better optimum; a positive one means our motion
  model and regulariser explain two motions with one segment well enough that merging is
  the optimum.

The split is scored under several motion models and with the regulariser off, so the
table says which part of the objective makes merging pay. Needs torch (stseg_train).
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import torch

from stseg_deploy.preprocess import WINDOW, flow_windows, resize_flow, resize_labels
from stseg_deploy.runtime import load_model
from stseg_deploy.zoo import resolve_model
from stseg_synth.flows import sequence_rng, synth_sequence
from stseg_train.losses import total_loss
from stseg_train.motion import basis

MOTION_MODELS = ("QuadraticFullPT", "QuadraticFull", "AffinePT", "Affine")
SIZE = (180, 320)


def window_objects(ids: np.ndarray, labels: np.ndarray, n_objects: int) -> list[tuple[int, int, float]]:
    """For each object visible in the window: (object id, segment holding most of it, share).
    ids, labels: (T, h, w)."""
    out = []
    for obj in range(1, n_objects + 1):
        where = ids == obj
        if where.sum() < 10:
            continue
        counts = np.bincount(labels[where], minlength=labels.max() + 1)
        out.append((obj, int(counts.argmax()), float(counts.max() / where.sum())))
    return out


def hard(labels: np.ndarray, n_labels: int) -> torch.Tensor:
    """One-hot (1, L, T, h, w) float32 of a label map (T, h, w)."""
    return torch.from_numpy(np.eye(n_labels, dtype=np.float32)[labels].transpose(3, 0, 1, 2)[None].copy())


def loss_of(flow: torch.Tensor, proba: torch.Tensor, model_name: str, potts: float) -> float:
    grid = basis(model_name, *flow.shape[2:])
    loss, _, _ = total_loss(flow, proba, grid, solver="lbfgs-paper", regularisation={"EulerPottsl1R3": potts} if potts else {})
    return float(loss)


def study_window(flow_w: np.ndarray, proba: np.ndarray, ids: np.ndarray, n_objects: int) -> dict:
    """One window: flow (2, T, h, w), the model's proba (L, T, h, w), object ids (T, h, w)."""
    n_labels = proba.shape[0]
    labels = proba.argmax(axis=0)
    area = np.bincount(labels.ravel(), minlength=n_labels) / labels.size
    row = {"segments_in_use": int((area > 0.01).sum()), "smallest_area": float(area[area > 0].min())}
    held = window_objects(ids, labels, n_objects)
    by_segment: dict[int, list[int]] = {}
    for obj, segment, share in held:
        if share > 0.5:
            by_segment.setdefault(segment, []).append(obj)
    merged = [(seg, objs) for seg, objs in by_segment.items() if len(objs) > 1]
    row["objects_visible"] = len(held)
    row["merged"] = bool(merged)
    flow_t = torch.from_numpy(flow_w[None])
    if n_objects < n_labels:
        # The ground truth itself as a segmentation (background and each object a segment of
        # its own): is the true answer a lower loss than what the model found?
        for model_name in MOTION_MODELS:
            row[f"oracle_{model_name}"] = loss_of(flow_t, hard(ids, n_labels), model_name, 1.0) - loss_of(
                flow_t, hard(labels, n_labels), model_name, 1.0
            )
    if not merged:
        return row
    segment, objs = merged[0]
    spare = int(np.argsort(area)[0] if np.argsort(area)[0] != segment else np.argsort(area)[1])
    split = labels.copy()
    split[(ids == objs[1]) & (labels == segment)] = spare
    for model_name in MOTION_MODELS:
        for potts in (1.0, 0.0):
            merged_loss = loss_of(flow_t, hard(labels, n_labels), model_name, potts)
            split_loss = loss_of(flow_t, hard(split, n_labels), model_name, potts)
            row[f"gain_{model_name}_potts{int(potts)}"] = split_loss - merged_loss
    row["spare_area"] = float(area[spare])
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="bundled name or .onnx [default: the bundled default]")
    parser.add_argument("--videos", type=int, default=4, help="videos per object count")
    parser.add_argument("--frames", type=int, default=20)
    parser.add_argument("--objects", type=int, nargs="+", default=[2, 3])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("merge_study.csv"))
    args = parser.parse_args()
    model_file, _ = resolve_model(args.model)
    model = load_model(model_file, provider="cpu")
    h, w = model.info.image_size
    rows = []
    for n_objects in args.objects:
        for video in range(args.videos):
            seq = synth_sequence(sequence_rng(args.seed + n_objects, video), args.frames, SIZE, n_objects=n_objects)
            flows = np.stack([resize_flow(f, (h, w), model.info.resize) for f in seq.flows])
            ids = np.stack([resize_labels(m, (h, w)) for m in seq.layers])
            windows = flow_windows(flows)
            proba = model.run(windows)
            for k in range(len(windows)):
                row = study_window(windows[k], proba[k], ids[k : k + WINDOW], n_objects)
                rows.append({"objects": n_objects, "video": video, "window": k, **row})
            print(f"{n_objects} objects, video {video}: {sum(r['merged'] for r in rows[-len(windows):])} of {len(windows)} windows merged", file=sys.stderr, flush=True)
    columns = sorted({key for row in rows for key in row}, key=lambda c: (c not in ("objects", "video", "window"), c))
    with open(args.out, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    print("Motion models in the columns: " + ", ".join(MOTION_MODELS))
    print("| objects | windows | segments in use | merged windows | split lowers the loss (Potts 1) | split lowers the loss (Potts 0) "
          "| mean loss change of the split | ground truth lowers the loss | its mean loss change |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for n_objects in args.objects:
        part = [r for r in rows if r["objects"] == n_objects]
        merged = [r for r in part if r["merged"]]
        lower = [f"{np.mean([r[f'gain_{m}_potts1'] < 0 for r in merged]):.0%}" if merged else "-" for m in MOTION_MODELS]
        lower0 = [f"{np.mean([r[f'gain_{m}_potts0'] < 0 for r in merged]):.0%}" if merged else "-" for m in MOTION_MODELS]
        gain = [f"{np.mean([r[f'gain_{m}_potts1'] for r in merged]):+.4f}" if merged else "-" for m in MOTION_MODELS]
        oracle = [r for r in part if f"oracle_{MOTION_MODELS[0]}" in r]
        lower_gt = [f"{np.mean([r[f'oracle_{m}'] < 0 for r in oracle]):.0%}" if oracle else "-" for m in MOTION_MODELS]
        gain_gt = [f"{np.mean([r[f'oracle_{m}'] for r in oracle]):+.4f}" if oracle else "-" for m in MOTION_MODELS]
        print(f"| {n_objects} | {len(part)} | {np.mean([r['segments_in_use'] for r in part]):.2f} | {len(merged)} ({len(merged) / len(part):.0%}) "
              f"| {' / '.join(lower)} | {' / '.join(lower0)} | {' / '.join(gain)} | {' / '.join(lower_gt)} | {' / '.join(gain_gt)} |")
    print(f"rows: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
