"""The training mix with the DAVIS flows at two scales, DAVIS's share of the mix kept.

    python two_scales.py MIX_PREFIX HALF_PREFIX OUT_PREFIX

MIX_PREFIX: a mix made by scripts/mix_datasplits.py (absolute paths; the synthetic rows are the
ones under ``/synth224/``); HALF_PREFIX: the DAVIS training DataSplit prepared at
``--flow-scale 0.5`` (paths relative to its folder). The output's train split holds the mix's
rows, the half-scale rows (sequences renamed ``<name>-half``, so that windows never mix scales)
and the synthetic rows again (renamed ``<name>-copy``); val and test are the mix's.
"""

import os
import sys

import pandas as pd


def main(mix: str, half_prefix: str, out: str) -> None:
    base = pd.read_csv(f"{mix}_train.csv")
    synth = base[base.Flow.str.contains("/synth224/")].copy()
    half = pd.read_csv(f"{half_prefix}_train.csv")
    root = os.path.dirname(os.path.abspath(half_prefix))
    half = pd.DataFrame({
        "Flow": [os.path.join(root, f) for f in half.Flow],
        "GtMask": half.GtMask,
        "Sequence": half.Sequence + "-half",
        "Sequence_Index": half.Sequence_Index,
    })
    synth["Sequence"] = synth.Sequence + "-copy"
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    pd.concat([base, half, synth], ignore_index=True).to_csv(f"{out}_train.csv", index=False)
    for split in ("val", "test"):
        pd.read_csv(f"{mix}_{split}.csv").to_csv(f"{out}_{split}.csv", index=False)


if __name__ == "__main__":
    main(*sys.argv[1:4])
