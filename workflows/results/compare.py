"""Two models compared paired: by seed, or by held-out speaker under loso, with their spread."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from workflows.grid.config import TrainConfig
from workflows.record import TrialRecord
from workflows.results.tables import complete_seeds, model_order, seed_means
from workflows.results.text import csv_table, text_table

COMPARISON_COLUMNS = (
    "reference", "protocol", "model", "paired_by", "mean_diff", "ci_low", "ci_high", "pi_low",
    "pi_high", "n_pairs", "verdict", "pairs",
)  # fmt: skip

VERDICT_PAIRS = 3


def pair_unit(protocol: str) -> str:
    """What two models are paired by: the held-out speaker(s) (fold) under loso and
    speaker-kfold, else the seed.

    A loso or speaker-kfold fold holds the same speakers for every seed and model, so one
    seed already gives one pair per fold (also under ``loso-validation``); the folds of
    ``paper`` and ``kfold`` are drawn per seed, so there a seed (its folds averaged) is the
    unit.
    """
    return "fold" if protocol.startswith(("loso", "speaker-kfold")) else "seed"


def paired_scores(
    records: list[TrialRecord], model: str, reference: str, protocol: str
) -> dict[int, tuple[float, float]]:
    """{unit: (model's WA %, reference's WA %)} for every unit both models have.

    By seed: the seeds with all the protocol's folds. By fold: in each fold, the mean over
    the seeds both models have there, so the two sides of a pair share their seeds; a model
    with only some folds pairs on those. So under loso the mean difference is over the
    paired folds, and need not equal the difference of the tables' means (seeds with all
    their folds).
    """
    if pair_unit(protocol) == "seed":
        ours = complete_seeds(records, model, protocol)
        ref = complete_seeds(records, reference, protocol)
        return {s: (ours[s], ref[s]) for s in sorted(set(ours) & set(ref))}

    def by_fold(name: str) -> dict[int, dict[int, float]]:
        folds: dict[int, dict[int, float]] = {}
        for r in records:
            if r.model == name and r.protocol == protocol:
                folds.setdefault(r.fold, {})[r.seed] = 100 * r.wa
        return folds

    ours_by_fold, ref_by_fold = by_fold(model), by_fold(reference)
    pairs = {}
    for fold in sorted(set(ours_by_fold) & set(ref_by_fold)):
        model_wa, ref_wa = ours_by_fold[fold], ref_by_fold[fold]  # {seed: WA %}
        seeds = sorted(set(model_wa) & set(ref_wa))
        if seeds:
            pairs[fold] = (
                float(np.mean([model_wa[s] for s in seeds])),
                float(np.mean([ref_wa[s] for s in seeds])),
            )
    return pairs


def compare(
    records: list[TrialRecord], model: str, reference: str, protocol: str
) -> dict[str, Any]:
    """``model - reference`` in WA points, paired by ``pair_unit``, with its spread.

    Over the pairs: the mean difference and its 95 % t-interval (``ci_*``); the 95 %
    prediction interval of one more pair's difference (``pi_*``: where one run such as the
    paper's would fall); none with fewer than two pairs. The verdict: "higher" / "lower"
    when the mean's interval excludes 0, "not resolved" when not, "n/a" with fewer than
    ``VERDICT_PAIRS`` pairs.
    """
    from scipy import stats  # type: ignore[import-untyped]

    scores = paired_scores(records, model, reference, protocol)
    diffs = np.array([ours - ref for ours, ref in scores.values()])
    n = len(diffs)
    low = high = pi_low = pi_high = None
    if n > 1:
        t_sd = stats.t.ppf(0.975, n - 1) * diffs.std(ddof=1)
        half, pi_half = t_sd / np.sqrt(n), t_sd * np.sqrt(1 + 1 / n)
        low, high = float(diffs.mean() - half), float(diffs.mean() + half)
        pi_low, pi_high = float(diffs.mean() - pi_half), float(diffs.mean() + pi_half)
    if low is None or high is None or n < VERDICT_PAIRS:
        verdict = "n/a"
    else:
        verdict = "higher" if low > 0 else "lower" if high < 0 else "not resolved"
    return {
        "reference": reference,
        "protocol": protocol,
        "model": model,
        "paired_by": pair_unit(protocol),
        "mean_diff": float(diffs.mean()) if n else None,
        "ci_low": low,
        "ci_high": high,
        "pi_low": pi_low,
        "pi_high": pi_high,
        "n_pairs": n,
        "verdict": verdict,
        "pairs": list(scores),
    }


def paired_comparisons(records: list[TrialRecord], reference: str) -> list[dict[str, Any]]:
    """Every other model against ``reference`` (``compare``), per protocol, in table order.

    Protocols without runs of ``reference`` give no rows.
    """
    rows = []
    for protocol in sorted({r.protocol for r in records}):
        if not seed_means(records, reference, protocol):
            continue
        models = {r.model for r in records if r.protocol == protocol} - {reference}
        rows += [
            compare(records, model, reference, protocol)
            for model in model_order(records)
            if model in models
        ]
    return rows


def unit_title(unit: str) -> str:
    """``fold`` as a reader knows it under loso: the held-out speaker."""
    return "held-out speaker (fold)" if unit == "fold" else unit


def recipe(record: TrialRecord) -> tuple:
    """What makes a trial evaluated on validation data the same model as one evaluated on
    the test: the model, the features and the settings that change figures (as train-all
    compares them), but for where it was evaluated."""
    config = TrainConfig.from_dict(record.provenance["train_config"])
    tested = dataclasses.replace(config, validation=0.0, validation_speaker=False)
    settings = tuple(sorted(tested.result_settings().items()))
    return record.model, record.provenance.get("features_fingerprint"), settings


def format_interval(row: dict[str, Any], kind: str = "ci") -> str:
    """``[low, high]`` of the mean's interval (``ci``) or the prediction interval (``pi``)."""
    low, high = row[f"{kind}_low"], row[f"{kind}_high"]
    return "" if low is None else f"[{low:+.1f}, {high:+.1f}]"


def difference_cells(row: dict[str, Any]) -> list[str]:
    """A paired comparison's cells: the mean difference, its two intervals, the pairs and
    the verdict."""
    mean = "missing" if row["mean_diff"] is None else f"{row['mean_diff']:+.1f}"
    intervals = [format_interval(row), format_interval(row, "pi")]
    return [mean, *intervals, str(row["n_pairs"]), row["verdict"]]


def render_comparisons(rows: list[dict[str, Any]], fmt: str = "markdown") -> str:
    """Paired differences as markdown, LaTeX or CSV, one table per (reference, protocol).

    "One run, 95 %" is the prediction interval: where a single run's difference, such as a
    paper's, would fall.
    """
    if fmt == "csv":
        return csv_table(rows, COMPARISON_COLUMNS, pairs=lambda s: " ".join(map(str, s)))
    blocks = []
    for ref, protocol in dict.fromkeys((r["reference"], r["protocol"]) for r in rows):
        group = [r for r in rows if (r["reference"], r["protocol"]) == (ref, protocol)]
        unit = pair_unit(protocol)
        title = f"Paired by {unit_title(unit)} against {ref}, protocol {protocol}"
        header = [
            "Model", f"WA - {ref}, points", "95 % interval", "One run, 95 %", f"{unit.title()}s",
            "Verdict",
        ]  # fmt: skip
        body = [[r["model"], *difference_cells(r)] for r in group]
        blocks.append(text_table(fmt, title, header, body))
    return "\n".join(blocks)
