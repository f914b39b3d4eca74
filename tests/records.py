"""Trial records made by hand, as train-all writes them, for tests of what reads them."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from attres.models import model_info
from workflows.record import TrialRecord

CASIA = ("angry", "fear", "happy", "neutral", "sad", "surprise")


def trial_record(
    model: str,
    wa: float,
    seed: int = 0,
    fold: int = 0,
    protocol: str = "paper",
    labels: tuple[str, ...] = CASIA,
    k: int = 5,
    **fields: Any,
) -> TrialRecord:
    """One trial's record; what a test reads is given, the rest plausible. ``fields``
    replace any field (``ua`` is ``wa`` unless given)."""
    split = f"{protocol}-s{seed}-f{fold}"
    record = TrialRecord(
        trial=f"{model_info(model).slug}-{split}",
        model=model,
        protocol=protocol,
        seed=seed,
        fold=fold,
        split=split,
        n_folds={"paper": 1, "kfold": k}.get(protocol),  # loso: as many as the records show
        evaluated_on="test",
        wa=wa,
        ua=wa,
        macro_f1=wa,
        confusion=np.eye(len(labels), dtype=int).tolist(),
        label_names=list(labels),
        n_train=80,
        n_test=20,
        test_ids_sha1=None,
        train_s=1.0,
        samples_per_s=80.0,
        wall_s=1.0,
        device="cpu",
        provenance={"features": "/nonexistent/features", "train_config": {"k": k}},
    )
    return dataclasses.replace(record, **fields)


def write_record(runs: Path, record: TrialRecord) -> None:
    """``record`` as RUNS/trials/<trial>.json."""
    (runs / "trials").mkdir(parents=True, exist_ok=True)
    (runs / "trials" / f"{record.trial}.json").write_text(json.dumps(record.to_dict()))
