#!/usr/bin/env bash
# The speaker-independent recipe search (issue #14): every option scored by nested
# leave-one-speaker-out on CASIA, so the test speaker of a fold is never read.
#
#   docs/results/search_loso.sh CASIA_DIR WORK_DIR CONFIG [CONFIG ...]
#
# A CONFIG is options joined by "-", e.g. "mel-speaker-deltas":
#   baseline  att-Res as the paper grid trains it (linear log power, global scaling)
#   mel       log-mel input, 128 bands (featurize --frequency-scale mel)
#   speed     speed-perturbed copies at 0.9 and 1.1 train beside each recording
#   speaker   each speaker scaled by their own statistics (--normalize speaker)
#   deltas    two delta channels (--deltas 2)
#   plus      att-Res+ (label smoothing 0.1, mixup 0.2, SpecAugment 2+2 masks)
#   e50       50 epochs instead of 25
#   seeds2    (last) seeds 0 and 1, into the RUNS of the config without it: seed ensembles
# Each config trains on the 4 loso folds with, inside each fold, the next training speaker
# held out and scored (`--validation-speaker`), seed 0; results go to WORK_DIR/search/CONFIG
# (`python docs/results/search_summary.py WORK_DIR/search` tabulates them). Features are
# made as needed under WORK_DIR/features[-mel][-speed]. Everything resumes after a kill.
# Runs on a local Ray instance, or RAY_ADDRESS's cluster.
set -euo pipefail

CASIA=${1:?usage: search_loso.sh CASIA_DIR WORK_DIR CONFIG [CONFIG ...]}
WORK=${2:?usage: search_loso.sh CASIA_DIR WORK_DIR CONFIG [CONFIG ...]}
shift 2
[ $# -gt 0 ] || { echo "name at least one CONFIG" >&2; exit 2; }

for config in "$@"; do
    echo "== $config $(date -u +%FT%TZ)"
    features=$WORK/features featurize=() train=() model=att-Res seeds=0 speed=""
    for option in ${config//-/ }; do
        case $option in
        baseline) ;;
        mel) features+=-mel featurize+=(--frequency-scale mel --n-mels 128) ;;
        speed) speed=-speed featurize+=(--speeds 0.9,1.1) ;;
        speaker) train+=(--normalize speaker) ;;
        deltas) train+=(--deltas 2) ;;
        plus) model=att-Res+ ;;
        e50) train+=(--epochs 50) ;;
        seeds2) seeds=0-1 ;;
        *)
            echo "unknown option $option in $config" >&2
            exit 2
            ;;
        esac
    done
    features+=$speed
    attres-flow featurize "$CASIA" --out "$features" "${featurize[@]}"
    attres-flow train-all "$features" --out "$WORK/search/${config%-seeds2}" --protocol loso \
        --validation-speaker --models "$model" --seeds "$seeds" "${train[@]}"
done
