"""docs/results/per_run.py: every run's figure, per seed or per held-out speaker."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from tests.records import trial_record, write_record

SCRIPT = Path(__file__).parents[3] / "docs" / "results" / "per_run.py"
spec = importlib.util.spec_from_file_location("per_run", SCRIPT)
assert spec and spec.loader
per_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(per_run)


def write(
    runs: Path, model: str, protocol: str, seed: int, fold: int, score: float, **extra: object
) -> None:
    fields = {"ua": score - 0.01, "wall_s": 100.0 * (seed + 1), **extra}
    write_record(runs, trial_record(model, score, seed, fold, protocol, **fields))


def test_paper_rows_give_wa_and_wall_per_seed_with_the_papers_figure(tmp_path, capsys):
    for seed, score in enumerate((0.8, 0.7, 0.75)):
        write(tmp_path, "att-Res", "paper", seed, 0, score)
    write(tmp_path, "SVM", "paper", 1, 0, 0.6)
    per_run.main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "| model | paper | WA % per seed (0, 1, 2) | trial wall s per seed (0, 1, 2) |" in out
    assert "| att-Res | 69.8 | 80.0, 70.0, 75.0 | 100, 200, 300 |" in out
    assert "| SVM | 50.2 | -, 60.0, - | -, 200, - |" in out


def test_other_labels_have_no_paper_column(tmp_path, capsys):
    write(tmp_path, "att-Res", "paper", 0, 0, 0.8, label_names=["calm", "angry"])
    per_run.main([str(tmp_path)])
    assert "| model | WA % per seed (0) | trial wall s per seed (0) |" in capsys.readouterr().out


def test_loso_rows_give_ua_per_speaker_and_mark_a_partial_seed(tmp_path, capsys):
    write(tmp_path, "att-Res", "loso", 0, 0, 0.4, n_folds=3)
    write(tmp_path, "att-Res", "loso", 0, 1, 0.5, n_folds=3)
    write(tmp_path, "att-Res", "loso", 1, 1, 0.3, n_folds=3)  # train-all --folds 1
    per_run.main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "| model, seed | UA % per fold (f0, f1, f2) | mean UA % |" in out
    assert "| att-Res, seed 0 | 39.0, 49.0, - | 44.0 (2/3 folds) |" in out
    assert "| att-Res, seed 1 | -, 29.0, - | 29.0 (1/3 folds) |" in out
