#!/usr/bin/env bash
# Issue 25, item 2: the published-size recipe on a lent GPU, in one device call.
#
# Here, first (packs the 21 DAVIS-2016 training sequences' frames, 21 MB, git-ignored):
#   python scripts/gpu_pack.py ../shared/data/davis2016-train-240p --out .gpu_data/davis-train-240p
# Then, with the device tool:
#   run(command="bash scripts/gpu_train.sh", carry=[".gpu_data"], timeout_s=570)
#
# There, from the checkout with no install (the image holds torch with CUDA, numba, onnxruntime,
# pandas, click, Pillow and plain OpenCV):
#   1. flows of the training frames with DIS (--flow-method dis-fine: plain OpenCV has no
#      DeepFlow), and synthetic 1-3-object flow videos at 128x224;
#   2. stseg-train at the published size (--preset default: 128x224, L=4, 32 features, batch 10)
#      for MINUTES, from INIT (default mix-small, widened to 32 features; INIT=none: from scratch);
#   3. back under $OUT: the best checkpoint without optimizer state in half precision
#      (best_slim.pt, for `stseg-train --init` here), its ONNX (model.onnx), config.json,
#      metrics.csv and the log.
# The model records DIS as its training flow: score it here on data prepared both ways.
#
# On this machine, for a dry run of the script itself:
#   DEVICE=cpu MINUTES=0.3 SYNTH_SEQUENCES=4 WORKERS=2 SIZE="32 56" FEATURES=16 OUT=/tmp/gpu_train \
#   bash scripts/gpu_train.sh
set -uo pipefail
export PYTHONPATH="$PWD:$PWD/kernels${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-gpu_train_out}"
DATA="${DATA:-.gpu_data/davis-train-240p}"
WORK="${WORK:-/tmp/stseg_gpu}"
DEVICE="${DEVICE:-cuda}"
MINUTES="${MINUTES:-6}"
INIT="${INIT:-mix-small}"
SIZE="${SIZE:-128 224}"
FEATURES="${FEATURES:-32}"
SYNTH_SEQUENCES="${SYNTH_SEQUENCES:-60}"
WORKERS="${WORKERS:-12}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT" "$WORK"
cli() { "$PY" -c "import sys; from $1 import $2 as main; main(sys.argv[1:])" "${@:3}"; }
log="$OUT/gpu_train.log"
{
    nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 || true
    "$PY" -c 'import torch, cv2; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "| cv2", cv2.__version__)'
    [ -f "$DATA/ImageSets/240p/train.txt" ] || { echo "no $DATA/ImageSets/240p/train.txt: run scripts/gpu_pack.py here and carry .gpu_data"; exit 2; }
    start=$SECONDS
    cli stseg_deploy.cli.prepare prepare_main davis "$DATA" --resolution 240p --split train \
        --flow-method dis-fine --workers "$WORKERS" --out "$WORK/t240" || exit 1
    cli stseg_synth.cli synth_main "$WORK/synth" --sequences "$SYNTH_SEQUENCES" --frames 20 --size 128 224 \
        --seed 11 --val-fraction 0.1 || exit 1
    "$PY" scripts/mix_datasplits.py "$WORK/mix/Mix" "$WORK/synth/DataSplit/Synth=$WORK/synth" \
        "$WORK/t240/DAVIS2016=$WORK/t240" --val-frames 20 || exit 1
    echo "data ready in $(( SECONDS - start )) s"
    init=(); [ "$INIT" = none ] || init=(--init "$INIT")
    # shellcheck disable=SC2086  # SIZE is two numbers
    cli stseg_train.cli train_main --data-file "$WORK/mix/Mix" --base-dir / --save-dir "$WORK/run" \
        --preset default --image-size $SIZE --features-start "$FEATURES" "${init[@]}" --device "$DEVICE" \
        --workers "$WORKERS" --time-budget "$MINUTES" || exit 1
    "$PY" - "$WORK/run/checkpoints/best.pt" "$OUT/best_slim.pt" <<'PYEOF' || exit 1
import sys
import torch
from stseg_train.checkpoint import load_checkpoint, slim_payload
torch.save(slim_payload(load_checkpoint(sys.argv[1]), half=True), sys.argv[2])
print("slim checkpoint:", sys.argv[2])
PYEOF
    cli stseg_train.cli export_main "$WORK/run/checkpoints/best.pt" --onnx "$OUT/model.onnx" || exit 1
    cp "$WORK/run/config.json" "$WORK/run/metrics.csv" "$OUT/"
    echo "done in $(( SECONDS - start )) s"
} 2>&1 | tee "$log"
exit "${PIPESTATUS[0]}"
