"""The paper's Table 1 (ablation) and Table 2 (comparison) from RUNS, beside the paper's numbers.

Also the seed ensembles: on each fold, the class probabilities of a model's seeds averaged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from attres.models import list_models
from workflows.record import TrialRecord
from workflows.results.text import csv_table, number, text_table

PAPER_TABLES: dict[str, tuple[tuple[str, float], ...]] = {
    "Table 1": (
        ("att-Res0", 57.2),
        ("att-Res0+att", 58.7),
        ("att-Res1", 64.4),
        ("att-Res2", 67.3),
        ("att-Res", 69.8),
        ("att-Res3", 66.1),
    ),
    "Table 2": (
        ("CNN", 46.9),
        ("LSTM+CNN", 49.2),
        ("SVM", 50.2),
        ("AlexNet", 51.7),
        ("ResNet-18", 50.3),
        ("att-Res", 69.8),
    ),
}
CASIA_EMOTIONS = frozenset({"angry", "fear", "happy", "neutral", "sad", "surprise"})
# the same six in the shared vocabulary (featurize --corpus casia, featurize.corpora)
CASIA_SHARED = frozenset({"anger", "fear", "happiness", "neutral", "sadness", "surprise"})
CSV_COLUMNS = (
    "table", "protocol", "model", "paper_accuracy", "wa_mean", "wa_std", "ua_mean",
    "macro_f1_mean", "n_runs", "n_seeds", "n_folds", "partial_seeds",
)  # fmt: skip


def expected_folds(records: list[TrialRecord], protocol: str) -> int:
    """Folds each seed of ``protocol`` should have.

    One under ``paper``; else the folds the records say their protocol has (``n_folds``:
    one per speaker under ``loso``), and at least the folds any record shows (records that
    do not know their ``n_folds`` count by these).
    """
    if protocol == "paper":
        return 1
    runs = [r for r in records if r.protocol == protocol]
    recorded = [r.n_folds for r in runs if r.n_folds is not None]
    return max([len({r.fold for r in runs}), *recorded])


def seed_means(
    records: list[TrialRecord], model: str, protocol: str, metric: str = "wa"
) -> dict[int, tuple[float, int]]:
    """{seed: (metric in % averaged over the seed's folds, number of folds)} of one model."""
    by_seed: dict[int, list[float]] = {}
    for r in records:
        if r.model == model and r.protocol == protocol:
            by_seed.setdefault(r.seed, []).append(100 * getattr(r, metric))
    return {seed: (float(np.mean(v)), len(v)) for seed, v in sorted(by_seed.items())}


def complete_seeds(records: list[TrialRecord], model: str, protocol: str) -> dict[int, float]:
    """{seed: WA % averaged over folds} of the seeds that have all the protocol's folds."""
    n_folds = expected_folds(records, protocol)
    return {s: wa for s, (wa, n) in seed_means(records, model, protocol).items() if n == n_folds}


def is_casia(records: list[TrialRecord]) -> bool:
    """Whether every record's labels are CASIA's six emotions, the paper's figures' labels."""
    casia = (CASIA_EMOTIONS, CASIA_SHARED)
    return bool(records) and all(set(r.label_names) in casia for r in records)


def model_order(records: list[TrialRecord]) -> list[str]:
    """The paper's models in table order, then the others that have runs: the registry's in
    its order, then fusions (``workflows.results.fusion``) by name."""
    paper = list(dict.fromkeys(m for rows in PAPER_TABLES.values() for m, _ in rows))
    others = {r.model for r in records} - set(paper)
    registered = [m for m in list_models() if m in others]
    return paper + registered + sorted(others - set(registered))


def table_rows(records: list[TrialRecord]) -> list[dict[str, Any]]:
    """One row per (table, protocol, model); models without runs have n_runs 0 and no figures.

    Folds are averaged within a seed first; the mean and std are then over seeds, so every
    seed weighs the same. ``partial_seeds`` maps a seed with fewer than ``n_folds`` folds to
    its fold count. ``paper_accuracy`` is set only under the paper protocol on CASIA's six
    emotions: what the paper measured.
    Models beyond the paper's (e.g. an improved recipe) that have runs follow Table 2.
    """
    protocols = sorted({r.protocol for r in records}) or ["paper"]
    paper_models = {m for rows in PAPER_TABLES.values() for m, _ in rows}
    extra = [m for m in model_order(records) if m not in paper_models]
    casia = is_casia(records)
    rows = []
    for protocol in protocols:
        n_folds = expected_folds(records, protocol)
        for table, paper_rows in PAPER_TABLES.items():
            entries = list(paper_rows) + ([(m, None) for m in extra] if table == "Table 2" else [])
            for model, paper_acc in entries:
                wa, ua, f1 = (
                    [mean for mean, _ in seed_means(records, model, protocol, metric).values()]
                    for metric in ("wa", "ua", "macro_f1")
                )
                folds = {s: n for s, (_, n) in seed_means(records, model, protocol).items()}
                rows.append(
                    {
                        "table": table,
                        "protocol": protocol,
                        "model": model,
                        # the paper's figures are CASIA's random 80/20 test split
                        "paper_accuracy": paper_acc if casia and protocol == "paper" else None,
                        "wa_mean": float(np.mean(wa)) if wa else None,
                        "wa_std": float(np.std(wa, ddof=1)) if len(wa) > 1 else None,
                        "ua_mean": float(np.mean(ua)) if wa else None,
                        "macro_f1_mean": float(np.mean(f1)) if wa else None,
                        "n_runs": sum(folds.values()),
                        "n_seeds": len(folds),
                        "n_folds": n_folds,
                        "partial_seeds": {s: n for s, n in folds.items() if n < n_folds},
                    }
                )
    return rows


def _mean_std(row: dict[str, Any]) -> str:
    if row["wa_mean"] is None:
        return "missing"
    if row["wa_std"] is None:
        return f"{row['wa_mean']:.1f}"
    return f"{row['wa_mean']:.1f} ± {row['wa_std']:.1f}"


def _runs(row: dict[str, Any]) -> str:
    """E.g. ``5 seeds``, ``1 seed × 4 folds``, ``2 seeds; seed 1: 3/4 folds``."""
    n, folds = row["n_seeds"], row["n_folds"]
    if n == 0:
        return "0"
    seeds = f"{n} seed{'s' if n > 1 else ''}"
    partial = row["partial_seeds"]
    if partial:
        return f"{seeds}; " + ", ".join(f"seed {s}: {k}/{folds} folds" for s, k in partial.items())
    return seeds if folds == 1 else f"{seeds} × {folds} folds"


def render(rows: list[dict[str, Any]], fmt: str = "markdown") -> str:
    """The tables as markdown, LaTeX or CSV; the paper's column only where a row has a figure."""
    if fmt == "csv":
        return csv_table(rows, CSV_COLUMNS, partial_seeds=_partial_csv)
    blocks = []
    for key in dict.fromkeys((r["table"], r["protocol"]) for r in rows):
        group = [r for r in rows if (r["table"], r["protocol"]) == key]
        with_paper = any(r["paper_accuracy"] is not None for r in group)
        title = (
            f"{key[0]} ({'ablation' if key[0] == 'Table 1' else 'comparison'}), protocol {key[1]}"
        )
        header = ["Model"] + (["Paper acc. %"] if with_paper else [])
        header += ["WA % (mean ± std over seeds)", "UA %", "Macro-F1 %", "Runs"]
        body = [
            [r["model"]]
            + ([number(r["paper_accuracy"]).replace("missing", "")] if with_paper else [])
            + [_mean_std(r), number(r["ua_mean"]), number(r["macro_f1_mean"]), _runs(r)]
            for r in group
        ]
        blocks.append(text_table(fmt, title, header, body))
    return "\n".join(blocks)


def _partial_csv(partial: dict[int, int]) -> str:
    return " ".join(f"{seed}:{n}" for seed, n in partial.items())


ENSEMBLE_COLUMNS = ("protocol", "model", "n_seeds", "n_folds", "wa", "ua", "macro_f1", "ua_single")


def ensemble_rows(records: list[TrialRecord]) -> list[dict[str, Any]]:
    """Seed ensembles: on each fold, the class probabilities of a model's seeds averaged.

    Only where the seeds were tested on the same rows (``test_ids_sha1``, the same on every
    fold: leave-one-speaker-out's folds do not depend on the seed; the paper's split does)
    and at least two seeds have every fold. Per (protocol, model): WA, UA and macro-F1 of
    the ensemble averaged over folds, beside ``ua_single``, the mean UA of its seeds alone.
    """
    from attres.metrics import classification_metrics

    rows = []
    for protocol in sorted({r.protocol for r in records}):
        n_folds = expected_folds(records, protocol)
        for model in model_order(records):
            runs = [r for r in records if r.model == model and r.protocol == protocol]
            runs = [r for r in runs if r.test_probabilities is not None]
            ua = seed_means(runs, model, protocol, "ua")
            seeds = [seed for seed, (_, n) in ua.items() if n == n_folds]
            by_fold: dict[int, list[TrialRecord]] = {}
            for r in runs:
                if r.seed in seeds:
                    by_fold.setdefault(r.fold, []).append(r)
            same_rows = all(len({r.test_ids_sha1 for r in f}) == 1 for f in by_fold.values())
            if len(seeds) < 2 or not same_rows:
                continue
            scores = []
            for fold in by_fold.values():
                probabilities = [r.test_probabilities or [] for r in fold]  # none empty here
                mean = np.mean(probabilities, axis=0)  # (N, classes)
                labels = np.asarray(fold[0].test_labels)
                scores.append(classification_metrics(labels, mean.argmax(1), mean.shape[1]))
            row = {"protocol": protocol, "model": model, "n_seeds": len(seeds)}
            row["n_folds"] = len(by_fold)
            for key in ("wa", "ua", "macro_f1"):
                row[key] = 100 * float(np.mean([m[key] for m in scores]))
            row["ua_single"] = float(np.mean([ua[seed][0] for seed in seeds]))
            rows.append(row)
    return rows


def render_ensembles(rows: list[dict[str, Any]], fmt: str = "markdown") -> str:
    """The seed ensembles as one table per protocol; empty when there are none."""
    if fmt == "csv":
        return csv_table(rows, ENSEMBLE_COLUMNS) if rows else ""
    blocks = []
    for protocol in dict.fromkeys(r["protocol"] for r in rows):
        title = f"Seed ensembles (probabilities averaged over seeds), protocol {protocol}"
        header = ["Model", "Seeds", "WA %", "UA %", "Macro-F1 %", "UA % of one seed (mean)"]
        body = [
            [r["model"], str(r["n_seeds"]), number(r["wa"]), number(r["ua"]), number(r["macro_f1"]),
             number(r["ua_single"])]
            for r in rows if r["protocol"] == protocol
        ]  # fmt: skip
        blocks.append(text_table(fmt, title, header, body))
    return "\n".join(blocks)
