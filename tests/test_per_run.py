"""docs/results/per_run.py: every run's figure, per seed or per fold, from the records."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "docs" / "results" / "per_run.py"
spec = importlib.util.spec_from_file_location("per_run", SCRIPT)
assert spec and spec.loader
per_run = importlib.util.module_from_spec(spec)
spec.loader.exec_module(per_run)

CASIA = ["angry", "fear", "happy", "neutral", "sad", "surprise"]


def write(runs: Path, model: str, protocol: str, seed: int, fold: int, score: float) -> None:
    (runs / "trials").mkdir(parents=True, exist_ok=True)
    name = f"{model}-{protocol}-s{seed}-f{fold}"
    record = {
        "trial": name, "model": model, "protocol": protocol, "seed": seed, "fold": fold,
        "wa": score, "ua": score - 0.01, "wall_s": 100.0 * (seed + 1), "label_names": CASIA,
    }  # fmt: skip
    (runs / "trials" / f"{name}.json").write_text(json.dumps(record))


def test_paper_rows_give_wa_and_wall_per_seed_with_the_papers_figure(tmp_path, capsys):
    for seed, score in enumerate((0.8, 0.7, 0.75)):
        write(tmp_path, "att-Res", "paper", seed, 0, score)
    write(tmp_path, "SVM", "paper", 1, 0, 0.6)
    write(tmp_path, "att-Res", "loso", 0, 0, 0.4)
    write(tmp_path, "att-Res", "loso", 0, 1, 0.5)
    write(tmp_path, "att-Res", "loso", 1, 1, 0.3)
    per_run.main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "| model | paper | WA % per seed (0, 1, 2) | trial wall s per seed (0, 1, 2) |" in out
    assert "| att-Res | 69.8 | 80.0, 70.0, 75.0 | 100, 200, 300 |" in out
    assert "| SVM | 50.2 | -, 60.0, - | -, 200, - |" in out
    assert "| att-Res, seed 0 | 39.0, 49.0 | 44.0 |" in out  # UA per fold, then the mean
    assert "| att-Res, seed 1 | -, 29.0 | 29.0 (1/2 folds) |" in out
