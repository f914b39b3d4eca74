"""The paper's Table 1 (ablation) and Table 2 (comparison) from RUNS, beside the paper's numbers.

Also models compared paired (by seed, or by held-out speaker under loso), what the trials
cost, and the published folder another machine continues from.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from attres.registry import model_info

# (model, accuracy %) in the paper's row order, CASIA, random 80/20 split.
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
CSV_COLUMNS = (
    "table", "protocol", "model", "paper_accuracy", "wa_mean", "wa_std", "ua_mean",
    "macro_f1_mean", "n_runs", "n_seeds", "n_folds", "partial_seeds",
)  # fmt: skip
COST_COLUMNS = (
    "protocol", "model", "n_trials", "n_resumed", "device", "params", "wall_s_mean",
    "wall_s_total",
)  # fmt: skip
COMPARISON_COLUMNS = (
    "reference", "protocol", "model", "paired_by", "mean_diff", "ci_low", "ci_high", "pi_low",
    "pi_high", "n_pairs", "verdict", "pairs",
)  # fmt: skip


def expected_folds(records: list[dict[str, Any]], protocol: str) -> int:
    """Folds each seed of ``protocol`` should have.

    One under ``paper``; under ``loso`` and ``kfold`` the folds the records say their
    protocol has (``n_folds``: one per speaker under ``loso``), or, in records older than
    that field, the folds any record shows, and at least the ``k`` of ``kfold`` runs.
    """
    if protocol == "paper":
        return 1
    runs = [r for r in records if r["protocol"] == protocol]
    seen = len({r["fold"] for r in runs})
    recorded = [r.get("n_folds", 0) for r in runs]
    if protocol == "kfold":
        ks = [r.get("provenance", {}).get("train_config", {}).get("k", 0) for r in runs]
        return max([seen, *recorded, *ks])
    return max([seen, *recorded])


def seed_means(
    records: list[dict[str, Any]], model: str, protocol: str, metric: str = "wa"
) -> dict[int, tuple[float, int]]:
    """{seed: (metric in % averaged over the seed's folds, number of folds)} of one model."""
    by_seed: dict[int, list[float]] = {}
    for r in records:
        if r["model"] == model and r["protocol"] == protocol:
            by_seed.setdefault(r["seed"], []).append(100 * r[metric])
    return {seed: (float(np.mean(v)), len(v)) for seed, v in sorted(by_seed.items())}


def complete_seeds(records: list[dict[str, Any]], model: str, protocol: str) -> dict[int, float]:
    """{seed: WA % averaged over folds} of the seeds that have all the protocol's folds."""
    n_folds = expected_folds(records, protocol)
    return {s: wa for s, (wa, n) in seed_means(records, model, protocol).items() if n == n_folds}


def is_casia(records: list[dict[str, Any]]) -> bool:
    """Whether every record's labels are CASIA's six emotions, the paper's figures' labels."""
    return bool(records) and all(set(r.get("label_names") or ()) == CASIA_EMOTIONS for r in records)


def model_order(records: list[dict[str, Any]]) -> list[str]:
    """The paper's models in table order, then the others that have runs."""
    paper = list(dict.fromkeys(m for rows in PAPER_TABLES.values() for m, _ in rows))
    return paper + sorted({r["model"] for r in records} - set(paper))


def table_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (table, protocol, model); models without runs have n_runs 0 and no figures.

    Folds are averaged within a seed first; the mean and std are then over seeds, so every
    seed weighs the same. ``partial_seeds`` maps a seed with fewer than ``n_folds`` folds to
    its fold count. ``paper_accuracy`` is set only under the paper protocol on CASIA's six
    emotions: what the paper measured.
    Models beyond the paper's (e.g. an improved recipe) that have runs follow Table 2.
    """
    protocols = sorted({r["protocol"] for r in records}) or ["paper"]
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


def _fmt(value: float | None, digits: int = 1) -> str:
    return "missing" if value is None else f"{value:.{digits}f}"


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
            + ([_fmt(r["paper_accuracy"]).replace("missing", "")] if with_paper else [])
            + [_mean_std(r), _fmt(r["ua_mean"]), _fmt(r["macro_f1_mean"]), _runs(r)]
            for r in group
        ]
        blocks.append(text_table(fmt, title, header, body))
    return "\n".join(blocks)


def _partial_csv(partial: dict[int, int]) -> str:
    return " ".join(f"{seed}:{n}" for seed, n in partial.items())


def csv_table(rows: list[dict[str, Any]], columns: tuple[str, ...], **formatters: Any) -> str:
    """``columns`` of ``rows`` as CSV; None as empty, ``formatters`` per column."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: "" if row[k] is None else formatters.get(k, lambda v: v)(row[k]) for k in columns}
        )
    return out.getvalue()


ENSEMBLE_COLUMNS = ("protocol", "model", "n_seeds", "n_folds", "wa", "ua", "macro_f1", "ua_single")


def ensemble_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Seed ensembles: on each fold, the class probabilities of a model's seeds averaged.

    Only where the seeds were tested on the same rows (``test_ids_sha1``, the same on every
    fold: leave-one-speaker-out's folds do not depend on the seed; the paper's split does)
    and at least two seeds have every fold. Per (protocol, model): WA, UA and macro-F1 of
    the ensemble averaged over folds, beside ``ua_single``, the mean UA of its seeds alone.
    """
    from attres.metrics import classification_metrics

    rows = []
    for protocol in sorted({r["protocol"] for r in records}):
        n_folds = expected_folds(records, protocol)
        for model in model_order(records):
            runs = [r for r in records if r["model"] == model and r["protocol"] == protocol]
            runs = [r for r in runs if "test_probabilities" in r]
            ua = seed_means(runs, model, protocol, "ua")
            seeds = [seed for seed, (_, n) in ua.items() if n == n_folds]
            by_fold: dict[int, list[dict[str, Any]]] = {}
            for r in runs:
                if r["seed"] in seeds:
                    by_fold.setdefault(r["fold"], []).append(r)
            same_rows = all(len({r["test_ids_sha1"] for r in f}) == 1 for f in by_fold.values())
            if len(seeds) < 2 or not same_rows:
                continue
            scores = []
            for fold in by_fold.values():
                mean = np.mean([r["test_probabilities"] for r in fold], axis=0)  # (N, classes)
                labels = np.asarray(fold[0]["test_labels"])
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
            [r["model"], str(r["n_seeds"]), _fmt(r["wa"]), _fmt(r["ua"]), _fmt(r["macro_f1"]),
             _fmt(r["ua_single"])]
            for r in rows if r["protocol"] == protocol
        ]  # fmt: skip
        blocks.append(text_table(fmt, title, header, body))
    return "\n".join(blocks)


def cost_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the trials cost, per (protocol, model), then one ``all models`` row per protocol.

    ``wall_s_mean`` and ``wall_s_total`` are over the trials that recorded their wall time
    (each trial's own: trials that ran side by side each count in full, so the total is
    not the grid's elapsed time). ``n_resumed`` counts the trials resumed from a
    checkpoint; their wall time adds their earlier attempts up to the last checkpoint
    (``earlier_attempts_s``), except in records written before it was kept, which count
    the last attempt only. ``device`` lists the devices the trials ran on.
    """
    rows = []
    for protocol in sorted({r["protocol"] for r in records}):
        runs = [r for r in records if r["protocol"] == protocol]
        groups = [(m, [r for r in runs if r["model"] == m]) for m in model_order(runs)]
        for model, group in [g for g in groups if g[1]] + [("all models", runs)]:
            walls = [r["wall_s"] for r in group if r.get("wall_s") is not None]
            params = {r["params"] for r in group if r.get("params") is not None}
            params = params if model != "all models" else set()
            rows.append(
                {
                    "protocol": protocol,
                    "model": model,
                    "n_trials": len(group),
                    "n_resumed": sum(bool(r.get("resumed_from_epoch")) for r in group),
                    "device": " ".join(sorted({_device(r) for r in group})),
                    "params": params.pop() if len(params) == 1 else None,  # one architecture
                    "wall_s_mean": float(np.mean(walls)) if walls else None,
                    "wall_s_total": float(np.sum(walls)) if walls else None,
                }
            )
    return rows


def _device(record: dict[str, Any]) -> str:
    """``cpu``, ``cuda`` (whatever its index), or ``unknown`` in older records."""
    return (record.get("device") or "unknown").split(":")[0]


def render_cost(rows: list[dict[str, Any]], fmt: str = "markdown") -> str:
    """The cost rows as one table per protocol (markdown or LaTeX), or CSV."""
    if fmt == "csv":
        return csv_table(rows, COST_COLUMNS)
    blocks = []
    for protocol in dict.fromkeys(r["protocol"] for r in rows):
        title = f"Cost of the trials, protocol {protocol}"
        header = ["Model", "Trials", "Resumed", "Device", "Parameters", "Wall s per trial",
                  "Wall s in all"]  # fmt: skip
        body = [
            [r["model"], str(r["n_trials"]), str(r["n_resumed"]), r["device"],
             *("" if v is None else f"{v:,.0f}"
               for v in (r["params"], r["wall_s_mean"], r["wall_s_total"]))]
            for r in rows if r["protocol"] == protocol
        ]  # fmt: skip
        blocks.append(text_table(fmt, title, header, body))
    return "\n".join(blocks)


# Pairs a verdict needs. Two give one degree of freedom, and test sets score in steps (one
# clip of 240 is 0.42 points on CASIA's paper split): two equal differences, not rare, make
# an interval of width zero.
VERDICT_PAIRS = 3


def pair_unit(protocol: str) -> str:
    """What two models are paired by: the held-out speaker (fold) under loso, else the seed.

    A loso fold is the same speaker for every seed and model, so one seed already gives
    one pair per speaker (also under ``loso-validation``); the folds of ``paper`` and
    ``kfold`` are drawn per seed, so there a seed (its folds averaged) is the unit.
    """
    return "fold" if protocol.startswith("loso") else "seed"


def paired_scores(
    records: list[dict[str, Any]], model: str, reference: str, protocol: str
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
            if r["model"] == name and r["protocol"] == protocol:
                folds.setdefault(r["fold"], {})[r["seed"]] = 100 * r["wa"]
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
    records: list[dict[str, Any]], model: str, reference: str, protocol: str
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


def paired_comparisons(records: list[dict[str, Any]], reference: str) -> list[dict[str, Any]]:
    """Every other model against ``reference`` (``compare``), per protocol, in table order.

    Protocols without runs of ``reference`` give no rows.
    """
    rows = []
    for protocol in sorted({r["protocol"] for r in records}):
        if not seed_means(records, reference, protocol):
            continue
        models = {r["model"] for r in records if r["protocol"] == protocol} - {reference}
        rows += [
            compare(records, model, reference, protocol)
            for model in model_order(records)
            if model in models
        ]
    return rows


def unit_title(unit: str) -> str:
    """``fold`` as a reader knows it under loso: the held-out speaker."""
    return "held-out speaker (fold)" if unit == "fold" else unit


def format_interval(row: dict[str, Any], kind: str = "ci") -> str:
    """``[low, high]`` of the mean's interval (``ci``) or the prediction interval (``pi``)."""
    low, high = row[f"{kind}_low"], row[f"{kind}_high"]
    return "" if low is None else f"[{low:+.1f}, {high:+.1f}]"


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
        body = [
            [
                r["model"],
                "missing" if r["mean_diff"] is None else f"{r['mean_diff']:+.1f}",
                format_interval(r),
                format_interval(r, "pi"),
                str(r["n_pairs"]),
                r["verdict"],
            ]
            for r in group
        ]
        blocks.append(text_table(fmt, title, header, body))
    return "\n".join(blocks)


def text_table(fmt: str, title: str, header: list[str], body: list[list[str]]) -> str:
    """One titled table, LaTeX when ``fmt`` is "latex", else markdown."""
    return (latex_table if fmt == "latex" else markdown_table)(title, header, body)


def markdown_table(title: str, header: list[str], body: list[list[str]]) -> str:
    """A ``###`` title, then a pipe table."""
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


_LATEX = {"%": r"\%", "±": r"$\pm$", "×": r"$\times$", "_": r"\_"}


def _esc(text: str) -> str:
    return "".join(_LATEX.get(c, c) for c in text)


def latex_table(title: str, header: list[str], body: list[list[str]]) -> str:
    """A captioned LaTeX table, special characters escaped."""
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{_esc(title)}}}",
             r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\hline",
             " & ".join(_esc(h) for h in header) + r" \\", r"\hline"]  # fmt: skip
    lines += [" & ".join(_esc(c) for c in row) + r" \\" for row in body]
    lines += [r"\hline", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def write_plots(records: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """A row-normalized confusion-matrix PNG per model and protocol, and one PNG of curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for model, protocol in sorted({(r["model"], r["protocol"]) for r in records}):
        runs = [r for r in records if r["model"] == model and r["protocol"] == protocol]
        cm = np.sum([np.array(r["confusion"]) for r in runs], axis=0).astype(float)
        cm_norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        names = runs[0]["label_names"]
        fig, ax = plt.subplots(figsize=(4.6, 4))
        ax.imshow(cm_norm, cmap="Blues", vmin=0, vmax=1)
        for i, j in np.ndindex(cm.shape):
            color = "white" if cm_norm[i, j] > 0.6 else "black"
            ax.text(j, i, f"{cm_norm[i, j]:.2f}", ha="center", va="center", fontsize=7, color=color)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{model} ({protocol}, {len(runs)} runs)", fontsize=9)
        fig.tight_layout()
        path = out_dir / f"confusion-{protocol}-{model_info(model).slug}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    curved = [r for r in records if r.get("curves", {}).get("train_loss")]
    if curved:
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
        for model, protocol in sorted({(r["model"], r["protocol"]) for r in curved}):
            runs = [r for r in curved if r["model"] == model and r["protocol"] == protocol]
            n = min(len(r["curves"]["train_loss"]) for r in runs)
            loss = np.mean([r["curves"]["train_loss"][:n] for r in runs], axis=0)
            acc = np.mean([r["curves"]["test_acc"][:n] for r in runs], axis=0)
            label = f"{model} ({protocol})"
            ax_loss.plot(range(1, n + 1), loss, label=label)
            ax_acc.plot(range(1, n + 1), 100 * acc, label=label)
        ax_loss.set(xlabel="epoch", ylabel="training loss", title="Training loss (mean over runs)")
        ax_acc.set(
            xlabel="epoch",
            ylabel="test accuracy %",
            title="Test accuracy per epoch (not used for selection)",
        )
        ax_acc.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = out_dir / "training-curves.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written


TRIAL_COLUMNS = (
    "trial", "model", "protocol", "seed", "fold", "split", "wa", "ua", "macro_f1",
    "n_train", "n_test", "epochs", "train_s", "wall_s", "resumed_from_epoch",
    "earlier_attempts_s", "device",
)  # fmt: skip


def publish(
    records: list[dict[str, Any]], runs: str, out: Path, references: tuple[str, ...] = ()
) -> list[Path]:
    """One folder with what a reader needs to re-check a grid, and another machine to continue it.

    ``tables.md`` and ``results.csv`` (the paper's tables; seed ensembles where there are
    any, also as ``ensembles.csv``), ``cost.md`` / ``.csv`` (trial wall time per model),
    ``trials.csv`` (one row per trial), ``comparisons.md`` / ``.csv`` (paired against each
    of ``references``), ``claims.md`` / ``.csv`` (the paper's claims, where both models of
    one have runs), ``train_config.json`` (RUNS' training settings),
    ``features.json`` (the feature settings and labels of the FEATURES the trials read),
    ``plots/``, and copies of RUNS' ``trials/``, ``splits/`` and ``features_used.json``:
    restored into a RUNS, they make ``train-all``
    count those trials as done.
    """
    out.mkdir(parents=True, exist_ok=True)
    rows = table_rows(records)
    ensembles = ensemble_rows(records)
    (out / "tables.md").write_text(
        "\n".join(filter(None, [render(rows, "markdown"), render_ensembles(ensembles)]))
    )
    (out / "results.csv").write_text(render(rows, "csv"))
    written = [out / n for n in ("tables.md", "results.csv")]
    if ensembles:
        (out / "ensembles.csv").write_text(render_ensembles(ensembles, "csv"))
        written.append(out / "ensembles.csv")
    cost = cost_rows(records)
    (out / "cost.md").write_text(render_cost(cost))
    (out / "cost.csv").write_text(render_cost(cost, "csv"))
    written += [out / "cost.md", out / "cost.csv"]
    trials = io.StringIO()
    writer = csv.DictWriter(trials, fieldnames=TRIAL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: r.get(c) for c in TRIAL_COLUMNS} for r in records)
    (out / "trials.csv").write_text(trials.getvalue())
    written.append(out / "trials.csv")
    if references:
        pairs = {ref: paired_comparisons(records, ref) for ref in references}
        (out / "comparisons.md").write_text(
            "\n".join(
                f"## Against {ref}\n\n" + (render_comparisons(rows) or f"No runs of {ref}.\n")
                for ref, rows in pairs.items()
            )
        )
        (out / "comparisons.csv").write_text(
            render_comparisons([r for rows in pairs.values() for r in rows], "csv")
        )
        written += [out / "comparisons.md", out / "comparisons.csv"]
    from workflows.claims import claim_rows, render_claims  # claims builds on this module

    claims = claim_rows(records)
    if claims:
        (out / "claims.md").write_text(render_claims(claims))
        (out / "claims.csv").write_text(render_claims(claims, "csv"))
        written += [out / "claims.md", out / "claims.csv"]
    written += copy_run_state(runs, out)
    features = _features_meta(records)
    if features is not None:
        (out / "features.json").write_bytes(features)
    return written + write_plots(records, out / "plots")


def copy_run_state(runs: str, out: Path) -> list[Path]:
    """Copy RUNS' trial records, splits, ``train_config.json`` and ``features_used.json``."""
    import pyarrow.fs as pafs

    from featurize.location import Location

    fs, root = Location(runs).filesystem()
    paths = [f"{root}/{name}" for name in ("train_config.json", "features_used.json")]
    for folder in ("trials", "splits"):
        infos = fs.get_file_info(pafs.FileSelector(f"{root}/{folder}", allow_not_found=True))
        paths += sorted(i.path for i in infos if i.base_name.endswith(".json"))
    written = []
    for path, info in zip(paths, fs.get_file_info(paths), strict=True):
        if info.type != pafs.FileType.File:
            continue
        target = out / path[len(root) + 1 :]
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(path) as f:
            target.write_bytes(f.read())
        written.append(target)
    return written


def _features_meta(records: list[dict[str, Any]]) -> bytes | None:
    """The feature metadata of the first FEATURES store the records name that is readable here.

    Records restored from another machine may name a store that exists only there.
    """
    from featurize.location import Location
    from featurize.store import META_FILE

    for store in dict.fromkeys(r["provenance"]["features"] for r in records):
        meta = Location(store).child(META_FILE)
        if meta.exists():
            return meta.read()
    return None
