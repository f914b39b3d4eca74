"""Late fusion of two models from their trials' own saved predictions.

A fused trial averages the class probabilities of a network (e.g. att-Res+) and of another
model (e.g. openSMILE-linear) on the same test rows, ``w * network + (1 - w) * other``.
The weight ``w`` is chosen per fold on validation records only: the same fold's
``--validation-speaker`` trials (loso) or ``--validation`` trials (paper), scored on the
held-out training speaker or utterances, never on the test rows. Every weight tried is kept
in the fused record with its validation UA.

Records pair when they scored the same rows (``test_ids_sha1``) of the same fold: the same
seed where both models have it, else the other model's lowest seed (a model that trains
the same way on every seed, as a logistic regression on a fixed split, has seed 0 only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from attres.metrics import classification_metrics
from attres.models import FUSION, slug_of
from workflows.grid.provenance import git_commit
from workflows.record import TrialRecord
from workflows.results.compare import recipe

WEIGHTS = tuple(round(w, 2) for w in np.linspace(0.0, 1.0, 11))  # on the network
# protocols whose folds do not change by seed
SEED_FREE_FOLDS = (
    "loso",
    "speaker-kfold",
    "predefined",
    "loso-by-session",
    "speaker-kfold-by-session",
)


class FusionError(ValueError):
    """The fusion cannot be made: missing trials, or trials that did not score the same rows."""


def fusion_name(network: str, other: str) -> str:
    return f"{network}{FUSION}{other}"


@dataclass(frozen=True)
class Pair:
    network: TrialRecord
    other: TrialRecord

    def probabilities(self, weight: float) -> np.ndarray:
        a = np.asarray(self.network.test_probabilities)
        b = np.asarray(self.other.test_probabilities)
        return weight * a + (1.0 - weight) * b

    def ua(self, weight: float) -> float:
        labels = np.asarray(self.network.test_labels)
        predicted = self.probabilities(weight).argmax(axis=1)
        classes = len(self.network.label_names)
        ua = classification_metrics(labels, predicted, classes)["ua"]
        assert isinstance(ua, float)
        return ua


def pairs(
    records: list[TrialRecord],
    network: str,
    other: str,
    protocol: str,
    unpaired: list[str] | None = None,
) -> list[Pair]:
    """Each record of ``network`` under ``protocol`` with its partner of ``other``; the
    trials without one are appended to ``unpaired``."""
    mine = sorted(
        (r for r in records if r.model == network and r.protocol == protocol),
        key=lambda r: (r.fold, r.seed),
    )
    theirs = [r for r in records if r.model == other and r.protocol == protocol]
    found = []
    for record in mine:
        if record.test_probabilities is None or record.test_ids_sha1 is None:
            raise FusionError(f"trial {record.trial} kept no predictions (an older record)")
        same_rows = sorted(
            (
                r
                for r in theirs
                if r.fold == record.fold and r.test_ids_sha1 == record.test_ids_sha1
            ),
            key=lambda r: (r.seed != record.seed, r.seed),
        )
        if not same_rows or same_rows[0].test_probabilities is None:
            if unpaired is not None:
                unpaired.append(record.trial)
            continue
        partner = same_rows[0]
        if partner.test_labels != record.test_labels or partner.label_names != record.label_names:
            raise FusionError(f"trials {record.trial} and {partner.trial} disagree on the labels")
        found.append(Pair(record, partner))
    return found


def choose_weight(validation: list[Pair], weights: tuple[float, ...] = WEIGHTS) -> dict:
    """The weight with the best mean validation UA over ``validation`` (ties: nearest 0.5),
    and every weight's UA."""
    scores = {w: float(np.mean([p.ua(w) for p in validation])) for w in weights}
    best = max(weights, key=lambda w: (round(scores[w], 9), -abs(w - 0.5)))
    return {"weight": best, "validation_ua": {str(w): s for w, s in scores.items()}}


@dataclass
class Fused:
    records: list[TrialRecord]  # the fused trials
    unvalidated: list[str]  # test trials of the network left out: no validation trials
    unpaired: list[str]  # and those left out: the other model did not score their rows


def fuse(
    records: list[TrialRecord],
    validation: list[TrialRecord],
    network: str,
    other: str,
    weights: tuple[float, ...] = WEIGHTS,
) -> Fused:
    """The fused trials of ``network`` and ``other`` under each test protocol of ``records``,
    each fold's weight chosen on that fold's ``validation`` records; a trial whose fold (or,
    under the paper's protocol, seed) has no validation trials of both is left out and
    named. Validation trials of another recipe (features, settings) than the test trials'
    are refused (FusionError)."""
    fused: list[TrialRecord] = []
    unvalidated: list[str] = []
    unpaired: list[str] = []
    for protocol in sorted({r.protocol for r in records if r.evaluated_on == "test"}):
        tested = pairs(records, network, other, protocol, unpaired)
        validated = pairs(validation, network, other, f"{protocol}-validation")
        for v in validated if tested else ():
            for test, val in ((tested[0].network, v.network), (tested[0].other, v.other)):
                if recipe(test) != recipe(val):
                    raise FusionError(
                        f"validation trial {val.trial} was trained differently from test "
                        f"trial {test.trial} (features or settings): its weights would not "
                        "be this model's"
                    )
        for fold in sorted({p.network.fold for p in tested}):
            # under loso (and speaker-kfold) a fold holds the same speakers for every seed,
            # so its seeds' validation trials weigh it together; under the paper's protocol
            # each seed draws its own split, so a seed's validation rows are its own
            chosen: dict[int, dict] = {}
            for pair in (p for p in tested if p.network.fold == fold):
                seed = None if protocol in SEED_FREE_FOLDS else pair.network.seed
                mine = [
                    v for v in validated
                    if v.network.fold == fold and (seed is None or v.network.seed == seed)
                ]  # fmt: skip
                if not mine:
                    unvalidated.append(pair.network.trial)
                    continue
                key = -1 if seed is None else seed
                if key not in chosen:
                    chosen[key] = {**choose_weight(mine, weights), "validation_trials": sorted(
                        t for v in mine for t in (v.network.trial, v.other.trial)
                    )}  # fmt: skip
                fused.append(fused_record(pair, chosen[key], network, other))
    return Fused(fused, unvalidated, unpaired)


def fused_record(pair: Pair, choice: dict, network: str, other: str) -> TrialRecord:
    a, b = pair.network, pair.other
    probabilities = pair.probabilities(choice["weight"])
    labels = np.asarray(a.test_labels)
    scores: dict[str, Any] = classification_metrics(
        labels, probabilities.argmax(axis=1), len(a.label_names)
    )
    name = fusion_name(network, other)
    return TrialRecord(
        **scores,
        trial=f"{slug_of(name)}-{a.split}",  # e.g. att-res-plus-and-egemaps-lr-st-loso-s0-f1
        model=name,
        protocol=a.protocol,
        seed=a.seed,
        fold=a.fold,
        split=a.split,
        n_folds=a.n_folds,
        evaluated_on="test",
        label_names=a.label_names,
        n_train=a.n_train,
        n_test=a.n_test,
        test_ids_sha1=a.test_ids_sha1,
        train_s=a.train_s + b.train_s,
        samples_per_s=0.0,
        wall_s=a.wall_s + b.wall_s,
        device=a.device,
        # the network's features and settings, with what fused them
        provenance={**a.provenance, "git_commit": git_commit(), "fused": [a.trial, b.trial]},
        test_labels=a.test_labels,
        test_probabilities=probabilities.round(5).tolist(),
        fusion={"models": [network, other], "trials": [a.trial, b.trial], **choice},
    )


def fuse_runs(
    runs: str, validation_runs: str, network: str, other: str, weights: tuple[float, ...] = WEIGHTS
) -> Fused:
    """Fuse the trials of two models of ``runs``, weights chosen on ``validation_runs``, and
    write the fused trials' records beside them (a re-run writes the same records again)."""
    from attres.models import resolve_name
    from workflows.runs import load_records, write_record

    network, other = resolve_name(network), resolve_name(other)
    fused = fuse(load_records(runs), load_records(validation_runs), network, other, weights)
    if not fused.records:
        why = (
            f"none has validation trials of both in {validation_runs}: train them there with "
            "--validation-speaker (loso) or --validation (paper)"
            if fused.unvalidated
            else "none scored the same rows"
        )
        raise FusionError(f"{runs}: no test trials of {network} and {other} to fuse; {why}")
    for record in fused.records:
        write_record(runs, record)
    return fused
