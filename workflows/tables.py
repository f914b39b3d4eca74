"""The paper's Table 1 (ablation) and Table 2 (comparison) from RUNS, beside the paper's numbers."""

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
CSV_COLUMNS = (
    "table", "protocol", "model", "paper_accuracy", "wa_mean", "wa_std", "ua_mean",
    "macro_f1_mean", "n_runs",
)  # fmt: skip


def table_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (table, protocol, model); models without runs have n_runs 0 and no figures.

    Models beyond the paper's (e.g. an improved recipe) that have runs follow Table 2.
    """
    protocols = sorted({r["protocol"] for r in records}) or ["paper"]
    paper_models = {m for rows in PAPER_TABLES.values() for m, _ in rows}
    extra = sorted({r["model"] for r in records} - paper_models)
    rows = []
    for protocol in protocols:
        for table, paper_rows in PAPER_TABLES.items():
            entries = list(paper_rows) + ([(m, None) for m in extra] if table == "Table 2" else [])
            for model, paper_acc in entries:
                runs = [r for r in records if r["model"] == model and r["protocol"] == protocol]
                wa = np.array([100 * r["wa"] for r in runs])
                rows.append(
                    {
                        "table": table,
                        "protocol": protocol,
                        "model": model,
                        "paper_accuracy": paper_acc,
                        "wa_mean": wa.mean() if runs else None,
                        "wa_std": wa.std(ddof=1) if len(runs) > 1 else (0.0 if runs else None),
                        "ua_mean": np.mean([100 * r["ua"] for r in runs]) if runs else None,
                        "macro_f1_mean": np.mean([100 * r["macro_f1"] for r in runs])
                        if runs
                        else None,
                        "n_runs": len(runs),
                    }
                )
    return rows


def _fmt(value: float | None, digits: int = 1) -> str:
    return "missing" if value is None else f"{value:.{digits}f}"


def render(rows: list[dict[str, Any]], fmt: str = "markdown") -> str:
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: ("" if row[k] is None else row[k]) for k in CSV_COLUMNS})
        return out.getvalue()
    blocks = []
    for key in dict.fromkeys((r["table"], r["protocol"]) for r in rows):
        group = [r for r in rows if (r["table"], r["protocol"]) == key]
        title = (
            f"{key[0]} ({'ablation' if key[0] == 'Table 1' else 'comparison'}), protocol {key[1]}"
        )
        header = ["Model", "Paper acc. %", "WA % (mean ± std)", "UA %", "Macro-F1 %", "Runs"]
        body = [
            [
                r["model"],
                "" if r["paper_accuracy"] is None else f"{r['paper_accuracy']:.1f}",
                "missing" if r["wa_mean"] is None else f"{r['wa_mean']:.1f} ± {r['wa_std']:.1f}",
                _fmt(r["ua_mean"]),
                _fmt(r["macro_f1_mean"]),
                str(r["n_runs"]),
            ]
            for r in group
        ]
        blocks.append(
            _latex(title, header, body) if fmt == "latex" else _markdown(title, header, body)
        )
    return "\n".join(blocks)


def _markdown(title: str, header: list[str], body: list[list[str]]) -> str:
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |"]
    lines.append("|" + "|".join("---" for _ in header) + "|")
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines) + "\n"


def _latex(title: str, header: list[str], body: list[list[str]]) -> str:
    esc = lambda s: s.replace("%", r"\%").replace("±", r"$\pm$").replace("_", r"\_")  # noqa: E731
    lines = [r"\begin{table}[t]", r"\centering", rf"\caption{{{esc(title)}}}",
             r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}", r"\hline",
             " & ".join(esc(h) for h in header) + r" \\", r"\hline"]  # fmt: skip
    lines += [" & ".join(esc(c) for c in row) + r" \\" for row in body]
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
    "n_train", "n_test", "epochs", "train_s", "wall_s", "device",
)  # fmt: skip


def publish(records: list[dict[str, Any]], runs: str, out: Path) -> list[Path]:
    """One folder with what a reader needs to read and re-check a grid's results.

    ``tables.md`` and ``results.csv`` (the paper's tables), ``trials.csv`` (one row per
    trial), ``train_config.json`` (RUNS' training settings), ``features.json`` (the feature
    settings and labels of the FEATURES the trials read) and ``plots/``.
    """
    from featurize.store import META_FILE, open_store

    out.mkdir(parents=True, exist_ok=True)
    rows = table_rows(records)
    (out / "tables.md").write_text(render(rows, "markdown"))
    (out / "results.csv").write_text(render(rows, "csv"))
    trials = io.StringIO()
    writer = csv.DictWriter(trials, fieldnames=TRIAL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: r.get(c) for c in TRIAL_COLUMNS} for r in records)
    (out / "trials.csv").write_text(trials.getvalue())
    for name, store, path in (
        ("train_config.json", runs, "train_config.json"),
        ("features.json", records[0]["provenance"]["features"], META_FILE),
    ):
        fs, root = open_store(store)
        with fs.open_input_stream(f"{root}/{path}") as f:
            (out / name).write_bytes(f.read())
    plots = write_plots(records, out / "plots")
    return [out / n for n in ("tables.md", "results.csv", "trials.csv")] + plots
