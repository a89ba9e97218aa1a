"""Replays an output with other per-frame labels: copies stseg-infer's output SRC to DST and
rewrites each sequence's labels.npy from the renamed windows recwin.py kept (SRC_windows.pkl).

    python experiments/linking/vote_offline.py SRC DST base   # the middle frames: today's labels
    python experiments/linking/vote_offline.py SRC DST vote   # the outer windows' label where they agree

For outputs without refinement (stseg-eval scores labels.npy upsampled); an experiment's tool.
"""

from __future__ import annotations

import os
import pickle
import shutil
import sys
from collections.abc import Iterator

import numpy as np

from stseg_kernels import unravel_windows


def voted(windows: np.ndarray, cut: int | None) -> np.ndarray:
    """(N + 2, h, w) labels: frame t (1..N) from window t-1's middle frame, except where
    windows t-2 and t of the same chunk agree on a pixel against it."""
    n = windows.shape[0]
    out = unravel_windows(windows).copy()

    def chunk(w: int) -> int:
        return w // cut if cut else 0

    for w in range(1, n - 1):
        if chunk(w - 1) != chunk(w) or chunk(w + 1) != chunk(w):
            continue
        before, middle, after = windows[w - 1][2], windows[w][1], windows[w + 1][0]
        agree = (before == after) & (before != middle)
        frame = middle.copy()
        frame[agree] = before[agree]
        out[w + 1] = frame
    return out


def replayed(src: str, dst: str) -> Iterator[tuple[str, int | None, np.ndarray]]:
    """Copies the output SRC to DST and yields, per sequence, (its folder in DST, the cut size,
    its renamed windows (N, 3, h, w)) from SRC_windows.pkl, for the caller to rewrite
    labels.npy there."""
    with open(src + "_windows.pkl", "rb") as handle:
        records = pickle.load(handle)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    used: set[int] = set()
    for seq in sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d))):
        labels = np.load(os.path.join(src, seq, "labels.npy"))
        # The record whose middle frames are this sequence's labels.
        index = next(i for i, (_, _, w) in enumerate(records)
                     if i not in used and w.shape[0] + 2 == labels.shape[0] and np.array_equal(unravel_windows(w), labels))
        used.add(index)
        _, cut, windows = records[index]
        yield os.path.join(dst, seq), cut, windows


def main() -> None:
    src, dst, mode = sys.argv[1:4]
    count = 0
    for folder, cut, windows in replayed(src, dst):
        np.save(os.path.join(folder, "labels.npy"), voted(windows, cut) if mode == "vote" else unravel_windows(windows))
        count += 1
    print(f"{count} sequence(s) written to {dst}")


if __name__ == "__main__":
    main()
