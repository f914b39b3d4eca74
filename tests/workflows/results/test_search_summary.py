"""docs/results/search_summary.py: the per-fold choice reads validation only, then the test."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from tests.records import trial_record, write_record

SCRIPT = Path(__file__).parents[3] / "docs" / "results" / "search_summary.py"
spec = importlib.util.spec_from_file_location("search_summary", SCRIPT)
assert spec and spec.loader
search_summary = importlib.util.module_from_spec(spec)
spec.loader.exec_module(search_summary)


def write(
    runs: Path, model: str, settings: dict, ua: dict[int, float], on: str, seed: int = 0
) -> None:
    """``model``'s trials of one seed in RUNS, one per fold, evaluated ``on`` its split."""
    (runs / "trials").mkdir(parents=True, exist_ok=True)
    (runs / "features_used.json").write_text(json.dumps({"features": "/x/features"}))
    config = {"epochs": 25, "protocol": "loso", "checkpoint_s": 120.0, **settings}
    for fold, score in ua.items():
        record = trial_record(
            model, 0.5, seed, fold, "loso", ua=score, evaluated_on=on,
            trial=f"{model}-loso-s{seed}-f{fold}-{on}",
            provenance={"features_fingerprint": "f1", "train_config": config},
        )  # fmt: skip
        write_record(runs, record)


def test_each_fold_takes_its_best_validation_config_and_that_configs_test_score(tmp_path):
    search, test = tmp_path / "search", tmp_path / "loso"
    plain, scaled = {"normalize": "global"}, {"normalize": "speaker"}
    write(search / "baseline", "att-Res", {**plain, "validation_speaker": True},
          {0: 0.5, 1: 0.3}, "validation")  # fmt: skip
    write(search / "speaker", "att-Res", {**scaled, "validation_speaker": True},
          {0: 0.4, 1: 0.6}, "validation")  # fmt: skip
    write(test, "att-Res", plain, {0: 0.25, 1: 0.9}, "test")
    table = search_summary.per_fold_choice(search, test)
    # fold 0 chose baseline (its test 25.0); fold 1 chose speaker, never run on the test
    assert "| 0 | baseline (att-Res) | 50.0 | 25.0 (1) |" in table
    assert "| 1 | speaker (att-Res) | 60.0 | not run |" in table
    assert "| mean |" not in table
    write(tmp_path / "scaled", "att-Res", {**scaled, "checkpoint_s": 30.0}, {1: 0.7}, "test")
    for path in (tmp_path / "scaled" / "trials").iterdir():
        path.rename(test / "trials" / path.name.replace("att-Res", "att-Res-speaker"))
    table = search_summary.per_fold_choice(search, test)
    assert "| 1 | speaker (att-Res) | 60.0 | 70.0 (1) |" in table  # checkpointing is no recipe
    assert "| mean | | | 47.5 |" in table


def test_configs_are_compared_on_the_seeds_they_share(tmp_path):
    search, test = tmp_path / "search", tmp_path / "loso"
    one = {"normalize": "global", "validation_speaker": True}
    two = {"normalize": "speaker", "validation_speaker": True}
    write(search / "one", "att-Res", one, {0: 0.50}, "validation")
    write(search / "two", "att-Res", two, {0: 0.45}, "validation")
    write(search / "two", "att-Res", two, {0: 0.75}, "validation", seed=1)
    write(test, "att-Res", {"normalize": "global"}, {0: 0.3}, "test")
    table = search_summary.per_fold_choice(search, test)
    # "two" has the higher mean over its two seeds (60.0), but seed 0 is what both have
    assert "| 0 | one (att-Res) | 50.0 | 30.0 (1) |" in table and "on seeds 0)" in table
