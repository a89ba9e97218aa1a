"""Experiment: two models' probabilities averaged at inference, every default stage after.

The second model's channels are matched to the first's per window (one-to-one, by soft
overlap), since two networks need not give a segment the same channel.

    python ensemble.py MODEL_A MODEL_B DATASPLIT_PREFIX SPLIT BASE_DIR OUT
    stseg-eval OUT --data-file PREFIX --split SPLIT --base-dir BASE_DIR --protocol davis2016
"""

import sys

import numpy as np

from stseg_deploy.output.folder import segment_to_folder
from stseg_deploy.pipeline import Segmenter
from stseg_deploy.runtime import load_model
from stseg_deploy.settings import InferenceSettings
from stseg_deploy.sources import sequences_from_datasplit
from stseg_deploy.zoo import resolve_model
from stseg_kernels import assign_max


class Ensemble:
    def __init__(self, first, second):
        if first.info.n_labels != second.info.n_labels or first.info.image_size != second.info.image_size:
            raise SystemExit("the two models must have the same L and input size")
        self.first, self.second = first, second
        self.info, self.engine, self.device = first.info, "ensemble", first.device

    def run(self, flow, features=False):
        if features:
            raise NotImplementedError("no features from an ensemble")
        a, b = self.first.run(flow), self.second.run(flow)
        out = np.empty_like(a)
        for i in range(len(a)):
            n = a.shape[1]
            overlap = np.einsum("kthw,jthw->kj", a[i], b[i]).astype(np.float64)
            column = assign_max(overlap)  # channel k of a takes channel column[k] of b
            out[i] = 0.5 * (a[i] + b[i][column[:n]])
        return out

    def labels(self, flow):
        return self.run(flow).argmax(axis=1).astype(np.uint8)


def main():
    spec_a, spec_b, prefix, split, base_dir, out = sys.argv[1:7]
    models = [load_model(resolve_model(spec)[0], threads=2) for spec in (spec_a, spec_b)]
    segmenter = Segmenter(Ensemble(*models), InferenceSettings())
    for sequence in sequences_from_datasplit(prefix, split, base_dir):
        segment_to_folder(segmenter, sequence, out, model_sha256="ensemble")
        print(sequence.name, flush=True)


if __name__ == "__main__":
    main()
