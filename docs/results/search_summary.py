"""One table of the speaker-independent recipe search: every config's nested-loso validation.

    python docs/results/search_summary.py SEARCH_DIR [--test RUNS ...]

SEARCH_DIR holds one RUNS folder per config (what ``search_loso.sh`` writes under
WORK/search, or the published copies under docs/results/casia/search). Prints, per config
and model, the validation UA of each fold (the held-out training speaker), their mean over
folds and seeds, and the seed ensemble's where there are two or more seeds.

With ``--test RUNS`` (loso runs on the test speakers, e.g. docs/results/casia/loso; repeat
it for runs on other features), also the choice made per fold: in each fold, the config with
the best validation UA, and the test UA of that config on that fold where a RUNS has it
(same model, features and training settings). Each fold's choice reads only its own
validation speaker, so the mean over folds is a nested estimate, free of the bias of one
choice made on every fold's validation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from workflows.record import TrialRecord
from workflows.results.compare import recipe
from workflows.results.tables import ensemble_rows
from workflows.runs import load_records


def configs(search: Path) -> dict[str, list[TrialRecord]]:
    """Config name -> its validation records."""
    return {
        runs.name: [r for r in load_records(str(runs)) if r.evaluated_on == "validation"]
        for runs in sorted(p for p in search.iterdir() if (p / "trials").is_dir())
    }


def fold_ua(records: list[TrialRecord], model: str) -> dict[int, float]:
    """Fold -> UA % of ``model`` on that fold, averaged over seeds."""
    mine = [r for r in records if r.model == model]
    return {
        f: float(np.mean([100 * r.ua for r in mine if r.fold == f]))
        for f in sorted({r.fold for r in mine})
    }


def summary(search: Path) -> str:
    lines = [
        "| config | model | features | UA % per fold | UA % mean | seeds | ensemble UA % |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, records in configs(search).items():
        used = json.loads((search / name / "features_used.json").read_text())["features"]
        ensembles = {row["model"]: row for row in ensemble_rows(records)}
        for model in sorted({r.model for r in records}):
            per_fold = fold_ua(records, model)
            seeds = {r.seed for r in records if r.model == model}
            ensemble = f"{ensembles[model]['ua']:.1f}" if model in ensembles else ""
            folds_text = ", ".join(f"{ua:.1f}" for ua in per_fold.values())
            lines.append(
                f"| {name} | {model} | {Path(used).name} | {folds_text} | "
                f"{np.mean(list(per_fold.values())):.1f} | {len(seeds)} | {ensemble} |"
            )
    return "\n".join(lines)


def per_fold_choice(search: Path, *test: Path) -> str:
    """In each fold the config with the best validation UA, and its test UA on that fold.

    Configs are compared on the seeds they all have (a mean over more seeds is not the same
    draw as one seed's figure); the test UA is the mean over the seeds RUNS has.
    """
    tests = {  # one per trial and features, should a RUNS be named twice
        (r.trial, r.provenance.get("features_fingerprint")): r
        for runs in test
        for r in load_records(str(runs))
        if r.evaluated_on == "test"
    }.values()
    found = configs(search)
    shared = set.intersection(*({r.seed for r in records} for records in found.values()))
    if not shared:
        raise SystemExit(f"the configs under {search} share no seed to compare them on")
    candidates = []  # (config, model, fold -> validation UA, recipe)
    for name, records in found.items():
        records = [r for r in records if r.seed in shared]
        for model in sorted({r.model for r in records}):
            mine = next(r for r in records if r.model == model)
            candidates.append((name, model, fold_ua(records, model), recipe(mine)))
    folds = sorted({f for _, _, ua, _ in candidates for f in ua})
    seeds = ", ".join(map(str, sorted(shared)))
    lines = [
        f"| fold | chosen config (on seeds {seeds}) | validation UA % | test UA % (seeds) |",
        "|---|---|---|---|",
    ]
    chosen_test = []
    for fold in folds:
        scored = [c for c in candidates if fold in c[2]]
        name, model, ua, key = max(scored, key=lambda c: c[2][fold])
        runs = [r for r in tests if r.fold == fold and recipe(r) == key]
        if runs:
            chosen_test.append(float(np.mean([100 * r.ua for r in runs])))
            result = f"{chosen_test[-1]:.1f} ({len(runs)})"
        else:
            result = "not run"
        lines.append(f"| {fold} | {name} ({model}) | {ua[fold]:.1f} | {result} |")
    if len(chosen_test) == len(folds):
        lines.append(f"| mean | | | {np.mean(chosen_test):.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("search", type=Path)
    parser.add_argument(
        "--test", type=Path, action="append", help="loso RUNS on the test speakers (repeatable)"
    )
    args = parser.parse_args()
    print(summary(args.search))
    if args.test:
        print()
        print(per_fold_choice(args.search, *args.test))
