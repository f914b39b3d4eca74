#!/usr/bin/env bash
# URDU, a public corpus other than CASIA, through the whole pipeline: featurize it by name,
# train four models speaker-independently (speaker-kfold, 5 folds) and under the paper's
# random 80/20, seed 0, and publish both under docs/results/urdu/.
#
#   docs/results/run_urdu.sh URDU_DIR [WORK]
#
# URDU_DIR: a copy of github.com/siddiquelatif/URDU-Dataset (400 WAVs in Angry/ Happy/
# Neutral/ Sad/; "only for research purposes"). Run from the repository root.
set -euo pipefail
URDU=${1:?usage: run_urdu.sh URDU_DIR [WORK]}
WORK=$(realpath -m "${2:-urdu-work}")
MODELS=att-Res,att-Res+,CNN,SVM
attres-flow featurize "$URDU" --corpus urdu --out "$WORK/features"
attres-flow train-all "$WORK/features" --out "$WORK/speaker-kfold" --protocol speaker-kfold \
    --k 5 --models "$MODELS" --seeds 0
attres-flow train-all "$WORK/features" --out "$WORK/paper" --models "$MODELS" --seeds 0
for protocol in speaker-kfold paper; do
    attres-flow tables "$WORK/$protocol" --cost --publish "docs/results/urdu/$protocol" \
        --runs-plot "docs/results/urdu/$protocol/plots/runs.png" --compare att-Res
done
