"""Every run's figure in a published folder, one row per model (and seed), for docs/results.

    python docs/results/per_run.py docs/results/casia/paper   # WA % and wall s, per seed
    python docs/results/per_run.py docs/results/casia/loso    # UA % per fold, per seed

Where seeds are the unit (``paper``, ``kfold``): each model's WA per seed (folds averaged)
and the trials' wall time, with the paper's figure on CASIA. Under ``loso``: each (model,
seed)'s UA per held-out speaker (fold) and its mean over the folds it has. A run not
finished yet shows as ``-``. `attres-flow tables` gives the means over seeds.
"""

from __future__ import annotations

import argparse

import numpy as np

from workflows.record import TrialRecord
from workflows.results.compare import pair_unit
from workflows.results.tables import PAPER_TABLES, expected_folds, is_casia, model_order
from workflows.results.text import markdown_table
from workflows.runs import load_records


def _cell(value: float | None, fmt: str = "{:.1f}") -> str:
    return "-" if value is None else fmt.format(value)


def _models(runs: list[TrialRecord]) -> list[str]:
    return [m for m in model_order(runs) if any(r.model == m for r in runs)]


def seed_table(runs: list[TrialRecord], protocol: str) -> str:
    """One row per model: WA % per seed (folds averaged) and trial wall s per seed (summed)."""
    seeds = sorted({r.seed for r in runs})
    paper = {m: acc for rows in PAPER_TABLES.values() for m, acc in rows}
    with_paper = protocol == "paper" and is_casia(runs)
    names = ", ".join(map(str, seeds))
    header = ["model"] + (["paper"] if with_paper else [])
    header += [f"WA % per seed ({names})", f"trial wall s per seed ({names})"]
    body = []
    for model in _models(runs):
        wa, wall = [], []
        for seed in seeds:
            of_seed = [r for r in runs if (r.model, r.seed) == (model, seed)]
            wa.append(np.mean([100 * r.wa for r in of_seed]) if of_seed else None)
            walls = [r.wall_s for r in of_seed]
            wall.append(sum(walls) if walls else None)
        row = [model] + ([_cell(paper.get(model))] if with_paper else [])
        body.append(row + [", ".join(map(_cell, wa)), ", ".join(_cell(w, "{:,.0f}") for w in wall)])
    return markdown_table(f"protocol {protocol}", header, body)


def fold_table(runs: list[TrialRecord], protocol: str) -> str:
    """One row per (model, seed): UA % per fold and the mean over the folds it has."""
    n_folds = expected_folds(runs, protocol)
    names = ", ".join(f"f{f}" for f in range(n_folds))
    header = ["model, seed", f"UA % per fold ({names})", "mean UA %"]
    body = []
    for model in _models(runs):
        for seed in sorted({r.seed for r in runs if r.model == model}):
            ua = {r.fold: 100 * r.ua for r in runs if (r.model, r.seed) == (model, seed)}
            mean = _cell(float(np.mean(list(ua.values()))))
            partial = "" if len(ua) == n_folds else f" ({len(ua)}/{n_folds} folds)"
            per_fold = ", ".join(_cell(ua.get(f)) for f in range(n_folds))
            body.append([f"{model}, seed {seed}", per_fold, mean + partial])
    return markdown_table(f"protocol {protocol}", header, body)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", help="a RUNS folder or its published copy")
    records = load_records(parser.parse_args(argv).runs)
    for protocol in sorted({r.protocol for r in records}):
        runs = [r for r in records if r.protocol == protocol]
        print((seed_table if pair_unit(protocol) == "seed" else fold_table)(runs, protocol))


if __name__ == "__main__":
    main()
