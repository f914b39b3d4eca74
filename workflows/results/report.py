"""report: the results of RUNS (or of a published folder) as one self-contained HTML page.

Read top down: the paper's claims (forest plot and table), the paper's tables, every model
against att-Res, the cost, every run as a dot; then, folded, the details: one row per
trial, the confusion matrices and training curves of ``write_plots`` and the attention maps
of a few test spectrograms of one att-Res model. Every image is embedded as a base64 PNG
data URI, so the page is one file.
"""

from __future__ import annotations

import base64
import html
import json
import tempfile
from pathlib import Path

import numpy as np

from attres.saved import SavedModelError
from featurize.location import Location
from featurize.store import load_features
from workflows.grid.data import voices
from workflows.record import TrialRecord
from workflows.results.claims import claim_rows, render_claims
from workflows.results.compare import paired_comparisons, render_comparisons
from workflows.results.cost import cost_rows, render_cost
from workflows.results.figures import claim_points, draw_claims, draw_runs, run_points
from workflows.results.plots import write_plots
from workflows.results.tables import render, table_rows
from workflows.runs import has_model, load_model, load_records
from workflows.use.explain import ExplainError, attention_maps, attention_png, figure_title

STYLE = """
summary { font-size: 1.1em; font-weight: bold; margin: 0.6em 0; cursor: pointer; }
body { font-family: sans-serif; margin: 2em; max-width: 1200px; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; margin: 0.3em; }
"""
# Models the report compares every other model against: the first with runs.
REFERENCES = ("att-Res", "att-Res+", "att-Res0")
# Models whose attention maps the report prefers to show, in this order.
ATTENTION_PREFERENCE = ("att-Res", "att-Res3", "att-Res2", "att-Res1", "att-Res+", "att-Res0+att")


class ReportError(ValueError):
    """RUNS holds nothing to report."""


def folded(title: str, body: str) -> str:
    """A section the reader opens when they want it."""
    return f"<details><summary>{html.escape(title)}</summary>\n{body}\n</details>"


def png_data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img_tag(png: bytes, alt: str) -> str:
    return f'<img src="{png_data_uri(png)}" alt="{html.escape(alt)}">'


def markdown_to_html(text: str) -> str:
    """``tables.render(rows, "markdown")`` -> HTML: '### ' titles and pipe tables only."""
    out: list[str] = []
    rows: list[list[str]] = []

    def flush() -> None:
        if not rows:
            return
        head, *body = rows
        out.append("<table>")
        out.append(_row(head, "th"))
        out.extend(_row(r, "td") for r in body)
        out.append("</table>")
        rows.clear()

    for line in text.splitlines():
        line = line.strip()
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not all(set(c) <= {"-", ":"} for c in cells):  # not the separator line
                rows.append(cells)
            continue
        flush()
        if line.startswith("### "):
            out.append(f"<h3>{html.escape(line[4:])}</h3>")
    flush()
    return "\n".join(out)


def _row(cells: list[str], tag: str) -> str:
    return "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>"


def trials_table(records: list[TrialRecord]) -> str:
    header = ["Trial", "Model", "Protocol", "Seed", "Fold", "WA %", "UA %", "Macro-F1 %"]
    rows = [
        [r.trial, r.model, r.protocol, str(r.seed), str(r.fold)]
        + [f"{100 * score:.1f}" for score in (r.wa, r.ua, r.macro_f1)]
        for r in records
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return markdown_to_html("\n".join(lines))


def attention_section(runs: str, records: list[TrialRecord], count: int) -> str:
    """Attention maps of the first ``count`` test spectrograms of one att-Res trial."""
    if count <= 0:
        return ""
    models = {r.model for r in records}
    candidates = [m for m in ATTENTION_PREFERENCE if m in models]
    kept = [r for m in candidates for r in records if r.model == m and has_model(runs, r.trial)]
    if not kept:
        return "<p>No attention maps: no att-Res model with attention kept its trained model.</p>"
    skipped = []
    for record in kept:  # the first whose model, features and split can be read
        try:
            trained = load_model(runs, record.trial)
            features = load_features(record.features)
            split = json.loads(Location(runs).child("splits", f"{record.split}.json").read())
            break
        except (OSError, ValueError, KeyError, SavedModelError) as err:
            skipped.append(
                f"<p>Skipped trial {html.escape(record.trial)}: {html.escape(str(err))}</p>"
            )
    else:
        return "\n".join(["<p>No attention maps: no trial could be read.</p>", *skipped])
    position = {u: i for i, u in enumerate(features.utterance_ids)}
    # as the trial scaled them: a speaker's statistics over all of their rows in the split
    rows = np.asarray([position[uid] for uid in split["test"] + split["train"]])
    inputs = trained.standardize(features.images[rows], voices(features, rows))
    test_ids, rows, inputs = split["test"][:count], rows[:count], inputs[:count]
    images = []
    for uid, i, x in zip(test_ids, rows, inputs, strict=True):
        image = features.images[i, 0]
        try:
            probs, maps = attention_maps(trained, x[None])
        except ExplainError as err:
            return f"<p>No attention maps: {html.escape(str(err))}</p>"
        predicted = trained.meta.label_names[int(np.argmax(probs))]
        true = features.label_names[features.labels[i]]
        png = attention_png(image, maps, figure_title(uid, predicted, true, trained.meta.trial))
        images.append(img_tag(png, f"attention maps of {uid}"))
    return "\n".join(
        [
            *skipped,
            f"<p>{trained.meta.model}, trial {html.escape(trained.meta.trial)}: test utterances "
            "of its split, attention weights (1 = uniform) over the log-power spectrogram.</p>",
            *images,
        ]
    )


def build_report(runs: str, out: Path, attention_examples: int = 3) -> Path:
    """Write the HTML report of RUNS to ``out``; returns ``out``."""
    records = load_records(runs)
    if not records:
        raise ReportError(f"no finished trials under {runs}/trials; run train-all first")
    with tempfile.TemporaryDirectory() as folder:
        plots = {p.name: p.read_bytes() for p in write_plots(records, Path(folder))}
    confusion = [img_tag(png, name) for name, png in plots.items() if name.startswith("confusion")]
    curves = plots.get("training-curves.png")
    claims = claim_rows(records)
    reference = next((m for m in REFERENCES if any(r.model == m for r in records)), None)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>attres-flow report: {html.escape(runs)}</title>",
        f"<style>{STYLE}</style></head><body>",
        "<h1>attres-flow report</h1>",
        f"<p>RUNS {html.escape(runs)}: {len(records)} finished trials.</p>",
        "<h2>The paper's claims</h2>",
        img_tag(draw_claims(claim_points(claims)), "the paper's claims, paired differences")
        + markdown_to_html(render_claims(claims))
        if claims
        else "<p>No claim of the paper has runs of both its models.</p>",
        "<h2>Tables</h2>",
        markdown_to_html(render(table_rows(records), "markdown")),
        f"<h2>Every model against {html.escape(reference or 'a reference')}</h2>",
        markdown_to_html(render_comparisons(paired_comparisons(records, reference)))
        if reference
        else "<p>No runs of att-Res to compare against.</p>",
        "<h2>Cost</h2>",
        markdown_to_html(render_cost(cost_rows(records))),
        "<h2>Every run</h2>",
        img_tag(draw_runs(run_points(records)), "every run of every model"),
        "<h2>Details</h2>",
        folded("Trials", trials_table(records)),
        folded("Confusion matrices", "\n".join(confusion)),
        folded(
            "Training curves",
            img_tag(curves, "training curves") if curves else "<p>No network trials.</p>",
        ),
        folded("Attention maps", attention_section(runs, records, attention_examples)),
        "</body></html>",
    ]
    Location(out).write("\n".join(parts) + "\n")
    return out
