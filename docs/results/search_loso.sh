#!/usr/bin/env bash
# The speaker-independent recipe search (issue #14): every option scored by nested
# leave-one-speaker-out on CASIA, so the test speaker of a fold is never read.
#
#   docs/results/search_loso.sh CASIA_DIR WORK_DIR [CONFIG ...]
#
# Each CONFIG trains att-Res (or att-Res+) on the 4 loso folds with, inside each fold, the
# next training speaker held out and scored (`--validation-speaker`), seed 0; results land in
# WORK_DIR/search/<CONFIG> and `attres-flow tables` reads them. Every config resumes after a
# kill. Without a CONFIG, all of them run in the order below. Runs on a local Ray instance
# (or RAY_ADDRESS's cluster).
set -euo pipefail

CASIA=${1:?usage: search_loso.sh CASIA_DIR WORK_DIR [CONFIG ...]}
WORK=${2:?usage: search_loso.sh CASIA_DIR WORK_DIR [CONFIG ...]}
shift 2
CONFIGS=${*:-baseline speaker speaker-deltas speaker-plus mel-speaker mel-speaker-deltas speaker-speed}
LINEAR=$WORK/features  # the paper's linear log power, 128x128 (what run_casia.sh makes)
MEL=$WORK/features-mel  # log-mel, 128 bands, 128x128
SPEED=$WORK/features-speed  # linear, plus copies at 0.9 and 1.1 times the speed

nested() {  # nested CONFIG FEATURES [train-all options]
    local name=$1 features=$2
    shift 2
    attres-flow train-all "$features" --out "$WORK/search/$name" --protocol loso \
        --validation-speaker --seeds 0 "$@"
}

attres-flow featurize "$CASIA" --out "$LINEAR"
attres-flow featurize "$CASIA" --out "$MEL" --frequency-scale mel --n-mels 128
attres-flow featurize "$CASIA" --out "$SPEED" --speeds 0.9,1.1
for config in $CONFIGS; do
    echo "== $config $(date -u +%FT%TZ)"
    case $config in
    baseline) nested baseline "$LINEAR" --models att-Res ;;
    speaker) nested speaker "$LINEAR" --models att-Res --normalize speaker ;;
    speaker-deltas) nested speaker-deltas "$LINEAR" --models att-Res --normalize speaker --deltas 2 ;;
    # att-Res+ adds label smoothing, mixup and SpecAugment masks (attres/models/attres.py)
    speaker-plus) nested speaker-plus "$LINEAR" --models att-Res+ --normalize speaker ;;
    mel-speaker) nested mel-speaker "$MEL" --models att-Res --normalize speaker ;;
    mel-speaker-deltas) nested mel-speaker-deltas "$MEL" --models att-Res --normalize speaker --deltas 2 ;;
    speaker-speed) nested speaker-speed "$SPEED" --models att-Res --normalize speaker ;;
    *)
        echo "unknown config $config" >&2
        exit 2
        ;;
    esac
done
