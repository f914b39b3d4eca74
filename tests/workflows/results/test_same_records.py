"""docs/results/same_records.py: a published folder's trials found the same, or not, elsewhere."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.records import trial_record, write_record

SCRIPT = Path(__file__).parents[3] / "docs" / "results" / "same_records.py"
spec = importlib.util.spec_from_file_location("same_records", SCRIPT)
assert spec and spec.loader
same_records = importlib.util.module_from_spec(spec)
spec.loader.exec_module(same_records)


def write_both(reference: Path, candidate: Path, model: str, fold: int, **changed) -> None:
    """The same trial in both folders, but for the fields in ``changed`` on the candidate."""
    same = {"fold": fold, "protocol": "loso", "test_ids_sha1": f"ids{fold}"}
    write_record(reference, trial_record(model, 0.5, **same))
    write_record(candidate, trial_record(model, 0.5, **{**same, **changed}))


def test_the_same_trials_pass(tmp_path, capsys):
    ref, new = tmp_path / "published", tmp_path / "runs"
    for fold in (0, 1):
        write_both(ref, new, "eGeMAPS-LR", fold)
    assert same_records.main([str(ref), str(new)]) == 0
    assert "eGeMAPS-LR: 2 of 2 trials the same" in capsys.readouterr().out


def test_a_different_confusion_or_test_side_fails_and_is_named(tmp_path, capsys):
    ref, new = tmp_path / "published", tmp_path / "runs"
    write_both(ref, new, "eGeMAPS-LR", 0)
    write_both(ref, new, "eGeMAPS-LR", 1, confusion=[[0, 1], [1, 0]])
    write_both(ref, new, "ComParE-LR", 0, test_ids_sha1="other clips")
    assert same_records.main([str(ref), str(new)]) == 1
    out = capsys.readouterr().out
    assert "eGeMAPS-LR: 1 of 2 trials the same" in out
    assert "differs: egemaps-lr-loso-s0-f1 (confusion)" in out
    assert "differs: compare-lr-loso-s0-f0 (test_ids_sha1)" in out


def test_missing_trials_are_counted_and_only_the_models_asked_for_are_read(tmp_path, capsys):
    ref, new = tmp_path / "published", tmp_path / "runs"
    write_both(ref, new, "eGeMAPS-LR", 0)
    write_record(ref, trial_record("eGeMAPS-LR", 0.5, fold=1, protocol="loso"))
    write_both(ref, new, "att-Res", 0, ua=0.1)
    assert same_records.main([str(ref), str(new), "--models", "eGeMAPS-LR"]) == 0
    out = capsys.readouterr().out
    assert "eGeMAPS-LR: 1 of 1 trials the same" in out and "1 not in" in out
    assert "att-Res" not in out


def test_nothing_to_compare_fails(tmp_path, capsys):
    ref, new = tmp_path / "published", tmp_path / "runs"
    write_record(ref, trial_record("eGeMAPS-LR", 0.5, protocol="loso"))
    new.mkdir()
    assert same_records.main([str(ref), str(new)]) == 1
    assert "no trial of" in capsys.readouterr().err


def test_a_loss_curve_may_round_differently_but_no_accuracy_may(tmp_path, capsys):
    """Another machine rounds a loss in its last digits without moving a prediction
    (docs/results/README.md); accuracy curves are compared exactly."""
    ref, new = tmp_path / "published", tmp_path / "runs"
    curves = {"train_loss": [1.9280888875, 0.6709679497], "train_acc": [0.5, 0.75]}
    rounded = {**curves, "train_loss": [1.9280888875 * (1 + 6e-6), 0.6709679497]}
    write_record(ref, trial_record("eGeMAPS-MLP", 0.5, fold=0, protocol="loso", curves=curves))
    write_record(new, trial_record("eGeMAPS-MLP", 0.5, fold=0, protocol="loso", curves=rounded))
    assert same_records.main([str(ref), str(new)]) == 0
    assert "largest relative loss gap 6.0e-06" in capsys.readouterr().out

    for changed in ({**curves, "train_loss": [1.9280888875 * 1.001, 0.6709679497]},
                    {**curves, "train_acc": [0.5, 0.7500001]}):  # fmt: skip
        write_record(new, trial_record("eGeMAPS-MLP", 0.5, fold=0, protocol="loso", curves=changed))
        assert same_records.main([str(ref), str(new)]) == 1
        assert "differs: egemaps-mlp-loso-s0-f0 (curves)" in capsys.readouterr().out
