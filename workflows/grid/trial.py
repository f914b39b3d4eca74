"""What runs inside one Tune trial, top to bottom: its data, the fit, the saved model, the record.

A trial whose record exists is done; an unfinished network resumes from its checkpoint
(``workflows.grid.checkpoints``), so a Tune retry and a re-run after a kill both continue.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from attres.models import model_kind
from workflows.grid.checkpoints import FileCheckpoints
from workflows.grid.config import TrialSpec, runs_on_ray_train, streams
from workflows.grid.data import Shared, TrialData, trial_data, trial_index
from workflows.grid.provenance import provenance
from workflows.record import TrialRecord
from workflows.runs import write_record

if TYPE_CHECKING:  # the fit imports torch: in the trial's process, not the grid's driver
    from workflows.grid.fit import Fitted


def run_trial(config: dict[str, Any], shared: Shared | None = None) -> None:
    """Tune's function trainable: one trial, start to record, resuming where it stopped.
    ``shared``: the grid's features in the object store (``workflows.grid.data``)."""
    from ray import tune

    from workflows.grid.fit import fit_for, keep_model

    spec = TrialSpec.from_dict(config["spec"])
    start = time.perf_counter()
    # data-parallel, the Ray Train ranks gather the inputs; streamed, no process gathers
    # them: the trial reads only the ids
    gathers = not (runs_on_ray_train(spec) or streams(spec))
    data = trial_data(spec, shared) if gathers else trial_index(spec)
    fitted = fit_for(spec)(spec, data, shared)
    if fitted.model is not None:  # else the data-parallel rank that trained it kept it
        keep_model(spec, data, fitted)
    record = trial_record(spec, data, fitted, time.perf_counter() - start)
    write_record(spec.runs, record)
    FileCheckpoints(spec.storage, spec.checkpoint_name).clear()  # the record supersedes it
    tune.report({"wa": record.wa, "wall_s": record.wall_s})


def tabled_protocol(spec: TrialSpec) -> str:
    """The protocol a record is tabled under: validation runs apart from test runs, runs
    trained with other corpora's clips apart from those without ("loso+extra-train"), and a
    cross-corpus run with its class count ("cross-corpus-2cls"), a 2-class run never in the
    row of a 6-class one, and leave-one-session-out apart from leave-one-speaker-out
    ("loso-by-session")."""
    cfg = spec.train
    if spec.test_features:
        return f"{cfg.protocol}-{len(spec.classes)}cls"
    protocol = cfg.protocol if cfg.group == "speaker" else f"{cfg.protocol}-by-{cfg.group}"
    if spec.extra_fingerprints:  # trained on more than the corpus: a row of its own
        protocol = f"{protocol}+extra-train"
    return f"{protocol}-validation" if cfg.validating else protocol


def trial_record(spec: TrialSpec, data: TrialData, fitted: Fitted, wall_s: float) -> TrialRecord:
    """The fit's scores with what the trial was and where it came from."""
    cfg = spec.train
    earlier_attempts_s = fitted.scores.get("earlier_attempts_s") or 0.0  # networks resume
    return TrialRecord(
        **fitted.scores,
        trial=spec.name,
        model=spec.model,
        # validation runs get their own rows in the tables, never mixed with test figures
        protocol=tabled_protocol(spec),
        evaluated_on="validation" if cfg.validating else "test",
        seed=spec.seed,
        fold=spec.fold,
        n_folds=spec.n_folds,  # what a complete seed has, when --folds ran only some
        split=spec.split,
        epochs=cfg.epochs if model_kind(spec.model) == "torch" else None,
        wall_s=wall_s + earlier_attempts_s,
        test_ids_sha1=data.test_ids_sha1,
        extra_train=[
            {"features": location, "fingerprint": fingerprint, "weight": cfg.extra_weight}
            for location, fingerprint in zip(cfg.extra_train, spec.extra_fingerprints, strict=True)
        ]
        or None,
        provenance=provenance(spec),
    )
