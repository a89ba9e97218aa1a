"""Does the network see small movers better on a crop? An oracle probe (2026-12-08).

For every middle frame of every window, the network's best single segment (picked with the
ground truth, J on the flow's grid) on the whole frame against the same network run on a crop
around the ground truth's box (grown by CONTEXT on each axis, widened to the model's aspect,
clamped to the frame), the crop's flows resized to the model's input. Prints mean J per
sequence and overall, for the whole frame and each context.

    python experiments/zoom/oracle.py PREFIX SPLIT BASE_DIR [--contexts 2 3]
"""

from __future__ import annotations

import argparse

import numpy as np
from PIL import Image

from stseg_deploy.eval.davis_measures import region_similarity
from stseg_deploy.io.masks import read_mask_png
from stseg_deploy.preprocess import resize_flow
from stseg_deploy.runtime import load_model
from stseg_deploy.sources import sequences_from_datasplit
from stseg_deploy.zoo import resolve_model


def crop_box(mask: np.ndarray, context: float, aspect: float, min_side: int = 16) -> tuple[int, int, int, int]:
    """(top, left, height, width) of a box around ``mask``'s pixels grown ``context`` times
    on each axis and widened to ``aspect`` = width / height, inside the mask's frame."""
    H, W = mask.shape
    rows, cols = np.nonzero(mask)
    cy, cx = (rows.min() + rows.max() + 1) / 2, (cols.min() + cols.max() + 1) / 2
    h = max((rows.max() - rows.min() + 1) * context, min_side)
    w = max((cols.max() - cols.min() + 1) * context, min_side)
    if w / h < aspect:
        w = h * aspect
    else:
        h = w / aspect
    if h > H:
        h, w = H, H * aspect
    if w > W:
        w, h = W, W / aspect
    h, w = int(round(h)), int(round(w))
    top = int(round(min(max(cy - h / 2, 0), H - h)))
    left = int(round(min(max(cx - w / 2, 0), W - w)))
    return top, left, h, w


def upsample(proba: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(L, h, w) → (L, H, W) bilinear."""
    return np.stack([np.asarray(Image.fromarray(p, mode="F").resize((size[1], size[0]), Image.Resampling.BILINEAR)) for p in proba])


def best_j(labels: np.ndarray, gt: np.ndarray, n: int) -> float:
    """The best J of one of segments 0 … n-1 of ``labels`` against ``gt`` (non-empty)."""
    return max(region_similarity(labels == k, gt) for k in range(n))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("prefix")
    parser.add_argument("split")
    parser.add_argument("base_dir")
    parser.add_argument("--contexts", type=float, nargs="+", default=[2.0, 3.0])
    parser.add_argument("--model", default="mix-small")
    args = parser.parse_args()
    model = load_model(resolve_model(args.model)[0], threads=1)
    size = tuple(model.info.image_size)
    aspect = size[1] / size[0]
    rows = []
    for seq in sequences_from_datasplit(args.prefix, args.split, args.base_dir):
        flows = [f for _, f, _ in seq.read_flows()]
        H, W = flows[0].shape[1:]
        scores = {"full": [], **{c: [] for c in args.contexts}}
        for k in range(len(flows) - 2):
            c = k + 1
            if seq.masks[c] is None:
                continue
            gt = np.asarray(Image.fromarray(read_mask_png(seq.masks[c]).astype(np.uint8) * 255).resize((W, H), Image.Resampling.NEAREST)) > 0
            if not gt.any():
                continue
            window = np.stack([resize_flow(f, size, model.info.resize) for f in flows[k : k + 3]], axis=1)[None]
            proba = model.run(window)[0][:, 1]
            n = proba.shape[0]
            scores["full"].append(best_j(upsample(proba, (H, W)).argmax(0), gt, n))
            for context in args.contexts:
                top, left, h, w = crop_box(gt, context, aspect)
                crop = np.stack([resize_flow(f[:, top : top + h, left : left + w], size, model.info.resize) for f in flows[k : k + 3]], axis=1)[None]
                cp = model.run(crop)[0][:, 1]
                labels = np.full((H, W), n, dtype=np.int64)  # outside the crop: no segment
                labels[top : top + h, left : left + w] = upsample(cp, (h, w)).argmax(0)
                scores[context].append(best_j(labels, gt, n))
        row = {key: float(np.mean(v)) for key, v in scores.items()}
        rows.append((seq.name, len(scores["full"]), row))
        print(seq.name, len(scores["full"]), " ".join(f"{k}={v:.3f}" for k, v in row.items()), flush=True)
    keys = rows[0][2].keys()
    print("mean over sequences", " ".join(f"{k}={np.mean([r[2][k] for r in rows]):.3f}" for k in keys))


if __name__ == "__main__":
    main()
