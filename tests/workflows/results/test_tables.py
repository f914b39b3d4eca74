"""The paper's tables and the paired comparisons, from hand-made trial records."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from attres.models import PAPER_MODELS
from tests.records import trial_record as record
from workflows.cli import app
from workflows.record import TrialRecord
from workflows.results.claims import CLAIM_COLUMNS, claim_rows, claim_verdict, render_claims
from workflows.results.compare import COMPARISON_COLUMNS, paired_comparisons, render_comparisons
from workflows.results.cost import COST_COLUMNS, cost_rows, render_cost
from workflows.results.publish import publish
from workflows.results.tables import CSV_COLUMNS, render, table_rows
from workflows.runs import load_records

T_975_2 = 4.302652729911275  # Student's t, 97.5 % quantile, 2 degrees of freedom (a t table)


def row_of(rows: list[dict], model: str, table: str = "Table 1") -> dict:
    return next(r for r in rows if r["model"] == model and r["table"] == table)


def test_tables_put_paper_numbers_on_their_rows_and_missing_as_missing():
    records = [record("att-Res", 0.70, seed=0), record("att-Res", 0.60, seed=1)]
    rows = table_rows(records + [record("SVM", 0.5)])
    t1 = [r for r in rows if r["table"] == "Table 1"]
    t2 = [r for r in rows if r["table"] == "Table 2"]
    assert [r["model"] for r in t1] == list(PAPER_MODELS[:6])  # the paper's Table 1 order
    assert [r["paper_accuracy"] for r in t2] == [46.9, 49.2, 50.2, 51.7, 50.3, 69.8]
    att = row_of(t1, "att-Res")
    assert att["wa_mean"] == pytest.approx(65.0) and att["wa_std"] == pytest.approx(7.0711, 1e-3)
    assert att["n_runs"] == 2 and att["n_seeds"] == 2 and att["paper_accuracy"] == 69.8
    cnn = row_of(t2, "CNN", "Table 2")
    assert cnn["wa_mean"] is None and cnn["n_runs"] == 0
    text = render(rows, "markdown")
    assert "| CNN | 46.9 | missing | missing | missing | 0 |" in text
    assert "| att-Res | 69.8 | 65.0 ± 7.1 | 65.0 | 65.0 | 2 seeds |" in text
    assert r"\begin{tabular}" in render(rows, "latex")


def test_folds_are_averaged_within_a_seed_then_over_seeds():
    # Seed 0: folds 20 and 40 -> 30; seed 1: folds 50 and 70 -> 60. Over seeds: 45 ± 21.2
    # (the four folds pooled would give a std of 21.6).
    wa = {(0, 0): 0.2, (0, 1): 0.4, (1, 0): 0.5, (1, 1): 0.7}
    records = [record("att-Res", v, s, f, "loso") for (s, f), v in wa.items()]
    att = row_of(table_rows(records), "att-Res")
    assert att["wa_mean"] == pytest.approx(45.0)
    assert att["wa_std"] == pytest.approx(np.std([30, 60], ddof=1))
    assert (att["n_runs"], att["n_seeds"], att["n_folds"], att["partial_seeds"]) == (4, 2, 2, {})
    text = render(table_rows(records))
    assert "| att-Res | 45.0 ± 21.2 | 45.0 | 45.0 | 2 seeds × 2 folds |" in text
    assert r"2 seeds $\times$ 2 folds" in render(table_rows(records), "latex")


def test_a_seed_with_fewer_folds_than_the_protocol_is_shown():
    # att-Res0 ran all 4 speakers of loso for seed 0; att-Res has 3 of seed 0 and all of seed 1.
    records = [record("att-Res0", 0.4, 0, f, "loso") for f in range(4)]
    records += [record("att-Res", 0.3, 0, f, "loso") for f in range(3)]
    records += [record("att-Res", 0.5, 1, f, "loso") for f in range(4)]
    rows = table_rows(records)
    att = row_of(rows, "att-Res")
    assert (att["n_folds"], att["partial_seeds"]) == (4, {0: 3})
    assert "| att-Res | 40.0 ± 14.1 | 40.0 | 40.0 | 2 seeds; seed 0: 3/4 folds |" in (render(rows))
    by_model = {r["model"]: r for r in csv.DictReader(io.StringIO(render(rows, "csv")))}
    assert by_model["att-Res"]["partial_seeds"] == "0:3"
    assert by_model["att-Res0"]["partial_seeds"] == "" and by_model["att-Res0"]["n_folds"] == "4"


def test_kfold_expects_the_configured_number_of_folds():
    records = [record("SVM", 0.5, 0, f, "kfold", k=5) for f in range(3)]
    assert "| SVM | 50.0 | 50.0 | 50.0 | 1 seed; seed 0: 3/5 folds |" in render(table_rows(records))


def test_a_single_seed_prints_its_mean_without_a_spread():
    rows = table_rows([record("att-Res", 0.8)])
    assert row_of(rows, "att-Res")["wa_std"] is None
    text = render(rows)
    assert "| att-Res | 69.8 | 80.0 | 80.0 | 80.0 | 1 seed |" in text and "± 0.0" not in text
    row = next(r for r in csv.DictReader(io.StringIO(render(rows, "csv"))) if r["n_runs"] == "1")
    assert (row["wa_mean"], row["wa_std"]) == ("80.0", "")


def test_the_paper_column_only_for_casia_labels():
    casia = render(table_rows([record("att-Res", 0.8)]))
    assert "| Model | Paper acc. % | WA % (mean ± std over seeds) |" in casia
    other = table_rows([record("att-Res", 0.8, labels=("calm", "angry", "happy", "sad"))])
    assert all(r["paper_accuracy"] is None for r in other)
    text = render(other)
    assert "Paper acc." not in text and "69.8" not in text
    assert "| Model | WA % (mean ± std over seeds) | UA % |" in text
    assert "| att-Res | 80.0 | 80.0 | 80.0 | 1 seed |" in text
    # not what the paper measured
    loso = [dataclasses.replace(record("att-Res", 0.4), protocol="loso", n_folds=None)]
    assert all(r["paper_accuracy"] is None for r in table_rows(loso))


def paper_grid() -> list[TrialRecord]:
    """att-Res0 (reference) on seeds 0-2 and four models whose differences are known."""
    wa = {
        "att-Res0": [0.70, 0.72, 0.74],
        "att-Res": [0.75, 0.74, 0.80],  # +5, +2, +6
        "att-Res2": [0.80, 0.83, 0.86],  # +10, +11, +12
        "SVM": [0.60, 0.61, 0.62],  # -10, -11, -12
    }
    records = [record(m, v, seed) for m, values in wa.items() for seed, v in enumerate(values)]
    return records + [record("CNN", 0.50, 0), record("CNN", 0.55, 3)]  # shares seed 0 only


def test_paired_comparisons_by_hand():
    rows = {r["model"]: r for r in paired_comparisons(paper_grid(), "att-Res0")}
    assert list(rows) == ["att-Res2", "att-Res", "CNN", "SVM"]  # the tables' order
    # att-Res: differences 5, 2, 6: mean 13/3, std sqrt(13/3), half-width t * std / sqrt(3).
    half = T_975_2 * np.sqrt(13 / 3) / np.sqrt(3)
    att = rows["att-Res"]
    assert att["mean_diff"] == pytest.approx(13 / 3)
    assert (att["ci_low"], att["ci_high"]) == pytest.approx((13 / 3 - half, 13 / 3 + half))
    assert (att["n_pairs"], att["pairs"], att["verdict"]) == (3, [0, 1, 2], "not resolved")
    assert att["paired_by"] == "seed"
    # Differences 10, 11, 12 (and their negatives): mean 11, std 1.
    half = T_975_2 / np.sqrt(3)
    assert (rows["att-Res2"]["ci_low"], rows["att-Res2"]["ci_high"]) == pytest.approx(
        (11 - half, 11 + half)
    )
    assert rows["att-Res2"]["verdict"] == "higher" and rows["SVM"]["verdict"] == "lower"
    assert rows["SVM"]["mean_diff"] == pytest.approx(-11)
    cnn = rows["CNN"]
    assert (cnn["mean_diff"], cnn["n_pairs"], cnn["verdict"]) == (pytest.approx(-20), 1, "n/a")
    assert cnn["ci_low"] is None and cnn["ci_high"] is None


def test_two_seeds_give_an_interval_but_no_verdict():
    """Two equal differences (test sets score in steps) make a zero-width interval."""
    records = [record("att-Res0", 0.80, s) for s in (0, 1)]
    records += [record("CNN", 0.79, s) for s in (0, 1)]  # -1 point on both seeds
    (row,) = paired_comparisons(records, "att-Res0")
    assert row["ci_low"] == pytest.approx(row["ci_high"]) == pytest.approx(-1)
    assert (row["n_pairs"], row["verdict"]) == (2, "n/a")


def test_kfold_pairs_use_only_seeds_with_all_their_folds():
    records = [record("att-Res0", 0.4, s, f, "kfold", k=2) for s in (0, 1) for f in (0, 1)]
    records += [record("att-Res", v, 0, f, "kfold", k=2) for f, v in enumerate((0.5, 0.7))]
    records += [record("att-Res", 0.9, 1, 0, "kfold", k=2)]  # seed 1 lacks fold 1: not paired
    (row,) = paired_comparisons(records, "att-Res0")
    assert (row["paired_by"], row["pairs"]) == ("seed", [0])
    assert (row["mean_diff"], row["verdict"]) == (pytest.approx(20), "n/a")
    assert paired_comparisons(records, "SVM") == []  # no runs of the reference


def test_loso_pairs_by_held_out_speaker_on_the_seeds_both_models_have():
    """A loso fold is one speaker for every seed: one seed gives one pair per speaker."""
    ref = [0.40, 0.50, 0.30, 0.60]
    records = [record("att-Res0", v, s, f, "loso") for s in (0, 1) for f, v in enumerate(ref)]
    ours = [0.45, 0.53, 0.36, 0.64]  # seed 0: +5, +3, +6, +4 over the reference
    records += [record("att-Res", v, 0, f, "loso") for f, v in enumerate(ours)]
    records += [record("att-Res", 0.0, 2, 0, "loso")]  # a seed the reference lacks: unpaired
    (row,) = paired_comparisons(records, "att-Res0")
    assert (row["paired_by"], row["pairs"], row["n_pairs"]) == ("fold", [0, 1, 2, 3], 4)
    diffs = np.array([5, 3, 6, 4])
    half = 3.182446305284263 * diffs.std(ddof=1) / 2  # t(0.975, 3 df) from a t table
    assert row["mean_diff"] == pytest.approx(4.5)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((4.5 - half, 4.5 + half))
    assert row["verdict"] == "higher"
    assert "### Paired by held-out speaker (fold) against att-Res0, protocol loso" in (
        render_comparisons([row])
    )
    partial = records + [record("SVM", 0.3, 0, f, "loso") for f in (0, 1)]  # 2 of 4 folds
    svm = next(r for r in paired_comparisons(partial, "att-Res0") if r["model"] == "SVM")
    assert (svm["pairs"], svm["mean_diff"], svm["verdict"]) == ([0, 1], pytest.approx(-15), "n/a")
    validation = [dataclasses.replace(r, protocol="loso-validation") for r in records]
    assert paired_comparisons(validation, "att-Res0")[0]["paired_by"] == "fold"
    # A fold's pair averages the seeds both models have there.
    records += [record("att-Res", v + 0.1, 1, f, "loso") for f, v in enumerate(ours)]
    (row,) = paired_comparisons(records, "att-Res0")
    assert row["mean_diff"] == pytest.approx(4.5 + 5)


def test_render_comparisons():
    rows = paired_comparisons(paper_grid(), "att-Res0")
    text = render_comparisons(rows)
    assert "### Paired by seed against att-Res0, protocol paper" in text
    # one more run's interval is sqrt(n + 1) = 2 times the mean's half-width wide, 3 seeds
    assert "| att-Res2 | +11.0 | [+8.5, +13.5] | [+6.0, +16.0] | 3 | higher |" in text
    assert "| att-Res | +4.3 | [-0.8, +9.5] | [-6.0, +14.7] | 3 | not resolved |" in text
    assert "| CNN | -20.0 |  |  | 1 | n/a |" in text
    parsed = list(csv.DictReader(io.StringIO(render_comparisons(rows, "csv"))))
    assert tuple(parsed[0]) == COMPARISON_COLUMNS
    assert parsed[0]["pairs"] == "0 1 2" and parsed[-1]["verdict"] == "lower"


def comparison(
    ci: tuple[float, float] | None, pi: tuple[float, float] | None = None, n: int = 3,
    unit: str = "seed",
) -> dict:  # fmt: skip
    """A ``compare`` row with only what a verdict reads: the mean's and one run's intervals."""
    ci_low, ci_high = ci or (None, None)
    pi_low, pi_high = pi or ci or (None, None)
    return {"ci_low": ci_low, "ci_high": ci_high, "pi_low": pi_low, "pi_high": pi_high,
            "n_pairs": n, "paired_by": unit}  # fmt: skip


@pytest.mark.parametrize(
    ("ci", "pi", "paper", "verdict"),
    [
        ((10, 20), (5, 25), 19.5, "reproduced"),
        ((10, 20), (5, 25), 25, "reproduced"),  # the bounds are inclusive
        ((-5, 9), (-19, 18), 12.6, "not resolved at this spread"),
        (
            (-5, 6),
            (-12, 13),
            22.9,
            "not reproduced: the paper's difference lies outside where one run of ours falls",
        ),  # fmt: skip
        ((2, 8), (-1, 11), 19.5, "not reproduced: same sign, smaller than the paper's"),
        ((25, 30), (22, 33), 19.5, "not reproduced: same sign, larger than the paper's"),
        ((-9, -2), (-14, 13), 12.6, "not reproduced: reversed"),  # whatever one run gives
        # claims that a model is lower
        ((-6, -1), (-9, 2), -3.7, "reproduced"),
        ((-5, 2), (-9, 6), -3.7, "not resolved at this spread"),
        ((-2, -1), (-3, 0), -3.7, "not reproduced: same sign, smaller than the paper's"),
        ((-9, -7), (-10, -6), -3.7, "not reproduced: same sign, larger than the paper's"),
        (
            (-1, 2),
            (-3, 4),
            -3.7,
            "not reproduced: the paper's difference lies outside where one run of ours falls",
        ),  # fmt: skip
        ((1, 7), (-5, 13), -3.7, "not reproduced: reversed"),
    ],
)
def test_claim_verdicts_with_the_papers_size(ci, pi, paper, verdict):
    assert claim_verdict(comparison(ci, pi), paper, size_tested=True) == verdict


def test_claim_verdicts_on_the_sign_alone_and_with_too_few_pairs():
    assert claim_verdict(comparison((2, 8)), 19.5, size_tested=False) == "holds"
    assert claim_verdict(comparison((-6, -1)), -3.7, size_tested=False) == "holds"
    assert claim_verdict(comparison((-9, -2)), 12.6, size_tested=False) == "reversed"
    assert claim_verdict(comparison((1, 7)), -3.7, size_tested=False) == "reversed"
    unresolved = claim_verdict(comparison((-5, 25)), 19.5, size_tested=False)
    assert unresolved == "not resolved at this spread"
    few = claim_verdict(comparison((10, 25), n=2), 19.5, size_tested=True)
    assert few == "not resolved yet: 2 seeds"
    one = claim_verdict(comparison(None, n=1, unit="fold"), 19.5, size_tested=False)
    assert one == "not resolved yet: 1 fold"
    assert claim_verdict(comparison(None, n=0), 19.5, True) == "not resolved yet: 0 seeds"


def test_claims_test_the_papers_size_only_on_its_protocol_and_corpus():
    rows = claim_rows(paper_grid())
    # att-Res0 vs att-Res (attention helps) and att-Res vs SVM and vs CNN; att-Res2's placement
    claims = {(r["model"], r["reference"]): r for r in rows}
    assert list(claims) == [
        ("att-Res", "att-Res0"), ("att-Res", "att-Res2"), ("att-Res", "CNN"), ("att-Res", "SVM")
    ]  # fmt: skip
    attention = claims["att-Res", "att-Res0"]
    assert attention["paper_diff"] == pytest.approx(12.6) and attention["size_tested"]
    # Differences 5, 2, 6: the mean's interval [-0.8, +9.5] holds 0, one run's holds +12.6.
    sd = np.sqrt(13 / 3)
    assert (attention["pi_low"], attention["pi_high"]) == pytest.approx(
        (13 / 3 - T_975_2 * sd * np.sqrt(4 / 3), 13 / 3 + T_975_2 * sd * np.sqrt(4 / 3))
    )
    assert attention["verdict"] == "not resolved at this spread"
    svm = claims["att-Res", "SVM"]  # att-Res - SVM: +15, +13, +18; one run in [+2.8, +27.8]
    assert svm["mean_diff"] == pytest.approx(46 / 3) and svm["verdict"] == "reproduced"
    assert claims["att-Res", "CNN"]["verdict"] == "not resolved yet: 1 seed"
    other = [dataclasses.replace(r, label_names=list("abcdef")) for r in paper_grid()]
    assert {r["verdict"] for r in claim_rows(other) if r["reference"] == "SVM"} == {"holds"}
    text = render_claims(rows)
    assert "### Claims of the paper, protocol paper, paired by seed" in text
    assert "| att-Res above SVM | att-Res - SVM | +19.6 | +15.3 |" in text
    parsed = list(csv.DictReader(io.StringIO(render_claims(rows, "csv"))))
    assert tuple(parsed[0]) == CLAIM_COLUMNS and parsed[-1]["verdict"] == "reproduced"
    loso = [dataclasses.replace(r, protocol="loso", fold=r.seed, seed=0) for r in paper_grid()]
    (row,) = [r for r in claim_rows(loso) if r["reference"] == "SVM"]
    assert (row["paired_by"], row["size_tested"], row["verdict"]) == ("fold", False, "holds")
    assert "| +19.6 (CASIA, 80/20) |" in render_claims([row])


def write_runs(root: Path, records: list[TrialRecord]) -> str:
    """A RUNS folder as train-all leaves it: trials/, splits/ and train_config.json."""
    (root / "trials").mkdir(parents=True)
    (root / "splits").mkdir()
    for r in records:
        (root / "trials" / f"{r.trial}.json").write_text(json.dumps(r.to_dict()))
        split = {"split": r.split, "train": ["a"], "test": ["b"]}
        (root / "splits" / f"{r.split}.json").write_text(json.dumps(split))
    (root / "train_config.json").write_text(json.dumps({"epochs": 25, "protocol": "paper"}))
    return str(root)


def test_cost_per_model_and_for_all_models():
    timed = [
        dataclasses.replace(record("att-Res", 0.8, seed=0), wall_s=100.0, params=481642),
        dataclasses.replace(
            record("att-Res", 0.7, seed=1),
            wall_s=300.0,
            params=481642,
            device="cuda:1",
            resumed_from_epoch=11,
        ),
        dataclasses.replace(record("SVM", 0.5), wall_s=10.0),
        dataclasses.replace(record("CNN", 0.6), resumed_from_epoch=None),  # schema 1: unknown
        # a fusion of the SVM's and the CNN's trials: their cost again, not a trial that ran
        dataclasses.replace(record("CNN", 0.6), model="CNN & SVM", wall_s=11.0, fusion={}),
    ]
    rows = {(r["protocol"], r["model"]): r for r in cost_rows(timed)}
    att = rows["paper", "att-Res"]
    assert (att["n_trials"], att["wall_s_mean"], att["wall_s_total"]) == (2, 200.0, 400.0)
    assert att["device"] == "cpu cuda" and att["params"] == 481642 and att["n_resumed"] == 1
    cnn = rows["paper", "CNN"]
    assert cnn["wall_s_mean"] == 1.0 and cnn["n_resumed"] == 0 and cnn["params"] is None
    every = rows["paper", "all models"]
    assert (every["n_trials"], every["wall_s_total"], every["params"]) == (4, 411.0, None)
    assert rows["paper", "CNN & SVM"]["wall_s_total"] == 11.0
    assert list(rows)[-1] == ("paper", "all models")
    text = render_cost(cost_rows(timed))
    assert "| att-Res | 2 | 1 | cpu cuda | 481,642 | 200 | 400 |" in text
    assert "| CNN | 1 | 0 | cpu |  | 1 | 1 |" in text
    parsed = list(csv.DictReader(io.StringIO(render_cost(cost_rows(timed), "csv"))))
    assert tuple(parsed[0]) == COST_COLUMNS and parsed[-1]["wall_s_total"] == "411.0"


def test_tables_command_prints_comparisons_after_the_tables(tmp_path):
    runs = write_runs(tmp_path / "runs", paper_grid())
    args = ["tables", runs, "--no-plots", "--compare", "att-res0", "--compare", "SVM"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.index("### Table 2") < out.index("### Paired by seed against att-Res0")
    assert out.index("against att-Res0") < out.index("### Paired by seed against SVM")
    assert "| att-Res0 | +11.0 | [+8.5, +13.5] | [+6.0, +16.0] | 3 | higher |" in out  # - SVM
    result = CliRunner().invoke(app, args + ["--format", "csv"])
    tables, comparisons = result.stdout.split("\n\n")[:2]
    assert tables.splitlines()[0] == ",".join(CSV_COLUMNS)
    parsed = list(csv.DictReader(io.StringIO(comparisons)))
    assert {r["reference"] for r in parsed} == {"att-Res0", "SVM"}
    result = CliRunner().invoke(app, ["tables", runs, "--compare", "no-such-model"])
    assert result.exit_code == 2 and "unknown model" in result.output


def test_publish_copies_what_lets_another_machine_continue(tmp_path):
    records = paper_grid()
    runs = write_runs(tmp_path / "runs", records)
    (tmp_path / "runs" / "features_used.json").write_text('{"features": "x"}')
    pub = tmp_path / "pub"
    publish(load_records(runs), runs, pub, ("att-Res0", "att-Res0+att"))
    assert sorted(p.name for p in (pub / "trials").iterdir()) == sorted(
        f"{r.trial}.json" for r in records
    )
    assert len(list((pub / "splits").glob("*.json"))) == 4  # seeds 0-3 of the paper protocol
    assert json.loads((pub / "train_config.json").read_text())["epochs"] == 25
    assert (pub / "features_used.json").exists() and not (pub / "features.json").exists()
    assert load_records(str(pub)) == load_records(runs)
    assert render(table_rows(load_records(str(pub)))) == (pub / "tables.md").read_text()
    comparisons = (pub / "comparisons.md").read_text()
    assert "## Against att-Res0\n" in comparisons and "| SVM | -11.0 |" in comparisons
    assert "## Against att-Res0+att\n\nNo runs of att-Res0+att." in comparisons
    assert (pub / "plots" / "confusion-paper-svm.png").exists()
    assert (pub / "cost.md").read_text() == render_cost(cost_rows(records))
    assert (pub / "claims.md").read_text() == render_claims(claim_rows(records))
    result = CliRunner().invoke(app, ["tables", runs, "--no-plots", "--cost", "--claims"])
    assert result.exit_code == 0 and "### Cost of the trials, protocol paper" in result.stdout
    svm = next(line for line in result.stdout.splitlines() if "| att-Res above SVM |" in line)
    assert svm.startswith("| att-Res above SVM | att-Res - SVM | +19.6 | +15.3 | [+9.1, +21.6]")
    assert svm.endswith("| 3 | reproduced |")
    result = CliRunner().invoke(app, ["tables", write_runs(tmp_path / "svm", records[-3:]),
                                      "--no-plots", "--claims"])  # fmt: skip
    assert result.exit_code == 0 and "no claim of the paper has runs of both" in result.output
