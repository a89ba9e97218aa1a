"""Runs stseg-infer with its arguments and keeps each sequence's renamed windows, as linking
made them, in ``OUT_windows.pkl`` (OUT: the --out folder): a list of (n_windows, cut_size,
windows (N, 3, h, w) uint8), one per sequence in the order they were segmented.

    python experiments/linking/recwin.py --data-file mo_pause2/DataSplit/Synth --split val \\
        --base-dir mo_pause2 --out out/vw_pause2 --workers 1

An experiment's tool, not part of the package: it wraps the linker's internals.
"""

from __future__ import annotations

import pickle
import sys

import numpy as np

import stseg_deploy.pipeline as pipeline
import stseg_deploy.stages.linker as linker
from stseg_deploy.cli.infer import infer_main

RECORDS: list[tuple[int, int | None, list[np.ndarray]]] = []
_link_windows = linker.link_windows


class RecordingLinker(linker.StreamLinker):
    """The pipeline's linker, keeping every batch's renamed windows."""

    def push(self, labels, proba=None, features=None):
        if not hasattr(self, "_record"):
            self._record: list[np.ndarray] = []
            RECORDS.append((self.n_windows, self.cut_size, self._record))
        captured = {}

        def capture(*args, **kwargs):
            result = _link_windows(*args, **kwargs)
            captured["renamed"] = result[0].copy()
            return result

        linker.link_windows = capture
        try:
            frames = super().push(labels, proba, features)
        finally:
            linker.link_windows = _link_windows
        self._record.append(captured["renamed"])
        return frames


def main() -> None:
    out = sys.argv[sys.argv.index("--out") + 1]
    pipeline.StreamLinker = RecordingLinker
    sys.argv = ["stseg-infer", *sys.argv[1:]]
    try:
        infer_main()
    except SystemExit as done:
        if done.code:
            raise
    with open(out + "_windows.pkl", "wb") as handle:
        pickle.dump([(n, cut, np.concatenate(parts)) for n, cut, parts in RECORDS], handle)


if __name__ == "__main__":
    main()
