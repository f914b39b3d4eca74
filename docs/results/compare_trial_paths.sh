#!/usr/bin/env bash
# Do two commits' trial paths give the same records? Trains att-Res0, att-Res+ (speakers
# scaled), LSTM+CNN and eGeMAPS-MLP for 3 epochs, and eGeMAPS-LR, on one synthetic corpus
# (240 clips, 32x32, with eGeMAPS functionals), then the CNN with two delta channels and
# speakers scaled, with each commit's code, and compares the records (same_records.py:
# test clips, confusion matrices, curves); exits 1 if any differs.
#
#   docs/results/compare_trial_paths.sh OLD_COMMIT [WORK_DIR]
#
# The current checkout is the new side. Needs the project installed (pip install -e .).
set -euo pipefail
OLD=${1:?usage: compare_trial_paths.sh OLD_COMMIT [WORK_DIR]}
WORK=$(realpath -m "${2:-compare-trial-paths}")
NEW=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$WORK" && cd "$WORK" && rm -rf old new old-deltas new-deltas
[ -d old-code ] || git -C "$NEW" worktree add --detach "$WORK/old-code" "$OLD" >/dev/null
[ -d corpus ] || attres-flow synth corpus --speakers 4 --utterances 10 >/dev/null
[ -d features ] || attres-flow featurize corpus --out features --image-size 32 \
    --functionals egemaps >/dev/null
GRID=(--models att-Res0,att-Res+,LSTM+CNN,eGeMAPS-MLP,eGeMAPS-LR --epochs 3 --batch-size 16)
DELTAS=(--models CNN --deltas 2 --normalize speaker --epochs 3 --batch-size 16)
for side in old new; do
    code=$NEW && [ $side = old ] && code=$WORK/old-code
    (cd "$code" && PYTHONPATH=$code attres-flow train-all "$WORK/features" --out "$WORK/$side" \
        "${GRID[@]}" >/dev/null 2>&1)
    (cd "$code" && PYTHONPATH=$code attres-flow train-all "$WORK/features" \
        --out "$WORK/$side-deltas" "${DELTAS[@]}" >/dev/null 2>&1)
done
status=0
for grid in "" -deltas; do
    python "$NEW/docs/results/same_records.py" "$WORK/old$grid" "$WORK/new$grid" || status=1
done
exit $status
