#!/usr/bin/env bash
# One speaker-independent recipe for every corpus (the recipe issue): each candidate scored
# on validation speakers only, on every corpus that has a speaker to spare, the best mean
# chosen once; then the chosen recipe on every corpus's test folds.
#
#   docs/results/run_recipe_search.sh WORK [STAGE ...]
#
# WORK holds one folder per corpus as docs/results/run_corpus.sh leaves it (WORK/<name>/
# features, with eGeMAPS and ComParE): ravdess, savee, tess, crema-d, and casia (the
# featurize stage makes WORK/casia/features from CASIA=<the CASIA folder>).
#
# Stages (default: search publish):
#   featurize  WORK/casia/features with --functionals egemaps,compare
#   search     the candidates with --validation-speaker: in each test fold, the next
#              training speaker (loso) or the next fold's speakers (CREMA-D's speaker-kfold)
#              is held out and scored; the test speakers are never read. TESS, with two
#              speakers, has none to spare and is not searched. Into WORK/<name>/recipe-search
#              (multi-corpus training: WORK/<name>/recipe-search-extra)
#   test       the chosen recipe (RECIPE, default SER-recipe) and eGeMAPS-LR on every
#              corpus's test folds (its speaker-independent protocol), into
#              WORK/<name>/recipe-test
#   publish    into docs/results/<name>/recipe-search, recipe-search-extra, recipe-test
# ONLY="savee tess" runs the stages on those corpora alone.
# `python docs/results/recipe_table.py` tables the published search and the test.
# Everything resumes after a kill.
set -euo pipefail
WORK=${1:?usage: run_recipe_search.sh WORK [STAGE ...]}
shift
STAGES=${*:-search publish}
RECIPE=${RECIPE:-SER-recipe}
DOCS=$(cd "$(dirname "$0")" && pwd)
CORPORA=(savee casia ravdess crema-d tess)
# the candidates: one seed each, but the MLP (three seeds: it is also the seed ensemble)
CANDIDATES=eGeMAPS-LR,eGeMAPS-LR-ST,ComParE-LR,ComParE-LR-FS,Sets-LR,Sets-LR-ST,eGeMAPS-MLP-ST

protocol_of() {
    case $1 in
    crema-d) echo "--protocol speaker-kfold --k 5" ;;
    *) echo "--protocol loso" ;;
    esac
}

for stage in $STAGES; do
    for name in "${CORPORA[@]}"; do
        [[ -z ${ONLY:-} || " $ONLY " == *" $name "* ]] || continue
        features=$WORK/$name/features
        read -ra protocol <<<"$(protocol_of "$name")"
        search=$WORK/$name/recipe-search
        echo "== $name $stage $(date -u +%FT%TZ)"
        case $stage in
        featurize)
            [ "$name" = casia ] || continue
            attres-flow featurize "${CASIA:?set CASIA to the CASIA folder}" --out "$features" \
                --functionals egemaps,compare
            ;;
        search)
            if [ "$name" = tess ]; then
                echo "tess: two speakers, none to spare for validation: not searched"
                continue
            fi
            V=("$features" "${protocol[@]}" --validation-speaker --quiet)
            attres-flow train-all "${V[@]}" --out "$search" --models "$CANDIDATES" --seeds 0
            attres-flow train-all "${V[@]}" --out "$search" --models eGeMAPS-MLP --seeds 0-2
            others=()
            for other in "${CORPORA[@]}"; do
                [ "$other" = "$name" ] || others+=("$WORK/$other/features")
            done
            extra=$(IFS=,; echo "${others[*]}")
            attres-flow train-all "${V[@]}" --out "$search-extra" --models eGeMAPS-LR \
                --extra-train "$extra" --extra-weight 0.3
            ;;
        test)
            attres-flow train-all "$features" "${protocol[@]}" --quiet --models "eGeMAPS-LR,$RECIPE" \
                --out "$WORK/$name/recipe-test"
            ;;
        publish)
            for runs in "$search" "$search-extra" "$WORK/$name/recipe-test"; do
                [ -d "$runs/trials" ] || continue
                attres-flow tables "$runs" --publish "$DOCS/$name/$(basename "$runs")" >/dev/null
            done
            ;;
        *)
            echo "unknown stage $stage" >&2
            exit 2
            ;;
        esac
    done
done
