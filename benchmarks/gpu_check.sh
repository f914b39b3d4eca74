#!/usr/bin/env bash
# The GPU paths, exercised and timed on one GPU machine (not a test; needs a CUDA GPU):
#   1. the paper grid (11 models, seed 0, 128x128, 25 epochs) packed with fractional GPUs;
#   2. one data-parallel trial over 2 ranks (skipped on a single GPU: a rank needs a whole one);
#   3. a trial killed after its first checkpoint and resumed with another device count
#      (CUDA_VISIBLE_DEVICES narrowed to one GPU), checking the resume;
#   4. a base-size speech encoder (WavLM Base+ sizes, random weights) over the corpus:
#      benchmarks/bench_encoder.py on the GPU, one actor of a whole GPU and two of half;
# then prints the grid's wall time and each trial's device and precision.
#
#   benchmarks/gpu_check.sh [CORPUS] [WORK]
#
# CORPUS: a corpus folder (e.g. ../shared/data/casia); default: a synthetic one (4 speakers,
# 20 sentences). Record the figures in docs/performance.md with the date and the GPU.
set -euo pipefail
CORPUS=${1:-}
WORK=$(realpath -m "${2:-gpu-check}")
HERE=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$WORK" && cd "$WORK"
nvidia-smi --query-gpu=name,memory.total,compute_cap --format=csv,noheader
GPUS=$(nvidia-smi --list-gpus | wc -l)
if [ -z "$CORPUS" ]; then
    [ -d corpus ] || attres-flow synth corpus --speakers 4 --utterances 20 --workers 8 >/dev/null
    CORPUS=corpus
fi
attres-flow featurize "$CORPUS" --out features

start=$SECONDS
attres-flow train-all features --out grid --models all --seeds 0 --gpus-per-trial 0.0625 \
    --cpus-per-trial 1 --quiet
echo "paper grid, 11 models, --gpus-per-trial 0.0625: $((SECONDS - start)) s with Ray's start"

if [ "$GPUS" -ge 2 ]; then
    attres-flow train-all features --out ddp --models att-Res --workers-per-trial 2 \
        --gpus-per-trial 1 --quiet
else
    echo "data-parallel trial skipped: $GPUS GPU (each rank needs a whole one)"
fi

# kill mid-trial once a checkpoint exists, resume on one visible GPU
rm -rf resume
attres-flow train-all features --out resume --models ResNet-18 --epochs 25 --checkpoint-s 5 \
    --gpus-per-trial 1 --quiet & pid=$!
until ls resume/checkpoints/*/state.pt >/dev/null 2>&1; do sleep 1; done
sleep 3 && kill -9 $pid && wait $pid 2>/dev/null || true
ray stop --force >/dev/null 2>&1 || true
CUDA_VISIBLE_DEVICES=0 attres-flow train-all features --out resume --models ResNet-18 \
    --epochs 25 --checkpoint-s 5 --gpus-per-trial 1 --quiet

# the encoder on Ray Data GPU actors against a plain loop on the GPU (bf16 or fp16)
CORPUS_PATH=$(realpath "$CORPUS")
(cd "$HERE" && python bench_encoder.py "$CORPUS_PATH" --clips 400 --device cuda \
    --placements 1x1x1,2x1x0.5)

python - "$WORK" <<'PY'
import sys
from workflows.runs import load_records
for runs in ("grid", "ddp", "resume"):
    try:
        records = load_records(f"{sys.argv[1]}/{runs}")
    except OSError:
        continue
    for r in records:
        print(f"{runs}: {r.trial}: device {r.device}, precision {r.precision}, "
              f"WA {100 * r.wa:.1f} %, wall {r.wall_s:.1f} s, resumed from epoch "
              f"{r.resumed_from_epoch}")
PY
