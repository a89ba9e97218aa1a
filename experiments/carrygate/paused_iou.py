"""Each object's best IoU with any one label, per frame, pooled by where the frame lies in the
object's pause (moving, first, middle or last paused frame): how much of the object a carry
keeps through its pauses, whatever the labels are called.

    python paused_iou.py OUT SYNTH_DIR      # OUT: an stseg-infer output of a --pauses set
"""
import json
import os
import sys

import numpy as np
from PIL import Image


def main(out: str, synth: str) -> None:
    meta = json.load(open(f"{synth}/synth.json"))["sequences"]
    pooled: dict[str, list[float]] = {}
    for seq in sorted(meta):
        if not os.path.isdir(f"{out}/{seq}"):
            continue  # a training sequence: only the split's are segmented
        paused = meta[seq]["paused_frames"]
        frames = sorted(f for f in os.listdir(f"{out}/{seq}") if f.endswith(".png"))
        pred = np.stack([np.array(Image.open(f"{out}/{seq}/{f}")) for f in frames])
        truth = np.stack([np.array(Image.open(f"{synth}/Labels/{seq}/{f}")) for f in frames])
        for obj in range(meta[seq]["n_objects"]):
            still = set(paused[obj])
            for t in range(len(frames)):
                mask = truth[t] == obj + 1
                best = max((mask & (pred[t] == k)).sum() / max((mask | (pred[t] == k)).sum(), 1) for k in np.unique(pred[t]))
                if t not in still:
                    where = "moving"
                elif t - 1 not in still:
                    where = "first paused"
                elif t + 1 not in still:
                    where = "last paused"
                else:
                    where = "middle paused"
                pooled.setdefault(where, []).append(float(best))
    for where, values in pooled.items():
        print(f"{where}: {len(values)} object-frames, mean IoU {np.mean(values):.3f}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
