"""Experiment: a copy of a prepared split whose flows have each frame's dominant motion taken
out: one quadratic motion (6 terms per component, coordinates in [-1, 1]) fitted robustly to
the flow on a grid of about 60 rows (9 L1 reweighted fits, then 6 of Tukey's biweight, as
stseg_deploy.stages.foreground fits it), evaluated at every pixel and subtracted.

    python compensate.py PREPARED OUT     # e.g. dev480 comp/dev480
"""

import shutil
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from stseg_deploy.io.flowio import read_flo, write_flow


def basis(h: int, w: int, step: int) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    ys, xs = np.arange(0, h, step), np.arange(0, w, step)
    y, x = np.meshgrid((ys + 0.5) / h * 2 - 1, (xs + 0.5) / w * 2 - 1, indexing="ij")
    x, y = x.ravel(), y.ravel()
    return np.stack([np.ones_like(x), x, y, x * x, x * y, y * y], 1), (ys, xs)


def fit(a: np.ndarray, u: np.ndarray, v: np.ndarray, l1_fits: int = 9, tukey_fits: int = 6):
    def solve(weights):
        aw = a * weights[:, None]
        normal = a.T @ aw + 1e-9 * np.eye(a.shape[1])
        pu, pv = np.linalg.solve(normal, aw.T @ u), np.linalg.solve(normal, aw.T @ v)
        return pu, pv, np.abs(u - a @ pu) + np.abs(v - a @ pv)

    pu, pv, r = solve(np.ones(len(u)))
    for _ in range(l1_fits - 1):
        pu, pv, r = solve(1 / np.maximum(r, 0.05))
    for _ in range(tukey_fits):
        cutoff = 4.685 * max(1.4826 * np.median(r), 1e-6)
        pu, pv, r = solve(np.where(r < cutoff, (1 - (r / cutoff) ** 2) ** 2, 0) + 1e-6)
    return pu, pv


def compensate(paths: tuple[Path, Path]) -> None:
    src, dst = paths
    flow = read_flo(src)
    h, w = flow.shape[1:]
    a, (ys, xs) = basis(h, w, max(1, h // 60))
    sub = flow[:, ys][:, :, xs].astype(np.float64)
    pu, pv = fit(a, sub[0].ravel(), sub[1].ravel())
    full, _ = basis(h, w, 1)
    out = flow.copy()
    out[0] -= (full @ pu).reshape(h, w).astype(np.float32)
    out[1] -= (full @ pv).reshape(h, w).astype(np.float32)
    dst.parent.mkdir(parents=True, exist_ok=True)
    write_flow(dst, out)


if __name__ == "__main__":
    src_root, dst_root = Path(sys.argv[1]), Path(sys.argv[2])
    jobs = [(p, dst_root / p.relative_to(src_root)) for p in sorted(src_root.rglob("*.flo"))]
    dst_root.mkdir(parents=True, exist_ok=True)
    # The DataSplit CSVs only: stseg-prepare.json would name the source's flow engine.
    for item in src_root.glob("*.csv"):
        shutil.copy(item, dst_root / item.name)
    with ProcessPoolExecutor(2) as pool:
        list(pool.map(compensate, jobs, chunksize=16))
    print(f"{len(jobs)} flows compensated into {dst_root}")
