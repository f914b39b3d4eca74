#!/usr/bin/env bash
# Multi-corpus training on the public corpora (the recipe issue's lever): each corpus's
# eGeMAPS-LR under its speaker-independent protocol, every fold's training side joined by
# the other corpora's clips of its classes (--extra-train), weighted W.
#
#   docs/results/run_extra_train.sh WORK [W ...]
#
# WORK holds one folder per corpus as docs/results/run_corpus.sh leaves it (WORK/<name>/
# features, with eGeMAPS); W defaults to 0.3 and 1. Publishes into
# docs/results/<name>/<protocol>-extra-w<W>. Resumes after a kill.
set -euo pipefail
WORK=${1:?usage: run_extra_train.sh WORK [W ...]}
shift
WEIGHTS=${*:-0.3 1}
DOCS=$(cd "$(dirname "$0")" && pwd)
CORPORA=(ravdess savee tess crema-d)
for name in "${CORPORA[@]}"; do
    case $name in
    crema-d) PROTOCOL=(--protocol speaker-kfold --k 5) ;;
    *) PROTOCOL=(--protocol loso) ;;
    esac
    others=()
    for other in "${CORPORA[@]}"; do
        [ "$other" = "$name" ] || others+=("$WORK/$other/features")
    done
    extra=$(IFS=,; echo "${others[*]}")
    for w in $WEIGHTS; do
        runs=$WORK/$name/${PROTOCOL[1]}-extra-w$w
        echo "== $name, weight $w $(date -u +%FT%TZ)"
        attres-flow train-all "$WORK/$name/features" --out "$runs" "${PROTOCOL[@]}" \
            --models eGeMAPS-LR --extra-train "$extra" --extra-weight "$w" --quiet
        attres-flow tables "$runs" --publish "$DOCS/$name/${PROTOCOL[1]}-extra-w$w" >/dev/null
    done
done
