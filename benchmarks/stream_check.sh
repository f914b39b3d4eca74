#!/usr/bin/env bash
# The streamed data path against the in-memory one, paired by seed (the data-path issue's
# check): one network on the paper's 80/20 split of a corpus, seeds 0-2, trained
#   in memory  the trial gathers its split from the grid's shared copy (in-process), and
#   streamed   --stream --workers-per-trial 2: Ray Data streams the rows into two DDP ranks.
# Both see the same split and statistics; the order of the batches differs.
#
#   benchmarks/stream_check.sh CORPUS_DIR WORK [MODEL] [EPOCHS]
#
# e.g. benchmarks/stream_check.sh ../shared/data/casia /tmp/stream-check CNN 25. Writes
# WORK/stream_check.md: WA per seed on each path, the paired differences and the seeds'
# spread. Resumes after a kill (train-all does). With MEMORY_FROM=<a published run folder of
# the same corpus and settings> (docs/results/casia/paper) the in-memory arm's records are
# copied from it, not trained again.
set -euo pipefail
usage="usage: stream_check.sh CORPUS_DIR WORK [MODEL] [EPOCHS]"
CORPUS=${1:?$usage}
WORK=${2:?$usage}
MODEL=${3:-CNN}
EPOCHS=${4:-25}
T=(--models "$MODEL" --seeds 0-2 --epochs "$EPOCHS" --quiet)

attres-flow featurize "$CORPUS" --out "$WORK/features"
if [ -n "${MEMORY_FROM:-}" ]; then
    source "$(dirname "$0")/../docs/results/restore.sh"
    restore_published "$MEMORY_FROM" "$WORK/memory"
fi
attres-flow train-all "$WORK/features" --out "$WORK/memory" "${T[@]}"
attres-flow train-all "$WORK/features" --out "$WORK/streamed" "${T[@]}" \
    --stream --workers-per-trial 2
python - "$WORK" "$MODEL" "$EPOCHS" <<'EOF'
import json, statistics, sys
from pathlib import Path

work, model, epochs = Path(sys.argv[1]), sys.argv[2], sys.argv[3]

def wa(path):
    records = [json.loads(p.read_text()) for p in (work / path / "trials").glob("*.json")]
    return {r["seed"]: 100 * r["wa"] for r in records
            if r["model"] == model and r["seed"] in (0, 1, 2) and r["protocol"] == "paper"}

memory, streamed = wa("memory"), wa("streamed")
seeds = sorted(set(memory) & set(streamed))
diffs = [streamed[s] - memory[s] for s in seeds]
lines = [
    f"# {model}, paper 80/20 split, {epochs} epochs: streamed against in memory (WA %)",
    "",
    "| seed | in memory | streamed (2 DDP ranks) | streamed - in memory |",
    "|---|---|---|---|",
    *(f"| {s} | {memory[s]:.1f} | {streamed[s]:.1f} | {d:+.1f} |" for s, d in zip(seeds, diffs)),
    "",
    f"mean difference {statistics.mean(diffs):+.1f} points; spread of the seeds (std): in "
    f"memory {statistics.stdev(memory[s] for s in seeds):.1f}, streamed "
    f"{statistics.stdev(streamed[s] for s in seeds):.1f}",
]
(work / "stream_check.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
