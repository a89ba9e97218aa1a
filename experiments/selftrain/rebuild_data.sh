#!/usr/bin/env bash
# Rebuilds the self-training probes' data (experiments/selftrain) under MEAS (default
# /work/meas): the DAVIS-2016 flows as stseg-prepare makes them today (deepflow-dis), the
# training mix, and the pseudo-labels (the defaults' output on the 21 training sequences).
# Run from the repository root with the project's .venv active; about 10 minutes on 2 cores.
set -euo pipefail
MEAS=${MEAS:-/work/meas}
SHARED=${SHARED:-../shared/data}
mkdir -p "$MEAS/dd"
stseg-prepare davis "$SHARED/davis2016-dev-480p" --out "$MEAS/dd/dev480"
stseg-prepare davis "$SHARED/davis2016-train-240p" --resolution 240p --split train --out "$MEAS/dd/t240"
# The synthetic half of the mix: 60 flow videos of 1-3 objects at 128x224 (54 train, 6 val).
[ -f "$MEAS/synth224/DataSplit/Synth_train.csv" ] || \
    stseg-synth "$MEAS/synth224" --sequences 60 --frames 20 --size 128 224 --seed 11 --val-fraction 0.1
python scripts/mix_datasplits.py "$MEAS/mixdd/Mix" "$MEAS/synth224/DataSplit/Synth=$MEAS/synth224" \
    "$MEAS/dd/t240/DAVIS2016=$MEAS/dd/t240" "$MEAS/dd/dev480/DAVIS2016=$MEAS/dd/dev480" --val-frames 20
# Pseudo-labels: stseg-infer's defaults (mix-small, flip, motion split, guided refinement) on
# the training sequences only; the development sequences stay out of training.
stseg-infer --data-file "$MEAS/dd/t240/DAVIS2016" --split train --base-dir "$MEAS/dd/t240" --out "$MEAS/pseudo/t240"
