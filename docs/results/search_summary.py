"""One table of the speaker-independent recipe search: every config's nested-loso validation.

    python docs/results/search_summary.py SEARCH_DIR

SEARCH_DIR holds one RUNS folder per config (what ``search_loso.sh`` writes under
WORK/search, or the published copies under docs/results/casia/search). Prints, per config
and model, the validation UA of each fold (the held-out training speaker), their mean over
folds and seeds, and the seed ensemble's where there are two or more seeds.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from workflows.runs import load_records
from workflows.tables import ensemble_rows


def summary(search: Path) -> str:
    lines = [
        "| config | model | features | UA % per fold | UA % mean | seeds | ensemble UA % |",
        "|---|---|---|---|---|---|---|",
    ]
    for runs in sorted(p for p in search.iterdir() if (p / "trials").is_dir()):
        records = [r for r in load_records(str(runs)) if r["evaluated_on"] == "validation"]
        used = json.loads((runs / "features_used.json").read_text())["features"]
        ensembles = {row["model"]: row for row in ensemble_rows(records)}
        for model in sorted({r["model"] for r in records}):
            mine = [r for r in records if r["model"] == model]
            folds = sorted({r["fold"] for r in mine})
            per_fold = [np.mean([100 * r["ua"] for r in mine if r["fold"] == f]) for f in folds]
            seeds = sorted({r["seed"] for r in mine})
            ensemble = f"{ensembles[model]['ua']:.1f}" if model in ensembles else ""
            folds_text = ", ".join(f"{ua:.1f}" for ua in per_fold)
            lines.append(
                f"| {runs.name} | {model} | {Path(used).name} | {folds_text} | "
                f"{np.mean(per_fold):.1f} | {len(seeds)} | {ensemble} |"
            )
    return "\n".join(lines)


if __name__ == "__main__":
    print(summary(Path(sys.argv[1])))
