"""More test-time transforms than the left-right flip? A probe on the network alone (2026-12-08).

Each window also runs transformed by the flow field's symmetries, whose segmentation is the
same up to the transform: left-right mirror (h), up-down mirror (v), and the flow's sign (n:
every vector negated, which a parametric motion model fits equally well). Each transformed
run's probabilities are transformed back, their segments matched to the plain run's (as
``stseg_deploy.stages.tta.flip_average`` does) and averaged. Scored per frame by the best
single segment against the ground truth (J on the ground truth's grid, the probabilities
upsampled to it; middle frame of each window),
mean over sequences, for each set of transforms.

    python experiments/tta/probe.py PREFIX SPLIT BASE_DIR
"""

from __future__ import annotations

import argparse
import itertools

import numpy as np
from PIL import Image

from stseg_deploy.eval.davis_measures import region_similarity
from stseg_deploy.io.masks import read_mask_png
from stseg_deploy.preprocess import resize_flow
from stseg_deploy.runtime import load_model
from stseg_deploy.sources import sequences_from_datasplit
from stseg_deploy.stages.tta import align_segments
from stseg_deploy.zoo import resolve_model

TRANSFORMS = ("h", "v", "n")
SETS = {"plain": (), "h": ("h",), "h+v": ("h", "v"), "h+n": ("h", "n"), "h+v+n": ("h", "v", "n")}


def transform(windows: np.ndarray, key: frozenset) -> np.ndarray:
    """windows (B, 2, T, h, w) under the transforms in ``key`` (its own inverse on flows)."""
    out = np.array(windows, copy=True)
    if "h" in key:
        out = out[..., ::-1].copy()
        out[:, 0] *= -1
    if "v" in key:
        out = out[..., ::-1, :].copy()
        out[:, 1] *= -1
    if "n" in key:
        out *= -1
    return out


def back(proba: np.ndarray, key: frozenset) -> np.ndarray:
    """Probabilities (B, L, T, h, w) of a transformed run brought back to the plain grid."""
    if "h" in key:
        proba = proba[..., ::-1]
    if "v" in key:
        proba = proba[..., ::-1, :]
    return proba


def upsample(proba: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(p), mode="F").resize((size[1], size[0]), Image.Resampling.BILINEAR)) for p in proba])


def best_j(labels: np.ndarray, gt: np.ndarray, n: int) -> float:
    return max(region_similarity(labels == k, gt) for k in range(n))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("prefix")
    parser.add_argument("split")
    parser.add_argument("base_dir")
    parser.add_argument("--model", default="mix-small")
    args = parser.parse_args()
    model = load_model(resolve_model(args.model)[0], threads=1)
    size = tuple(model.info.image_size)
    keys = [frozenset(c) for r in range(len(TRANSFORMS) + 1) for c in itertools.combinations(TRANSFORMS, r)]
    rows = []
    for seq in sequences_from_datasplit(args.prefix, args.split, args.base_dir):
        flows = [resize_flow(f, size, model.info.resize) for _, f, _ in seq.read_flows()]
        windows, targets = [], []
        for k in range(len(flows) - 2):
            if seq.masks[k + 1] is None:
                continue
            gt = read_mask_png(seq.masks[k + 1]) > 0
            if not gt.any():
                continue
            windows.append(np.stack(flows[k : k + 3], axis=1))
            targets.append(gt)
        windows = np.stack(windows)
        runs = {key: back(model.run(transform(windows, key)), key) for key in keys}
        plain = runs[frozenset()]
        aligned = {}
        for key, proba in runs.items():
            perm = align_segments(plain, proba)
            aligned[key] = np.take_along_axis(proba, perm[:, :, None, None, None], axis=1)
        scores = {name: [] for name in SETS}
        for name, members in SETS.items():
            chosen = [k for k in keys if k <= frozenset(members)]
            mean = np.mean([aligned[k] for k in chosen], axis=0)
            for b, gt in enumerate(targets):
                scores[name].append(best_j(upsample(mean[b, :, 1], gt.shape).argmax(0), gt, mean.shape[1]))
        row = {name: float(np.mean(v)) for name, v in scores.items()}
        rows.append(row)
        print(seq.name, len(targets), " ".join(f"{k}={v:.3f}" for k, v in row.items()), flush=True)
    print("mean over sequences", " ".join(f"{k}={np.mean([r[k] for r in rows]):.3f}" for k in SETS))


if __name__ == "__main__":
    main()
