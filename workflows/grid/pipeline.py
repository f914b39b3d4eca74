"""The whole chain on one corpus: featurize it, train a grid on it, read the records back.

``attres-flow demo`` and ``attres-flow check`` run it; both resume, as their steps do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from attres.models import model_info
from featurize.config import FeatureConfig
from featurize.pipeline import FeaturizeSummary, run_featurize
from workflows.grid.config import TrainConfig
from workflows.grid.train_all import GridSummary, train_all
from workflows.record import TrialRecord
from workflows.runs import load_records


@dataclass(frozen=True)
class ChainResult:
    featurized: FeaturizeSummary
    grid: GridSummary
    records: list[TrialRecord]  # every finished trial in the RUNS, earlier ones included


def featurize_and_train(
    corpus: Path,
    work: Path,
    feature_config: FeatureConfig,
    train_config: TrainConfig,
    models: list[str],
    seeds: list[int],
    address: str | None = None,
    progress: Callable[[str], None] = print,
    before_training: Callable[[FeaturizeSummary], None] = lambda featurized: None,
    display: str = "auto",
) -> ChainResult:
    """Featurize ``corpus`` into ``work/features`` (with the openSMILE sets the models read)
    and train into ``work/runs``; ``before_training`` sees the featurize summary between
    the two."""
    features, runs = str(work / "features"), str(work / "runs")
    sets = tuple(dict.fromkeys(s for m in models for s in model_info(m).features))
    featurized = run_featurize(
        corpus, features, feature_config, address=address, progress=progress, functionals=sets
    )
    before_training(featurized)
    grid = train_all(
        features, runs, models, seeds, train_config, address=address, progress=progress,
        display=display,
    )  # fmt: skip
    return ChainResult(featurized, grid, load_records(runs))
