#!/usr/bin/env bash
# Rebuilds the training data of the long run (experiments/long128) where its CSVs expect it:
# MEAS (default /work/meas), next to the clone. Run from the repository root with the
# project's .venv active; about 5 minutes on 2 cores (DeepFlow for 27 sequences).
set -euo pipefail
MEAS=${MEAS:-/work/meas}
SHARED=${SHARED:-../shared/data}
mkdir -p "$MEAS"
# DAVIS-2016: the 6 development sequences at real 480p (validation) and the 21 training
# sequences at 240p (training, no masks), DeepFlow at --flow-scale auto (240 rows; named, since
# the default engine is deepflow-dis from 2026-12-07 on).
stseg-prepare davis "$SHARED/davis2016-dev-480p" --out "$MEAS/dev480" --flow-method deepflow
stseg-prepare davis "$SHARED/davis2016-train-240p" --resolution 240p --split train --out "$MEAS/t240" --flow-method deepflow
# 60 synthetic flow videos of 1-3 objects at 128x224 (54 train, 6 val).
stseg-synth "$MEAS/synth224" --sequences 60 --frames 20 --size 128 224 --seed 11 --val-fraction 0.1
python scripts/mix_datasplits.py "$MEAS/mix/Mix" "$MEAS/synth224/DataSplit/Synth=$MEAS/synth224" \
    "$MEAS/t240/DAVIS2016=$MEAS/t240" "$MEAS/dev480/DAVIS2016=$MEAS/dev480"
# The same with a validation of the first 20 flow frames of each val sequence (240 rows
# against 561): at 128x224 a whole validation costs as much as ~150 training steps.
python scripts/mix_datasplits.py "$MEAS/mixlite/Mix" "$MEAS/synth224/DataSplit/Synth=$MEAS/synth224" \
    "$MEAS/t240/DAVIS2016=$MEAS/t240" "$MEAS/dev480/DAVIS2016=$MEAS/dev480" --val-frames 20
