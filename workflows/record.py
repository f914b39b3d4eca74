"""The trial record: what one finished trial was, how it scored, what it cost, where it came from.

Written as ``RUNS/trials/<trial>.json`` by the grid, read by the results and the use of
trained models. Records outlive the code that wrote them (published results are records),
so each carries a schema version, and ``TrialRecord.from_dict`` is the one place that
upgrades an older one; no reader falls back on missing keys.

Schema 1 is every record written before the version was kept. Its records may lack
``evaluated_on`` (read as "validation" under a ``-validation`` protocol, else "test"),
``n_folds`` (read as the protocol's folds where a record alone tells them: 1 under
``paper``, ``k`` under ``kfold``; None under ``loso``, where the folds seen count) and
``test_ids_sha1``, and, as the fields' defaults say, ``test_labels`` and
``test_probabilities`` (such a trial takes no part in seed ensembles),
``resumed_from_epoch`` and ``earlier_attempts_s`` (not recorded: such a wall time counts
the last attempt only), ``scale_mean`` and ``scale_std``.

Schema 3 added ``selection`` and ``fusion``, which no earlier model had: a schema-2 record
reads with both None.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

SCHEMA = 4


class RecordError(ValueError):
    """A trial record that this version cannot read."""


@dataclass(frozen=True)
class TrialRecord:
    # what was run
    trial: str  # deterministic name, e.g. "att-res-paper-s0-f0"
    model: str  # canonical registry name
    protocol: str  # "paper", "loso", "kfold", or one of them + "-validation"
    seed: int
    fold: int
    split: str  # the split's name in RUNS/splits
    n_folds: int | None  # folds of the protocol on its features (None: unknown, schema 1)
    evaluated_on: str  # "test", or "validation" (the test split unread)
    # how it scored, on the split's evaluation rows
    wa: float  # fractions, not percent
    ua: float
    macro_f1: float
    confusion: list[list[int]]  # rows = true class, columns = predicted
    label_names: list[str]
    n_train: int
    n_test: int
    test_ids_sha1: str | None  # which rows were scored: seeds of one fold can be ensembled
    # what it cost
    train_s: float
    samples_per_s: float
    wall_s: float  # a resumed trial's earlier attempts too, up to their last checkpoint
    device: str
    provenance: dict[str, Any]  # git commit, train config, features, versions, host
    # networks only
    epochs: int | None = None
    params: int | None = None
    flops: int | None = None
    precision: str | None = None  # fp32, bf16 or fp16 as trained; None: not recorded
    curves: dict[str, list[float]] = field(default_factory=dict)  # per epoch
    test_labels: list[int] | None = None  # per scored row, for seed ensembles
    test_probabilities: list[list[float]] | None = None
    scale_mean: float | list[float] | None = None  # the input standardizer
    scale_std: float | list[float] | None = None
    # None: the model keeps no training state (the SVM), or not recorded (schema 1)
    resumed_from_epoch: int | None = None
    earlier_attempts_s: float | None = None
    # a model that chooses its own settings on the training split (openSMILE-linear):
    # every option tried, with its validation figures and whether it was chosen
    selection: list[dict[str, Any]] | None = None
    # a late fusion (``workflows.results.fusion``): the trials fused, the weight and how it
    # was chosen
    fusion: dict[str, Any] | None = None
    # multi-corpus training (``--extra-train``): each other corpus whose clips joined the
    # training side, its fingerprint and the weight of its rows
    extra_train: list[dict[str, Any]] | None = None
    schema: int = SCHEMA

    @property
    def features(self) -> str:
        """The FEATURES location the trial read."""
        return self.provenance["features"]

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrialRecord:
        """A record as saved, upgraded to this schema; RecordError if it cannot be read."""
        data = dict(data)
        version = data.get("schema", 1)
        if version > SCHEMA:
            raise RecordError(
                f"trial {data.get('trial')}: record schema {version} is newer than this "
                f"attres-flow's ({SCHEMA}); upgrade attres-flow to read it"
            )
        if version == 1:
            data = _from_schema_1(data)
        data["schema"] = SCHEMA  # 2 -> 3 -> 4: only optional keys added
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RecordError(f"trial {data.get('trial')}: unknown record keys {unknown}")
        try:
            return cls(**data)
        except TypeError as err:  # a required key missing
            raise RecordError(f"trial {data.get('trial')}: {err}") from err


def _from_schema_1(data: dict[str, Any]) -> dict[str, Any]:
    validating = data["protocol"].endswith("-validation")
    data.setdefault("evaluated_on", "validation" if validating else "test")
    if "n_folds" not in data:
        config = data["provenance"].get("train_config", {})
        data["n_folds"] = {"paper": 1, "kfold": config.get("k")}.get(data["protocol"])
    data.setdefault("test_ids_sha1", None)
    return {**data, "schema": SCHEMA}
