"""Experiment: a prepared DAVIS split whose flow at frame t is the flow t -> t+2, halved (the
same engine and size as the prepared flows), so that slow motions stand out of the flow's
noise at the same cost a frame. The last flow of a sequence (no frame t+2) is kept as it was.

    python step2.py PREPARED OUT [--method deepflow-dis] [--workers 2]
    # e.g. python step2.py /work/meas/dd/dev480 /work/meas/s2/dev480
"""

import argparse
import multiprocessing
import pathlib
import shutil

import numpy as np
import pandas as pd
from PIL import Image

from stseg_deploy.flow.opticalflow import FlowEstimator
from stseg_deploy.io.flowio import read_flo, write_flow


def one_sequence(job) -> int:
    """Job: (prepared folder, out folder, engine, flow paths, frame paths: one more than flows)."""
    import cv2

    cv2.setNumThreads(1)
    src, dst, method, flows, images = job
    size = tuple(read_flo(src / flows[0]).shape[1:])
    estimator = FlowEstimator(method, size)
    grey = [estimator.prepare(np.asarray(Image.open(path).convert("RGB"))) for path in images]
    for t, rel in enumerate(flows):
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        if t + 2 < len(grey):
            write_flow(dst / rel, 0.5 * estimator.flow_prepared(grey[t], grey[t + 2]))
        else:
            shutil.copy(src / rel, dst / rel)
    return len(flows)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("prepared", type=pathlib.Path)
    parser.add_argument("out", type=pathlib.Path)
    parser.add_argument("--method", default="deepflow-dis")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    jobs = []
    for csv in sorted(args.prepared.glob("*.csv")):
        table = pd.read_csv(csv)
        absolute = [f for f in table["Flow"] if pathlib.Path(f).is_absolute()]
        if absolute:
            # OUT / an absolute path is that path: the prepared flows would be overwritten.
            raise SystemExit(f"{csv}: Flow paths must be relative to the prepared folder, got {absolute[0]}")
        for _, group in table.sort_values(["Sequence", "Sequence_Index"]).groupby("Sequence"):
            images = [pathlib.Path(i) for i in group["Image"]]
            # The frame after the last flow row: the next image of the same folder.
            following = sorted(images[-1].parent.glob("*" + images[-1].suffix))
            images.append(following[following.index(images[-1]) + 1])
            jobs.append((args.prepared, args.out, args.method, list(group["Flow"]), images))
        shutil.copy(csv, args.out / csv.name)
    with multiprocessing.Pool(args.workers) as pool:
        total = sum(pool.imap_unordered(one_sequence, jobs))
    print(f"{total} flows written into {args.out}")


if __name__ == "__main__":
    main()
