"""Planning a grid: every trial of models x seeds x folds, each with its split drawn.

Pure: no Ray, no training. The splits are saved as utterance ids under RUNS/splits.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from attres.models import model_info
from attres.splits import (
    Protocol,
    Split,
    make_split,
    protocol_folds,
    validation_fold_split,
    validation_speaker_split,
    validation_split,
)
from featurize.encoder_store import SAME, check_encoder_set, saved_settings
from featurize.location import Location
from featurize.store import FeatureSet, FeatureStoreError, check_functionals
from workflows.grid.config import TrainConfig, TrialSpec
from workflows.grid.partition import Partition, PartitionError, read_partition

SESSION = re.compile(r"Ses\d+")  # an IEMOCAP speaker's session: Ses01 of Ses01F


class GridError(ValueError):
    """The grid cannot run as asked: RUNS holds other training settings, or the features
    cannot support the protocol."""


def plan_grid(
    data: FeatureSet,
    features: str,
    fingerprint: str,
    runs: str,
    models: list[str],
    seeds: list[int],
    cfg: TrainConfig,
    storage: str | None = None,
    folds: list[int] | None = None,
    note: Callable[[str], None] = lambda _: None,
) -> list[TrialSpec]:
    """Every trial of the grid, each model and seed once; saves each split's ids in RUNS.

    ``folds`` keeps only those folds of the protocol (all by default); ``note`` hears what
    a user should know (a partition's utterances the features do not hold).
    """
    names = list(dict.fromkeys(model_info(m).name for m in models))  # raises on unknown names
    require_functionals(names, data, features)
    protocol = Protocol(cfg.protocol)
    groups = grouping(data.speakers, cfg.group, features)  # whom the protocol holds out
    n_groups, unit = len(np.unique(groups)), f"{cfg.group}s"
    if protocol is Protocol.loso and n_groups < 2:
        raise GridError(f"protocol loso needs at least 2 {unit}; {features} has {n_groups}")
    if protocol is Protocol.speaker_kfold and n_groups < cfg.k:
        raise GridError(
            f"protocol speaker-kfold with --k {cfg.k} needs {cfg.k} {unit}; {features} has "
            f"{n_groups} (use a smaller --k, or loso)"
        )
    if cfg.validation_speaker and n_groups < 3:
        raise GridError(
            f"--validation-speaker needs at least 3 {unit} (one tested, one validated, one "
            f"to train on); {features} has {n_groups}"
        )
    # Splits are drawn over the recordings as they are (not speed-perturbed copies).
    recorded = np.flatnonzero(data.recorded)
    require_two_clips_a_class(data, recorded, features)
    partition = None
    if protocol is Protocol.predefined:
        try:
            partition = read_partition(cfg.partition, data.utterance_ids)
        except PartitionError as err:
            raise GridError(str(err)) from None
        n_folds = len(partition.folds)
        if partition.unmatched:
            distinct = list(dict.fromkeys(partition.unmatched))  # a clip is listed per fold
            shown = ", ".join(distinct[:5])
            note(
                f"train-all: {len(distinct)} utterances of {cfg.partition} "
                f"({len(partition.unmatched)} rows) are not in {features} and are left out "
                f"(e.g. {shown})"
            )
        if partition.by_name:
            note(
                f"train-all: {partition.by_name} utterances of {cfg.partition} were found by "
                "their file name alone (a name one clip of the features and one entry have)"
            )
    else:
        n_folds = protocol_folds(protocol, groups, cfg.k)
    if folds is not None and not set(folds) <= set(range(n_folds)):
        raise GridError(
            f"--folds {','.join(map(str, folds))}: protocol {protocol.value} has folds 0 to "
            f"{n_folds - 1} on {features}"
        )
    specs = []
    for seed in dict.fromkeys(seeds):
        for fold in range(n_folds) if folds is None else sorted(set(folds)):
            try:
                if partition is not None:
                    drawn = predefined_split(partition, fold, seed, data, cfg)
                else:
                    drawn = make_split(
                        protocol, data.labels[recorded], groups[recorded], seed, fold, cfg.k
                    )
                    drawn = Split(
                        drawn.fold, drawn.name, recorded[drawn.train], recorded[drawn.test]
                    )
                if cfg.validation_speaker and protocol is Protocol.speaker_kfold:
                    after = make_split(  # the next fold's test speakers: this one's validation
                        protocol, data.labels[recorded], groups[recorded], seed,
                        (fold + 1) % n_folds, cfg.k,
                    )  # fmt: skip
                    split = validation_fold_split(drawn, recorded[after.test])
                else:
                    split = evaluated_split(drawn, data, groups, cfg, seed)
            except GridError:
                raise
            except ValueError as err:  # scikit-learn's refusal of this data
                raise GridError(
                    f"protocol {protocol.value}, seed {seed}, fold {fold} on {features}: {err}"
                ) from None
            train, test, split_name = with_copies(split.train, data), split.test, split.name
            record = {
                "split": split_name,
                **({"partition_fold": partition.folds[fold]} if partition else {}),
                "evaluated_on": "validation" if cfg.validating else "test",
                "held_out_speakers": sorted(set(data.speakers[test].tolist())),
                "train": data.utterance_ids[train].tolist(),
                "test": data.utterance_ids[test].tolist(),
            }
            Location(runs).child("splits", f"{split_name}.json").write(json.dumps(record))
            specs += trial_specs(
                names, cfg, seed=seed, fold=fold, split=split_name, features=features,
                fingerprint=fingerprint, runs=runs, storage=storage or runs,
                train_rows=tuple(train.tolist()), test_rows=tuple(test.tolist()), n_folds=n_folds,
            )  # fmt: skip
    return specs


def require_two_clips_a_class(data: FeatureSet, rows: np.ndarray, features: str) -> None:
    """Refuse a class with a single recording: no split can put it on both sides, and the
    stratified ones (paper, kfold, validation) cannot be drawn at all."""
    counts = np.bincount(data.labels[rows], minlength=len(data.label_names))
    lone = [f"{name} ({n})" for name, n in zip(data.label_names, counts, strict=True) if n == 1]
    if lone:
        raise GridError(
            f"{features}: class(es) with a single recording: {', '.join(lone)}; a class needs "
            "2 clips to be trained and tested. Featurize the corpus without it (a --manifest "
            "that leaves it out) into a fresh --out, or add recordings of it"
        )


def require_functionals(names: list[str], data: FeatureSet, features: str) -> None:
    """Refuse, before any trial starts, a model of openSMILE functionals (or a head over an
    encoder set) on FEATURES that lack its sets (the error names the ``--functionals`` or
    ``--encoder`` option to featurize with)."""
    for name in names:
        if encoder := model_info(name).encoder:
            try:
                check_encoder_set(features, encoder, data.utterance_ids)
            except FeatureStoreError as err:
                raise GridError(f"model {name} reads the encoder set {encoder}: {err}") from None
        for functionals in model_info(name).features:
            try:
                check_functionals(features, functionals, data.utterance_ids)
            except FeatureStoreError as err:
                raise GridError(f"model {name} reads {functionals} functionals: {err}") from None


def require_same_encoders(names: list[str], features: str, test_features: str) -> None:
    """Refuse a cross-corpus head whose encoder set the two FEATURES made differently (another
    revision, another pooling): it would be tested on embeddings it never learned."""
    for encoder in dict.fromkeys(
        model_info(name).encoder for name in names if model_info(name).encoder
    ):
        mine, theirs = (saved_settings(f, encoder) for f in (features, test_features))
        differ = [key for key in SAME if mine.get(key) != theirs.get(key)]
        if differ:
            raise GridError(
                f"the encoder set {encoder} of {features} and of {test_features} differ in "
                f"{', '.join(differ)} ({[mine.get(k) for k in differ]} against "
                f"{[theirs.get(k) for k in differ]}); featurize both with the same encoder"
            )


def grouping(speakers: np.ndarray, group: str, features: str) -> np.ndarray:
    """(N,) the unit loso and speaker-kfold hold out: each row's speaker, or its recording
    session (IEMOCAP's usual leave-one-session-out: Ses01F and Ses01M are session Ses01)."""
    if group == "speaker":
        return speakers
    sessions = np.asarray([m.group(0) if (m := SESSION.match(s)) else "" for s in speakers])
    if not all(sessions):
        strays = sorted(set(speakers[sessions == ""].tolist()))[:5]
        raise GridError(
            f"--group session reads IEMOCAP's sessions from its speakers (Ses01F -> Ses01); "
            f"{features} has speakers that name none: {', '.join(strays)}"
        )
    return sessions


def predefined_split(
    partition: Partition, fold: int, seed: int, data: FeatureSet, cfg: TrainConfig
) -> Split:
    """Fold ``fold`` of a corpus's own partition, its recordings only (a copy trains beside
    its recording: ``with_copies``); with ``validation_part`` the validation rows are scored.
    The same rows for every seed; the name carries the seed, as every split's does, so each
    seed is a trial of its own (the file's name of the fold is in the saved split)."""
    name = f"predefined-s{seed}-f{fold}"
    train = partition.part(fold, "train")
    scored = partition.part(fold, "validation" if cfg.validation_part else "test")
    if not len(scored):
        raise GridError(
            f"{partition.path}: fold {partition.folds[fold]} has no "
            f"{'validation' if cfg.validation_part else 'test'} rows"
        )
    train, scored = train[data.recorded[train]], scored[data.recorded[scored]]
    return Split(fold, f"{name}-valpart" if cfg.validation_part else name, train, scored)


def evaluated_split(
    split: Split, data: FeatureSet, groups: np.ndarray, cfg: TrainConfig, seed: int
) -> Split:
    """What a trial trains and scores on: the protocol's split, or with a validation option
    a part of its training side held out and scored (its test side then unread)."""
    if cfg.validation:
        fit, val = validation_split(data.labels[split.train], seed, cfg.validation)
        name = f"{split.name}-val{round(100 * cfg.validation)}"
        return Split(split.fold, name, split.train[fit], split.train[val])
    if cfg.validation_speaker:
        return validation_speaker_split(split, groups)
    return split


def with_copies(train: np.ndarray, data: FeatureSet) -> np.ndarray:
    """Training rows plus the speed-perturbed copies of their recordings: a copy trains only
    beside its own recording, so none crosses to the evaluation side."""
    copies = np.flatnonzero(~data.recorded)
    mine = copies[np.isin(data.origins[copies], data.utterance_ids[train])]
    return np.sort(np.concatenate([train, mine])) if len(mine) else train


def plan_cross_corpus(
    data: FeatureSet,
    test_data: FeatureSet,
    features: str,
    test_features: str,
    fingerprints: tuple[str, str],
    runs: str,
    models: list[str],
    seeds: list[int],
    cfg: TrainConfig,
    storage: str | None = None,
    cfg_classes: tuple[str, ...] | None = None,
) -> list[TrialSpec]:
    """Train on ``features``, test on ``test_features``, on the classes both have (or the
    ``cfg_classes`` named, all of them shared): one fold,
    each seed its own training run; saves the split's ids in RUNS (the test ids are the
    other corpus's)."""
    names = list(dict.fromkeys(model_info(m).name for m in models))  # raises on unknown names
    require_functionals(names, data, features)
    require_functionals(names, test_data, test_features)
    require_same_encoders(names, features, test_features)
    if cfg.validating:
        raise GridError("cross-corpus runs take no --validation yet: they test on the other corpus")
    if data.config.per_clip != test_data.config.per_clip:  # --speeds copies are training's
        raise GridError(
            f"{features} and {test_features} were featurized with other settings "
            f"({data.config.per_clip.to_dict()} against {test_data.config.per_clip.to_dict()}); "
            "featurize both the same way (--speeds may differ)"
        )
    classes = cross_classes(data, test_data, features, test_features, cfg_classes)
    train = np.flatnonzero(np.isin(np.asarray(data.label_names)[data.labels], classes))
    train = train[data.recorded[train]]
    test = np.flatnonzero(np.isin(np.asarray(test_data.label_names)[test_data.labels], classes))
    test = test[test_data.recorded[test]]  # a copy is never tested
    specs = []
    fit = with_copies(train, data)
    for seed in dict.fromkeys(seeds):
        split = f"cross-s{seed}-f0"
        record = {
            "split": split,
            "evaluated_on": "test",
            "train_features": features,
            "test_features": test_features,
            "classes": list(classes),
            "train": data.utterance_ids[fit].tolist(),
            "test": test_data.utterance_ids[test].tolist(),
        }
        Location(runs).child("splits", f"{split}.json").write(json.dumps(record))
        specs += trial_specs(
            names, cfg, seed=seed, fold=0, split=split, features=features,
            fingerprint=fingerprints[0], runs=runs, storage=storage or runs,
            train_rows=tuple(fit.tolist()), test_rows=tuple(test.tolist()), n_folds=1,
            test_features=test_features, test_fingerprint=fingerprints[1], classes=classes,
        )  # fmt: skip
    return specs


def trial_specs(names: list[str], cfg: TrainConfig, **split: Any) -> list[TrialSpec]:
    """One trial per model on one split: each model with its registered recipe applied."""
    return [
        TrialSpec(
            model=name,
            slug=model_info(name).slug,
            train=cfg.for_model(model_info(name).recipe),
            **split,
        )
        for name in names
    ]


def shared_classes(data: FeatureSet, other: FeatureSet) -> tuple[str, ...]:
    """The label names both feature sets have, sorted."""
    return tuple(sorted(set(data.label_names) & set(other.label_names)))


def cross_classes(
    data: FeatureSet,
    other: FeatureSet,
    features: str,
    other_features: str,
    named: tuple[str, ...] | None = None,
) -> tuple[str, ...]:
    """The classes a cross-corpus run is on: the ``named`` ones (each in both corpora), else
    all both have, refused when that is fewer than the smaller corpus's classes (CASIA
    against EmoDB share 2 of 6: not the 6-class experiment either corpus is known for)."""
    shared = shared_classes(data, other)
    sides = (
        f"{features} ({', '.join(data.label_names)}) and {other_features} "
        f"({', '.join(other.label_names)})"
    )
    if named is not None:
        missing = sorted(set(named) - set(shared))
        if missing:
            raise GridError(f"--classes {', '.join(missing)}: not in both of {sides}")
        shared = tuple(sorted(set(named)))
    elif len(shared) < 2:
        raise GridError(f"{sides}: cross-corpus needs 2 shared classes, has {len(shared)}")
    elif len(shared) < min(len(data.label_names), len(other.label_names)):
        raise GridError(
            f"{sides} share {len(shared)} class(es) ({', '.join(shared) or 'none'}), fewer "
            "than either corpus has: name the classes to run on with --classes "
            f"{','.join(shared) or 'A,B'} (featurize both with --corpus NAME for shared names)"
        )
    if len(shared) < 2:
        raise GridError(f"{sides}: cross-corpus needs 2 shared classes, has {len(shared)}")
    return shared
