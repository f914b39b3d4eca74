"""The claims' forest plot and the figure of every run, checked on the values they draw."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from tests.records import trial_record, write_record
from workflows.cli import app
from workflows.results.claims import claim_rows
from workflows.results.compare import compare
from workflows.results.figures import claim_points, draw_claims, draw_runs, run_points

PNG = b"\x89PNG\r\n\x1a\n"
T_975_2 = 4.302652729911275  # Student's t, 97.5 % quantile, 2 degrees of freedom


def grid() -> list:
    """att-Res and att-Res0, three seeds of the paper protocol, and a loso fold grid."""
    records = [trial_record("att-Res", wa, s) for s, wa in enumerate((0.70, 0.60, 0.80))]
    records += [trial_record("att-Res0", wa, s) for s, wa in enumerate((0.55, 0.50, 0.60))]
    for fold, wa in enumerate((0.40, 0.50)):  # two held-out speakers, two seeds each
        records += [trial_record("att-Res", wa + 0.02 * s, s, fold, "loso") for s in (0, 1)]
    return records


def test_the_forest_plot_draws_the_claims_paired_differences():
    rows = claim_rows(grid())
    (point,) = [p for p in claim_points(rows) if p.protocol == "paper"]
    reference = compare(grid(), "att-Res", "att-Res0", "paper")
    assert point.label == "att-Res - att-Res0: attention helps"
    assert point.mean == pytest.approx(reference["mean_diff"]) == pytest.approx(15.0)
    assert point.ci == (reference["ci_low"], reference["ci_high"])
    assert point.pi == (reference["pi_low"], reference["pi_high"])
    assert point.paper == pytest.approx(12.6) and point.verdict == rows[0]["verdict"]
    assert draw_claims(claim_points(rows))[:8] == PNG


def test_every_run_is_a_dot_with_its_mean_interval_and_the_papers_figure():
    points = {(p.protocol, p.model): p for p in run_points(grid())}
    att = points["paper", "att-Res"]
    assert (att.unit, att.table, att.paper) == ("seed", "Table 1", 69.8)
    assert att.runs == [(0, 70.0, 70.0), (1, 60.0, 60.0), (2, 80.0, 80.0)]
    half = T_975_2 * 10.0 / 3**0.5  # std of 70, 60, 80 is 10
    assert att.mean == pytest.approx(70.0) and att.ci == pytest.approx((70 - half, 70 + half))
    loso = points["loso", "att-Res"]  # by held-out speaker, its seeds averaged
    assert loso.unit == "fold" and loso.paper is None
    assert [(k, round(wa, 6)) for k, wa, _ in loso.runs] == [(0, 41.0), (1, 51.0)]
    assert list(points) == [("loso", "att-Res"), ("paper", "att-Res0"), ("paper", "att-Res")]
    assert draw_runs(list(points.values()))[:8] == PNG


def test_tables_draws_both_figures_and_publish_carries_them(tmp_path):
    runs = tmp_path / "runs"
    for record in grid():
        write_record(runs, record)
    args = ["tables", str(runs), "--no-plots", "--claims", "--plot", str(tmp_path / "c.png"),
            "--runs-plot", str(tmp_path / "r.png"), "--publish", str(tmp_path / "pub")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    for png in ("c.png", "r.png", "pub/plots/claims.png", "pub/plots/runs.png"):
        assert (tmp_path / png).read_bytes()[:8] == PNG, png
