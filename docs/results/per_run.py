"""Every run's figure in a published folder, one row per model (and seed), for docs/results.

    python docs/results/per_run.py docs/results/casia/paper   # WA % and wall s, per seed
    python docs/results/per_run.py docs/results/casia/loso    # UA % per fold, per seed

Under ``paper``: each model's WA per seed and the trials' wall time, with the paper's figure
on CASIA. Under ``loso``/``kfold``: each (model, seed)'s UA per fold and its mean over the
folds. A run not finished yet shows as ``-``. `attres-flow tables` gives the means.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from workflows.runs import load_records
from workflows.tables import PAPER_TABLES, is_casia, model_order


def _cell(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def seed_table(records: list[dict[str, Any]], protocol: str) -> str:
    """One row per model: WA % per seed and trial wall s per seed (folds averaged / summed)."""
    runs = [r for r in records if r["protocol"] == protocol]
    seeds = sorted({r["seed"] for r in runs})
    paper = {m: acc for rows in PAPER_TABLES.values() for m, acc in rows}
    with_paper = protocol == "paper" and is_casia(runs)
    names = ", ".join(map(str, seeds))
    header = ["model"] + (["paper"] if with_paper else [])
    header += [f"WA % per seed ({names})", f"trial wall s per seed ({names})"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for model in (m for m in model_order(runs) if any(r["model"] == m for r in runs)):
        mine = [r for r in runs if r["model"] == model]
        wa, wall = [], []
        for seed in seeds:
            of_seed = [r for r in mine if r["seed"] == seed]
            wa.append(np.mean([100 * r["wa"] for r in of_seed]) if of_seed else None)
            walls = [r["wall_s"] for r in of_seed if r.get("wall_s") is not None]
            wall.append(sum(walls) if walls else None)
        row = [model] + ([_cell(paper.get(model))] if with_paper else [])
        row += [", ".join(map(_cell, wa)), ", ".join(_cell(w, "{:,.0f}") for w in wall)]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def fold_table(records: list[dict[str, Any]], protocol: str) -> str:
    """One row per (model, seed): UA % per fold and the mean over the folds it has."""
    runs = [r for r in records if r["protocol"] == protocol]
    folds = sorted({r["fold"] for r in runs})
    names = ", ".join(f"f{f}" for f in folds)
    lines = [f"| model, seed | UA % per fold ({names}) | mean UA % |", "|---|---|---|"]
    for model in (m for m in model_order(runs) if any(r["model"] == m for r in runs)):
        for seed in sorted({r["seed"] for r in runs if r["model"] == model}):
            ua = {
                r["fold"]: 100 * r["ua"] for r in runs if (r["model"], r["seed"]) == (model, seed)
            }
            per_fold = ", ".join(_cell(ua.get(f)) for f in folds)
            mean = _cell(float(np.mean(list(ua.values()))))
            partial = "" if len(ua) == len(folds) else f" ({len(ua)}/{len(folds)} folds)"
            lines.append(f"| {model}, seed {seed} | {per_fold} | {mean}{partial} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", help="a RUNS folder or its published copy")
    records = load_records(parser.parse_args(argv).runs)
    for protocol in sorted({r["protocol"] for r in records}):
        table = seed_table if protocol == "paper" else fold_table
        print(f"### protocol {protocol}\n\n{table(records, protocol)}\n")


if __name__ == "__main__":
    main()
