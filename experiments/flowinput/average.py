"""Experiment: a prepared split whose flows are the mean of two prepared splits' flows
(same frames, same flow size).

    python average.py A B OUT     # e.g. dev480 dis_dev480 avg_dev480
"""

import pathlib
import shutil
import sys

from stseg_deploy.io.flowio import read_flo, write_flow

src_a, src_b, dst = (pathlib.Path(a) for a in sys.argv[1:4])
count = 0
for path in sorted(src_a.rglob("*.flo")):
    rel = path.relative_to(src_a)
    a, b = read_flo(path), read_flo(src_b / rel)
    if a.shape != b.shape:
        sys.exit(f"{rel}: {a.shape} against {b.shape}")
    (dst / rel).parent.mkdir(parents=True, exist_ok=True)
    write_flow(dst / rel, 0.5 * (a + b))
    count += 1
# The DataSplit CSVs only: stseg-prepare.json would name the first split's flow engine.
for item in src_a.glob("*.csv"):
    shutil.copy(item, dst / item.name)
print(f"{count} flows averaged into {dst}")
