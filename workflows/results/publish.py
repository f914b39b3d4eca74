"""The published folder: what a reader needs to re-check a grid, and another machine to go on."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pyarrow.fs as pafs

from featurize.location import Location
from featurize.store import META_FILE
from workflows.record import TrialRecord
from workflows.results.claims import claim_rows, render_claims
from workflows.results.compare import paired_comparisons, render_comparisons
from workflows.results.cost import cost_rows, render_cost
from workflows.results.figures import claim_points, draw_claims, draw_runs, run_points
from workflows.results.plots import write_plots
from workflows.results.tables import ensemble_rows, render, render_ensembles, table_rows
from workflows.runs import FEATURES_USED, TRAIN_CONFIG

TRIAL_COLUMNS = (
    "trial", "model", "protocol", "seed", "fold", "split", "wa", "ua", "macro_f1",
    "n_train", "n_test", "epochs", "train_s", "wall_s", "resumed_from_epoch",
    "earlier_attempts_s", "device",
)  # fmt: skip


def publish(
    records: list[TrialRecord], runs: str, out: Path, references: tuple[str, ...] = ()
) -> list[Path]:
    """One folder with what a reader needs to re-check a grid, and another machine to continue it.

    ``tables.md`` and ``results.csv`` (the paper's tables; seed ensembles where there are
    any, also as ``ensembles.csv``), ``cost.md`` / ``.csv`` (trial wall time per model),
    ``trials.csv`` (one row per trial), ``comparisons.md`` / ``.csv`` (paired against each
    of ``references``), ``claims.md`` / ``.csv`` (the paper's claims, where both models of
    one have runs), ``train_config.json`` (RUNS' training settings),
    ``features.json`` (the feature settings and labels of the FEATURES the trials read),
    ``plots/`` (``claims.png``: the claims as a forest plot; ``runs.png``: every run of
    every model; a confusion matrix per model; the training curves), and copies of RUNS'
    ``trials/``, ``splits/`` and ``features_used.json``:
    restored into a RUNS, they make ``train-all``
    count those trials as done.
    """
    written: list[Path] = []

    def put(name: str, text: str | bytes) -> None:
        Location(out / name).write(text)
        written.append(out / name)

    rows = table_rows(records)
    ensembles = ensemble_rows(records)
    put("tables.md", "\n".join(filter(None, [render(rows), render_ensembles(ensembles)])))
    put("results.csv", render(rows, "csv"))
    if ensembles:
        put("ensembles.csv", render_ensembles(ensembles, "csv"))
    cost = cost_rows(records)
    put("cost.md", render_cost(cost))
    put("cost.csv", render_cost(cost, "csv"))
    trials = io.StringIO()
    writer = csv.DictWriter(trials, fieldnames=TRIAL_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({c: getattr(r, c) for c in TRIAL_COLUMNS} for r in records)
    put("trials.csv", trials.getvalue())
    if references:
        pairs = {ref: paired_comparisons(records, ref) for ref in references}
        put(
            "comparisons.md",
            "\n".join(
                f"## Against {ref}\n\n" + (render_comparisons(rows) or f"No runs of {ref}.\n")
                for ref, rows in pairs.items()
            ),
        )
        put("comparisons.csv", render_comparisons([r for v in pairs.values() for r in v], "csv"))
    claims = claim_rows(records)
    if claims:
        put("claims.md", render_claims(claims))
        put("claims.csv", render_claims(claims, "csv"))
        put("plots/claims.png", draw_claims(claim_points(claims)))
    put("plots/runs.png", draw_runs(run_points(records)))
    written += copy_run_state(runs, out)
    features = _features_meta(records)
    if features is not None:
        Location(out / "features.json").write(features)
    return written + write_plots(records, out / "plots")


def copy_run_state(runs: str, out: Path) -> list[Path]:
    """Copy RUNS' trial records, splits, ``train_config.json`` and ``features_used.json``."""
    fs, root = Location(runs).filesystem()
    paths = [f"{root}/{name}" for name in (TRAIN_CONFIG, FEATURES_USED)]
    for folder in ("trials", "splits"):
        infos = fs.get_file_info(pafs.FileSelector(f"{root}/{folder}", allow_not_found=True))
        paths += sorted(i.path for i in infos if i.base_name.endswith(".json"))
    written = []
    for path, info in zip(paths, fs.get_file_info(paths), strict=True):
        if info.type != pafs.FileType.File:
            continue
        target = out / path[len(root) + 1 :]
        with fs.open_input_stream(path) as f:
            Location(target).write(f.read())
        written.append(target)
    return written


def _features_meta(records: list[TrialRecord]) -> bytes | None:
    """The feature metadata of the first FEATURES store the records name that is readable here.

    Records restored from another machine may name a store that exists only there.
    """
    for store in dict.fromkeys(r.features for r in records):
        meta = Location(store).child(META_FILE)
        if meta.exists():
            return meta.read()
    return None
