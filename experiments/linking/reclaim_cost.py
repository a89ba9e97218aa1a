"""The reclaimer's cost per window against linking's, in one process, on windows recwin.py kept:

    python experiments/linking/reclaim_cost.py out/rw_dev480_windows.pkl out/rw_pause2_windows.pkl

(made with recwin.py as in this folder's README, --refine none for the DAVIS set). Prints the
median of 5 rounds of each, in ms per window, and their ratio.
"""

from __future__ import annotations

import pickle
import sys
import time

import numpy as np

from stseg_deploy.stages.reclaim import LabelReclaimer
from stseg_kernels import link_windows


def main() -> None:
    records = [r for path in sys.argv[1:] for r in pickle.load(open(path, "rb"))]
    n_labels = int(max(w.max() for _, _, w in records)) + 1
    n_windows = sum(len(w) for _, _, w in records)

    def link() -> None:
        for _, cut, windows in records:
            link_windows(windows, n_labels, cut, "optimal", span=2, threads=1)

    def reclaim() -> None:
        for _, cut, windows in records:
            reclaimer = LabelReclaimer(n_labels, cut)
            for w in range(len(windows)):
                reclaimer(w, windows[w, 1])

    link(), reclaim()  # compile and warm
    rounds: dict[str, list[float]] = {"link": [], "reclaim": []}
    for _ in range(5):  # interleaved, so a slow spell of the machine hits both
        for name, fn in (("link", link), ("reclaim", reclaim)):
            start = time.perf_counter()
            fn()
            rounds[name].append(time.perf_counter() - start)
    ms = {name: float(np.median(t)) / n_windows * 1e3 for name, t in rounds.items()}
    print(f"{n_windows} windows, L={n_labels}: link_windows (span 2) {ms['link']:.4f} ms a window, "
          f"the reclaimer {ms['reclaim']:.4f} ms a window: {ms['reclaim'] / ms['link']:.2f}x linking")


if __name__ == "__main__":
    main()
