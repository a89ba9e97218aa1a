"""The reclaim's first prototype, replayed offline on the renamed windows recwin.py kept: a
segment that appears from almost nothing takes the label of one that vanished where it appears
(its last mask dilated), from that window to the chunk's end (the two labels swapped). Its
thresholds come from the environment, to see how much each one matters:

    MIN=0.005 NEW=0.2 GONE=0.2 H=8 R=3 OV=0.5 python experiments/linking/reclaim_offline.py out/rw_pause2 out/rc_pause2
    stseg-eval out/rc_pause2 --data-file mo_pause2/DataSplit/Synth --split val --base-dir mo_pause2 --objects

It rewrites labels.npy and removes the PNGs, so stseg-eval scores labels.npy. Outputs without
refinement only. An experiment's tool; the package's version is stseg_deploy.stages.reclaim.
"""
import os
import sys

import cv2
import numpy as np
from vote_offline import replayed  # this folder's; run as a script from anywhere

from stseg_kernels import unravel_windows

MIN = float(os.environ.get("MIN", "0.005"))  # substantial area, share of the frame
NEW = float(os.environ.get("NEW", "0.2"))  # the new label before: below NEW x its area now
GONE = float(os.environ.get("GONE", "0.2"))  # the vanished label now: below GONE x its recent largest
H = int(os.environ.get("H", "8"))  # windows back to remember a vanished label
R = int(os.environ.get("R", "3"))  # dilation, model pixels
OV = float(os.environ.get("OV", "0.5"))  # share of the new segment inside the dilated old one


def reclaim(windows: np.ndarray, cut: int | None, n_labels: int) -> tuple[np.ndarray, int]:
    """windows (N, 3, h, w) renamed → the same with the reclaim's swaps, and how many."""
    n = windows.shape[0]
    win = windows.copy()
    size = win.shape[2] * win.shape[3]

    def chunk(w: int) -> int:
        return w // cut if cut else 0

    kernel = np.ones((2 * R + 1, 2 * R + 1), np.uint8)
    swaps = 0
    for w in range(1, n):
        c0 = chunk(w)
        if chunk(w - 1) != c0:
            continue
        middle = win[w][1]  # a view: it sees this window's swaps
        area = np.bincount(middle.ravel(), minlength=n_labels) / size
        before = np.bincount(win[w - 1][1].ravel(), minlength=n_labels) / size
        lo = max(w - H, c0 * cut if cut else 0)
        for b in range(n_labels):
            if area[b] < MIN or before[b] >= NEW * area[b]:
                continue
            best, best_share = None, OV
            segment = middle == b
            for a in range(n_labels):
                if a == b:
                    continue
                history = [np.count_nonzero(win[v][1] == a) / size for v in range(lo, w)]
                if not history or max(history) < MIN or area[a] >= GONE * max(history):
                    continue
                last = next(u for u in range(w - 1, lo - 1, -1) if np.count_nonzero(win[u][1] == a) / size >= 0.5 * max(history))
                where = cv2.dilate((win[last][1] == a).astype(np.uint8), kernel) > 0
                share = (segment & where).sum() / segment.sum()
                if share > best_share:
                    best, best_share = a, share
            if best is not None:
                end = ((c0 + 1) * cut) if cut else n
                rest = win[w:end]
                was_a, was_b = rest == best, rest == b
                rest[was_a] = b
                rest[was_b] = best
                swaps += 1
    return win, swaps


def main() -> None:
    src, dst = sys.argv[1:3]
    total = sequences = 0
    for folder, cut, windows in replayed(src, dst):
        swapped, count = reclaim(windows, cut, int(windows.max()) + 1)
        total += count
        sequences += 1
        np.save(os.path.join(folder, "labels.npy"), unravel_windows(swapped))
        for name in os.listdir(folder):
            if name.endswith(".png"):
                os.remove(os.path.join(folder, name))
    print(f"{total} swap(s) in {sequences} sequence(s), written to {dst}")


if __name__ == "__main__":
    main()
