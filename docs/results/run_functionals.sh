#!/usr/bin/env bash
# openSMILE functionals on CASIA (issue #22): the models over eGeMAPS and ComParE beside the
# paper's networks, their validation on held-out training speakers, their late fusion with
# att-Res+, published into docs/results/casia/{loso,paper,search/speaker-plus,val/paper}.
#
#   docs/results/run_functionals.sh CASIA_DIR WORK_DIR [STAGE ...]
#
# Stages (default: all, in this order):
#   featurize  WORK/features with --functionals egemaps,compare (spectrograms kept if there)
#   restore    the published trials of the four folders copied into WORK (never over a file)
#   loso       the functionals models on the test speakers; att-Res+ seed 2 beside 0-1
#   validate   the same on each fold's held-out training speaker (--validation-speaker)
#   paper      the functionals models under the paper's 80/20 split, 5 seeds
#   paper-val  att-Res+ and three functionals models on 20 % of each training split
#   fuse       att-Res+ fused with eGeMAPS-LR-ST, eGeMAPS-MLP and openSMILE-linear, each
#              fold's weight chosen on the validation runs, under loso and paper
#   publish    tables, comparisons, claims and records into docs/results/casia/...
# Everything resumes after a kill; fusion and publishing are re-made from the records.
set -euo pipefail

CASIA=${1:?usage: run_functionals.sh CASIA_DIR WORK_DIR [STAGE ...]}
WORK=${2:?usage: run_functionals.sh CASIA_DIR WORK_DIR [STAGE ...]}
shift 2
STAGES=${*:-featurize restore loso validate paper paper-val fuse publish}
DOCS=$(cd "$(dirname "$0")" && pwd)/casia
FEATURES=$WORK/features
LINEAR=eGeMAPS-LR,eGeMAPS-SVM,ComParE-LR,ComParE-SVM,eGeMAPS-LR-ST,openSMILE-linear
MLPS=eGeMAPS-MLP,ComParE-MLP
PARTNERS="eGeMAPS-LR-ST eGeMAPS-MLP openSMILE-linear"
# name in WORK -> published folder under docs/results/casia
declare -A PUBLISHED=([loso]=loso [paper]=paper [validation]=search/speaker-plus
    [paper-val]=val/paper)

source "$(dirname "$0")/restore.sh"

for stage in $STAGES; do
    echo "== $stage $(date -u +%FT%TZ)"
    case $stage in
    featurize)
        attres-flow featurize "$CASIA" --out "$FEATURES" --functionals egemaps,compare
        ;;
    restore)
        for name in "${!PUBLISHED[@]}"; do
            restore_published "$DOCS/${PUBLISHED[$name]}" "$WORK/$name"
        done
        ;;
    loso)
        L=("$FEATURES" --out "$WORK/loso" --protocol loso --quiet)
        # a fixed split and a deterministic fit: one seed is every seed
        attres-flow train-all "${L[@]}" --models "$LINEAR" --seeds 0
        attres-flow train-all "${L[@]}" --models "$MLPS,att-Res+" --seeds 0-2
        ;;
    validate)
        V=("$FEATURES" --out "$WORK/validation" --protocol loso --validation-speaker
            --normalize speaker --quiet)
        attres-flow train-all "${V[@]}" --models "$LINEAR" --seeds 0
        attres-flow train-all "${V[@]}" --models "$MLPS,att-Res+" --seeds 0-2
        ;;
    paper)
        attres-flow train-all "$FEATURES" --out "$WORK/paper" --models "$LINEAR,$MLPS" \
            --seeds 0-4 --quiet
        ;;
    paper-val)
        attres-flow train-all "$FEATURES" --out "$WORK/paper-val" --validation 0.2 \
            --models "att-Res+,${PARTNERS// /,}" --seeds 0-2 --quiet
        ;;
    fuse)
        for partner in $PARTNERS; do
            attres-flow fuse "$WORK/loso" --models "att-Res+,$partner" \
                --validation "$WORK/validation"
            attres-flow fuse "$WORK/paper" --models "att-Res+,$partner" \
                --validation "$WORK/paper-val"
        done
        ;;
    publish)
        for name in "${!PUBLISHED[@]}"; do
            compare=()
            if [ "$name" = paper ] || [ "$name" = loso ]; then
                compare=(--compare att-Res0 --compare att-Res --compare att-Res0+att)
            fi
            attres-flow tables "$WORK/$name" --publish "$DOCS/${PUBLISHED[$name]}" \
                "${compare[@]}" >/dev/null
        done
        ;;
    *)
        echo "unknown stage $stage" >&2
        exit 2
        ;;
    esac
done
