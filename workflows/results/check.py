"""Re-check a published figure: re-run one model with one seed and compare it with the table.

A published result folder (``docs/results/<corpus>/<protocol>/``) holds ``results.csv``
(written by ``attres-flow tables --format csv``), ``train_config.json`` and
``features.json`` (the run's settings; ``attres-flow tables RUNS --publish DIR`` writes
them all). ``attres-flow check`` featurizes the corpus with the
same feature settings, trains the model with the same training settings for one seed and
says whether its WA lies within the published spread.

The spread allowed is two standard deviations of the published runs, and never less than
two binomial standard errors of a single test set of this size (one 240-clip test set
carries about +/-3 points of sampling noise on its own).
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Verdict:
    model: str
    protocol: str
    wa: float  # percent, this run
    published_mean: float  # percent
    published_std: float  # percent, over the published runs
    published_runs: int
    tolerance: float  # percent: the half-width of the accepted band

    @property
    def within(self) -> bool:
        return abs(self.wa - self.published_mean) <= self.tolerance

    def __str__(self) -> str:
        verdict = "within" if self.within else "OUTSIDE"
        return (
            f"{self.model} ({self.protocol}): WA {self.wa:.1f} % vs published "
            f"{self.published_mean:.1f} +/- {self.published_std:.1f} % "
            f"({self.published_runs} runs); {verdict} the accepted band of "
            f"+/-{self.tolerance:.1f} points"
        )


def published_row(published: Path, model: str, protocol: str) -> dict[str, Any]:
    """The row of ``published/results.csv`` for ``model`` under ``protocol``, with runs."""
    with open(published / "results.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["model"] == model and r["protocol"] == protocol]
    rows = [r for r in rows if int(r["n_runs"]) > 0]
    if not rows:
        raise ValueError(f"{published / 'results.csv'} has no finished {model} runs ({protocol})")
    return rows[0]


def compare(wa: float, n_test: int, row: dict[str, Any]) -> Verdict:
    """Verdict for one run's WA (a fraction) on ``n_test`` clips against a published row."""
    mean, std = float(row["wa_mean"]), float(row["wa_std"] or 0.0)
    sampling = 100 * math.sqrt(max(wa * (1 - wa), 1e-4) / n_test)  # binomial standard error
    return Verdict(
        model=row["model"],
        protocol=row["protocol"],
        wa=100 * wa,
        published_mean=mean,
        published_std=std,
        published_runs=int(row["n_runs"]),
        tolerance=2 * max(std, sampling),
    )


def check(
    corpus: Path,
    published: Path,
    model: str,
    seed: int,
    work: Path,
    address: str | None = None,
    display: str = "auto",
) -> Verdict:
    """Featurize ``corpus`` and train ``model`` for ``seed`` as the published run did; compare."""
    from featurize.config import FeatureConfig
    from workflows.grid.config import TrainConfig
    from workflows.grid.pipeline import featurize_and_train

    corpus, published = Path(corpus).resolve(), Path(published).resolve()
    train_cfg = TrainConfig.from_dict(json.loads((published / "train_config.json").read_text()))
    feature_cfg = FeatureConfig(**json.loads((published / "features.json").read_text())["config"])
    row = published_row(published, model, train_cfg.protocol)
    chain = featurize_and_train(
        corpus, Path(work).resolve(), feature_cfg, train_cfg, [model], [seed], address,
        display=display,
    )  # fmt: skip
    if chain.grid.failed:
        raise RuntimeError(f"the trial failed: {chain.grid.failed}; re-run the same command")
    folds = [r for r in chain.records if r.model == model and r.seed == seed]
    n_test = sum(r.n_test for r in folds)
    return compare(sum(r.wa * r.n_test for r in folds) / n_test, n_test, row)
