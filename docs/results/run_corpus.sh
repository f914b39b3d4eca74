#!/usr/bin/env bash
# A public corpus end to end (the corpora issue): featurized with its own layout read
# (--corpus NAME), the functionals models and the networks under its speaker-independent
# protocol, published into docs/results/<name>/<protocol>.
#
#   docs/results/run_corpus.sh NAME CORPUS_DIR WORK_DIR [STAGE ...]
#
# NAME is one of ravdess, savee, tess (leave one speaker out) or crema-d (5 folds of whole
# speakers); CORPUS_DIR is the folder its files are in, as the public copies hold them:
#   ravdess  ZenvilleErasmus/RAVDESS-emotions-speech-audio-only @ 29dc10e: Audio_Speech_Actors_01-24
#   savee    xinying233/SpeechEmotionRecognition @ eeb1f61: AudioData
#   tess     Simantini1709/Expression_detection @ 6d9ebbc: "TESS Toronto emotional speech set data"
#   crema-d  sirenm/Master @ db83dc6: the repository's root (CremaTrain, CremaValidation, CremaTest)
#
# Stages (default: all, in this order):
#   restore    the published trials of docs/results/<name>/<protocol> copied into WORK
#              (never over a file): train-all counts them as finished
#   featurize  WORK/features with --functionals egemaps
#   linear     eGeMAPS-LR, eGeMAPS-LR-ST (deterministic: seed 0)
#   mlp        eGeMAPS-MLP, seeds 0-2
#   compare    ComParE functionals added to WORK/features (nothing else made again), and
#              ComParE-LR
#   networks   att-Res and att-Res+ (SEEDS, default 0; NET_EPOCHS, default 25; GPUS, GPUs
#              per trial, default 0: on the CPU)
#   emobox     the functionals models on EmoBox's own folds of the corpus (--protocol
#              predefined), EMOBOX=<EmoBox checkout>/data/<its name for the corpus>
#   emobox-recipe
#              SER-recipe on EmoBox's folds (after the emobox and compare stages)
#   emobox-networks
#              att-Res+ then att-Res on EmoBox's folds (SEEDS, NET_EPOCHS, GPUS), after the
#              emobox stage wrote WORK/emobox-folds.csv
#   publish    tables, records and splits into docs/results/<name>/<protocol> (and
#              <name>/emobox-folds where the emobox stage ran)
# Everything resumes after a kill; publishing is re-made from the records.
set -euo pipefail

usage="usage: run_corpus.sh NAME CORPUS_DIR WORK_DIR [STAGE ...]"
NAME=${1:?$usage}
CORPUS=${2:?$usage}
WORK=${3:?$usage}
shift 3
STAGES=${*:-featurize linear mlp compare networks publish}
SEEDS=${SEEDS:-0}
NET_EPOCHS=${NET_EPOCHS:-25}
NET=(--seeds "$SEEDS" --epochs "$NET_EPOCHS" --gpus-per-trial "${GPUS:-0}")
case $NAME in
ravdess | savee | tess) PROTOCOL=(--protocol loso) ;;
crema-d) PROTOCOL=(--protocol speaker-kfold --k 5) ;;
*)
    echo "$usage (NAME: ravdess, savee, tess or crema-d)" >&2
    exit 2
    ;;
esac
FEATURES=$WORK/features
RUNS=$WORK/${PROTOCOL[1]}
DOCS=$(cd "$(dirname "$0")" && pwd)/$NAME/${PROTOCOL[1]}
T=("$FEATURES" --out "$RUNS" "${PROTOCOL[@]}" --quiet)
source "$(dirname "$0")/restore.sh"

for stage in $STAGES; do
    echo "== $NAME $stage $(date -u +%FT%TZ)"
    case $stage in
    restore) restore_published "$DOCS" "$RUNS" ;;
    featurize)
        attres-flow featurize "$CORPUS" --corpus "$NAME" --out "$FEATURES" --functionals egemaps
        ;;
    linear) attres-flow train-all "${T[@]}" --models eGeMAPS-LR,eGeMAPS-LR-ST ;;
    mlp) attres-flow train-all "${T[@]}" --models eGeMAPS-MLP --seeds 0-2 ;;
    compare)
        attres-flow featurize "$CORPUS" --corpus "$NAME" --out "$FEATURES" --functionals compare
        attres-flow train-all "${T[@]}" --models ComParE-LR
        ;;
    networks)
        attres-flow train-all "${T[@]}" --models att-Res,att-Res+ "${NET[@]}"
        ;;
    emobox)
        attres-flow partition emobox "${EMOBOX:?set EMOBOX to EmoBox data/<corpus>}" \
            --out "$WORK/emobox-folds.csv"
        E=("$FEATURES" --out "$WORK/emobox-folds" --protocol predefined
            --partition "$WORK/emobox-folds.csv" --quiet)
        attres-flow train-all "${E[@]}" --models eGeMAPS-LR,eGeMAPS-LR-ST
        if [ -d "$FEATURES/_functionals/compare" ]; then  # after the compare stage
            attres-flow train-all "${E[@]}" --models ComParE-LR
        fi
        attres-flow train-all "${E[@]}" --models eGeMAPS-MLP --seeds 0-2
        ;;
    emobox-recipe)
        attres-flow train-all "$FEATURES" --out "$WORK/emobox-folds" --protocol predefined \
            --partition "$WORK/emobox-folds.csv" --quiet --models SER-recipe
        ;;
    emobox-networks)
        E=("$FEATURES" --out "$WORK/emobox-folds" --protocol predefined
            --partition "$WORK/emobox-folds.csv" --quiet "${NET[@]}")
        attres-flow train-all "${E[@]}" --models att-Res+
        attres-flow train-all "${E[@]}" --models att-Res
        ;;
    publish)
        attres-flow tables "$RUNS" --publish "$DOCS" >/dev/null
        if [ -d "$WORK/emobox-folds/trials" ]; then
            attres-flow tables "$WORK/emobox-folds" --publish "$DOCS/../emobox-folds" >/dev/null
        fi
        ;;
    *)
        echo "unknown stage $stage" >&2
        exit 2
        ;;
    esac
done
