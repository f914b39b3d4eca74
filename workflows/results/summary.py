"""attres-flow tables: everything the command prints and writes about one RUNS, in order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from attres.models import model_info
from featurize.location import Location
from workflows.results.claims import claim_rows, render_claims
from workflows.results.compare import paired_comparisons, render_comparisons
from workflows.results.cost import cost_rows, render_cost
from workflows.results.figures import claim_points, draw_claims, draw_runs, run_points
from workflows.results.plots import write_plots
from workflows.results.publish import publish
from workflows.results.tables import ensemble_rows, render, render_ensembles, table_rows
from workflows.runs import load_records


class ResultsError(ValueError):
    """Nothing to summarize: no finished trials, or an unknown model to compare against."""


@dataclass(frozen=True)
class Message:
    text: str
    note: bool = False  # a note about what was written (stderr), not a result (stdout)


def summarize(
    runs: str,
    fmt: str = "markdown",
    compare: tuple[str, ...] = (),
    claims: bool = False,
    cost: bool = False,
    publish_to: Path | None = None,
    plots: bool = True,
    claims_plot: Path | None = None,
    runs_plot: Path | None = None,
) -> list[Message]:
    """The paper's tables of RUNS (and seed ensembles), then the comparisons against each of
    ``compare``, the claims and the cost when asked; publishes and plots when asked:
    ``claims_plot`` the claims' forest plot, ``runs_plot`` every run of every model."""
    try:
        references = tuple(dict.fromkeys(model_info(m).name for m in compare))
    except ValueError as err:  # an unknown model name
        raise ResultsError(str(err)) from err
    records = load_records(runs)
    if not records:
        raise ResultsError(
            f"no finished trials under {runs}/trials; run `attres-flow train-all` first"
        )
    out = [Message(render(table_rows(records), fmt))]
    if fmt != "csv":  # one CSV per output: --publish writes ensembles.csv
        ensembles = render_ensembles(ensemble_rows(records), fmt)
        out += [Message(ensembles)] if ensembles else []
    if references:
        pairs = [row for ref in references for row in paired_comparisons(records, ref)]
        out.append(Message(render_comparisons(pairs, fmt)))
    if claims or claims_plot:
        claimed = claim_rows(records)
        if not claimed:
            out.append(Message("tables: no claim of the paper has runs of both its models", True))
        elif claims:
            out.append(Message(render_claims(claimed, fmt)))
        if claimed and claims_plot:
            Location(claims_plot).write(draw_claims(claim_points(claimed)))
            out.append(Message(f"tables: the claims' forest plot in {claims_plot}", True))
    if runs_plot:
        Location(runs_plot).write(draw_runs(run_points(records)))
        out.append(Message(f"tables: every run of every model in {runs_plot}", True))
    if cost:
        out.append(Message(render_cost(cost_rows(records), fmt)))
    if publish_to:
        written = publish(records, runs, publish_to, references)
        out.append(Message(f"tables: published {len(written)} files to {publish_to}", True))
    if plots and not Location(runs).is_uri:  # PNGs are written to local folders only
        written = write_plots(records, Path(runs) / "plots")
        out.append(Message(f"tables: {len(written)} plots in {Path(runs) / 'plots'}", True))
    return out
