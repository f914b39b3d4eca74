#!/usr/bin/env bash
# Produces every figure in docs/results/casia/: featurize CASIA, compare training recipes on
# validation splits carved from the training data, train the grids, publish the tables.
#
#   docs/results/run_casia.sh CASIA_DIR WORK_DIR [STAGE ...]
#
# Stages (default: all, in this order): featurize validate paper loso publish; also restore,
# and plus (att-Res+ on the test folds, after docs/results/search_loso.sh chose its recipe).
# Environment: PAPER_MODELS / PAPER_SEEDS / LOSO_MODELS / LOSO_SEEDS choose the grids
# (default: the paper's eleven models and att-Res+, seeds 0-4 under `paper`, seed 0 under
# `loso`). Every stage resumes: run it again after a kill and it finishes what is missing.
# `paper` and `loso` first restore the published trials of casia/<stage>/ into WORK_DIR (the
# `restore` stage does it for both), so a new machine trains only the trials not yet published.
# A local Ray head (`ray start --head`, loopback) lets two train-all runs share the CPUs;
# it is stopped on exit.
set -euo pipefail

CASIA=${1:?usage: run_casia.sh CASIA_DIR WORK_DIR [STAGE ...]}
WORK=${2:?usage: run_casia.sh CASIA_DIR WORK_DIR [STAGE ...]}
shift 2
STAGES=${*:-featurize validate paper loso publish}
ALL="att-Res0,att-Res0+att,att-Res1,att-Res2,att-Res,att-Res3,CNN,LSTM+CNN,SVM,AlexNet,ResNet-18,att-Res+"
PAPER_MODELS=${PAPER_MODELS:-$ALL}
PAPER_SEEDS=${PAPER_SEEDS:-0-4}
LOSO_MODELS=${LOSO_MODELS:-$ALL}
LOSO_SEEDS=${LOSO_SEEDS:-0}
DOCS=$(cd "$(dirname "$0")" && pwd)/casia
FEATURES=$WORK/features
CPUS=$(nproc)

# Token authentication (Ray >= 2.52) is on only when the mode is set before `ray start`;
# the token lives in ~/.ray/auth_token, made here once.
export RAY_AUTH_MODE=token
ray get-auth-token --generate >/dev/null
ray start --head --num-cpus "$CPUS" --node-ip-address 127.0.0.1 --dashboard-host 127.0.0.1 \
    --disable-usage-stats >/dev/null
trap 'ray stop --force >/dev/null 2>&1 || true' EXIT
export RAY_ADDRESS=127.0.0.1:6379

# Published trials of casia/<stage>/ copied into $WORK/<stage>/ (never over a file there).
source "$(dirname "$0")/restore.sh"
restore() { restore_published "$DOCS/$1" "$WORK/$1"; }

for stage in $STAGES; do
    echo "== $stage $(date -u +%FT%TZ)"
    case $stage in
    featurize)
        attres-flow featurize "$CASIA" --out "$FEATURES"
        ;;
    validate)
        # One seed, 20 % of the paper split's training part held out; the test part unused.
        V=(--models att-Res --seeds 0 --validation 0.2)
        attres-flow train-all "$FEATURES" --out "$WORK/val/constant" "${V[@]}" &
        attres-flow train-all "$FEATURES" --out "$WORK/val/cosine" "${V[@]}" \
            --schedule cosine --warmup-epochs 1 &
        wait
        attres-flow train-all "$FEATURES" --out "$WORK/val/cosine-spec" "${V[@]}" \
            --schedule cosine --warmup-epochs 1 --spec-masks 2 &
        attres-flow train-all "$FEATURES" --out "$WORK/val/plus" --models att-Res+ --seeds 0 \
            --validation 0.2 &
        wait
        ;;
    restore)
        restore paper
        restore loso
        ;;
    paper)
        restore paper
        attres-flow train-all "$FEATURES" --out "$WORK/paper" --models "$PAPER_MODELS" \
            --seeds "$PAPER_SEEDS"
        ;;
    loso)
        restore loso
        attres-flow train-all "$FEATURES" --out "$WORK/loso" --protocol loso \
            --models "$LOSO_MODELS" --seeds "$LOSO_SEEDS"
        ;;
    plus)
        # att-Res+ (the recipe chosen on validation speakers by search_loso.sh) on the test
        # folds, beside att-Res: loso with PLUS_SEEDS (default 0-1), paper with seeds 0-2.
        restore loso
        restore paper
        attres-flow train-all "$FEATURES" --out "$WORK/loso" --protocol loso \
            --models att-Res,att-Res+ --seeds "${PLUS_SEEDS:-0-1}"
        attres-flow train-all "$FEATURES" --out "$WORK/paper" --models att-Res+ --seeds 0-2
        ;;
    publish)
        for runs in "$WORK"/val/* "$WORK/paper" "$WORK/loso"; do
            [ -d "$runs/trials" ] || continue
            name=${runs#"$WORK"/}
            compare=()
            if [ "$name" = paper ] || [ "$name" = loso ]; then
                compare=(--compare att-Res0 --compare att-Res --compare att-Res0+att)
            fi
            attres-flow tables "$runs" --publish "$DOCS/$name" "${compare[@]}" >/dev/null
        done
        ;;
    *)
        echo "unknown stage $stage" >&2
        exit 2
        ;;
    esac
done
