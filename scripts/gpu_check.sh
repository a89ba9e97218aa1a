#!/usr/bin/env bash
# The GPU measurements of issue 13 in one call, for a session lent a GPU machine (the device
# tool), which runs it from a copy of the checkout with no install:
#
#   run(command="bash scripts/gpu_check.sh", timeout_s=540)
#
# The machine's image already holds what stseg needs for this (torch with CUDA, numba,
# onnxruntime's CPU build, pandas, click, Pillow, OpenCV), so the package runs from the tree.
# It writes under $OUT: device.txt, engines.csv/.log (windows/s at 128x224 for batch 1, 8
# and 32, fp32 and fp16, torch eager / torch.compile / TorchScript / onnxruntime with and
# without I/O binding / TensorRT, each skipped with its reason where it cannot run; the whole
# pipeline against the model alone, and with each stage: the test-time flip, the guided
# refinement, both; the labels output against proba + argmax) and
# model_free.csv/.log (the pipeline without a model on the machine's cores, 100 and 2,000
# frames), and pipeline.csv/.log (the bundled default model: each stage and the defaults
# against the plain pipeline, and the end-to-end rows, 480p frames in, label PNGs out, against
# the flow alone). onnxruntime's CUDA rows need the onnxruntime-gpu wheel carried as .whl (see the
# device tool's README); without it they are skipped, said so in engines.log.
#
# On this machine, for a dry run of the script itself: PROVIDER=cpu SIZES=16x24 BATCHES="1 2"
# PRECISIONS=fp32 FRAMES="6 12" ORIGINAL=48x80 MODEL_SIZE=16x24 REPEATS=1 OUT=/tmp/gpu_check \
# bash scripts/gpu_check.sh
set -uo pipefail
export PYTHONPATH="$PWD:$PWD/kernels${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
OUT="${OUT:-gpu_check_out}"
PROVIDER="${PROVIDER:-cuda}"
SIZES="${SIZES:-128x224}"
BATCHES="${BATCHES:-1 8 32}"
PRECISIONS="${PRECISIONS:-fp32 fp16}"
FRAMES="${FRAMES:-100 2000}"
ORIGINAL="${ORIGINAL:-480x854}"
REPEATS="${REPEATS:-20}"
ENGINES="${ENGINES:-torch,torch-compile,torchscript,onnxruntime,onnxruntime-iobinding,tensorrt}"
PY="${PYTHON:-python3}"
mkdir -p "$OUT"
bench() { "$PY" -c 'import sys; from stseg_train.bench.cli import bench_main; bench_main(sys.argv[1:])' "$@"; }

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1 || true; nproc; "$PY" -c 'import torch, onnxruntime as ort; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "| onnxruntime", ort.__version__, ort.get_available_providers())'; } > "$OUT/device.txt" 2>&1
cat "$OUT/device.txt"
# shellcheck disable=SC2086  # the lists are meant to split into arguments
bench --provider "$PROVIDER" --sizes $SIZES --masks 4 --batch-sizes $BATCHES --precision $PRECISIONS \
    --engines "$ENGINES" --no-kernels --repeats "$REPEATS" --out "$OUT/engines.csv" 2>&1 | tee "$OUT/engines.log"
status=$?
# shellcheck disable=SC2086
bench --model-free --frames $FRAMES --original-size "$ORIGINAL" --sizes ${SIZES%% *} --batch-sizes 8 \
    --repeats 3 --out "$OUT/model_free.csv" 2>&1 | tee "$OUT/model_free.log"
status=$(( status | $? ))
# Issue 29, item 5: the bundled default model with the defaults, every stage against the plain
# pipeline, and frames in -> label PNGs out (flow computed in the stream) against the flow alone.
bench --provider "$PROVIDER" --model "${MODEL:-stseg_deploy/models/mix-small.onnx}" --sizes "${MODEL_SIZE:-64x112}" \
    --masks 4 --batch-sizes 8 --engines onnxruntime --no-kernels --repeats 3 --original-size "$ORIGINAL" \
    --out "$OUT/pipeline.csv" 2>&1 | tee "$OUT/pipeline.log"
exit $(( status | $? ))
