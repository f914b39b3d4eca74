"""A trial's data: its split of the features, as the model's inputs, read once per process."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from attres.loop import SplitData
from attres.models import model_info
from featurize.store import FeatureSet, content_fingerprint, load_features, load_functionals
from workflows.grid.config import TrialSpec

# Features read by this process, by location: a reused trial actor reads them once.
_FEATURES: dict[str, tuple[str, FeatureSet]] = {}
_FUNCTIONALS: dict[tuple[str, str, str], np.ndarray] = {}  # (location, fingerprint, set)


@dataclass(frozen=True)
class TrialData:
    split: SplitData  # the inputs (``TrainConfig.inputs`` applied) and labels
    test_ids: np.ndarray  # (N_test,) utterance ids of the evaluated rows
    feature_config: dict  # the features' FeatureConfig, as saved with the model
    # (N_train,) the speaker of each training row (a speed-perturbed copy's too), whom a
    # model choosing its settings holds out together
    train_speakers: np.ndarray
    test_groups: np.ndarray  # (N_test,) the voice of each evaluated row
    # (N_train,) bool: a recording as it is, not a speed-perturbed copy; a model choosing
    # its settings scores only these on its held-out speaker
    train_recorded: np.ndarray
    parts: tuple[tuple[str, int], ...] = ()  # functionals sets in the input's channels, lengths

    @property
    def test_ids_sha1(self) -> str:
        """Which rows were evaluated, so seeds of one fold can be averaged (seed ensembles)."""
        return hashlib.sha1("\n".join(self.test_ids.tolist()).encode()).hexdigest()[:16]


def features_for(location: str, planned: str) -> FeatureSet:
    """Features the grid was planned on (fingerprint ``planned``), from this process's cache
    when they are still the same."""
    cached = _FEATURES.get(location)
    if cached is None or cached[0] != planned:
        fingerprint = content_fingerprint(location)
        if fingerprint != planned:
            raise RuntimeError(
                f"{location} changed after the grid was planned (fingerprint "
                f"{fingerprint}, planned on {planned}); re-run train-all"
            )
        _FEATURES[location] = cached = (fingerprint, load_features(location))
    return cached[1]


def model_inputs(
    location: str, planned: str, sets: tuple[str, ...], rows: np.ndarray
) -> tuple[np.ndarray, tuple[tuple[str, int], ...]]:
    """What a model reads of ``rows``: the (N, 1, H, W) spectrograms, or for a model of
    openSMILE ``sets`` their functionals side by side as (N, D, 1, 1), with each set's
    length."""
    features = features_for(location, planned)
    if not sets:
        return features.spectrograms[rows], ()
    parts = []
    for name in sets:
        key = (location, planned, name)
        if key not in _FUNCTIONALS:
            _FUNCTIONALS[key] = load_functionals(location, name, features.utterance_ids).values
        parts.append(_FUNCTIONALS[key][rows])
    x = np.concatenate(parts, axis=1)[:, :, None, None]
    return x, tuple((name, part.shape[1]) for name, part in zip(sets, parts, strict=True))


def voices(features: FeatureSet, rows: np.ndarray) -> np.ndarray:
    """(N,) the voice of each row: its speaker, or for a speed-perturbed copy its speaker with
    the factor ("spk01~speed0.9"), a voice of its own, as Kaldi gives such copies."""
    return np.asarray([
        speaker + uid[len(origin) :]
        for speaker, uid, origin in zip(
            features.speakers[rows], features.utterance_ids[rows], features.origins[rows],
            strict=True,
        )
    ])  # fmt: skip


def trial_data(spec: TrialSpec) -> TrialData:
    """The trial's rows as the model's inputs (``TrainConfig.inputs``): a speaker is scaled
    by the statistics of their rows in this split, training and evaluation parts alike. The
    speed-perturbed copies of a speaker count as a voice of their own (Kaldi gives them
    speaker ids of their own too): their formants moved, and a tested voice has no copies."""
    features = features_for(spec.features, spec.fingerprint)
    train, test = np.asarray(spec.train_rows), np.asarray(spec.test_rows)
    inputs = spec.train.inputs()
    sets = model_info(spec.model).features
    if spec.test_features:  # cross-corpus: each corpus's voices scaled within their corpus
        other = features_for(spec.test_features, spec.test_fingerprint)
        x_train, parts = model_inputs(spec.features, spec.fingerprint, sets, train)
        x_test, _ = model_inputs(spec.test_features, spec.test_fingerprint, sets, test)
        test_voices = voices(other, test)
        x_train = inputs.apply(x_train, voices(features, train))
        x_test = inputs.apply(x_test, test_voices)
        y_train, y_test = relabel(features, train, spec.classes), relabel(other, test, spec.classes)
        split = SplitData(x_train, y_train, x_test, y_test, spec.classes)
        ids, config = other.utterance_ids[test], features.config.to_dict()
        return TrialData(
            split, ids, config, features.speakers[train], test_voices, features.recorded[train],
            parts,
        )  # fmt: skip
    rows = np.concatenate([train, test])
    raw, parts = model_inputs(spec.features, spec.fingerprint, sets, rows)
    groups = voices(features, rows)
    x = inputs.apply(raw, groups)
    y = features.labels[rows]
    n = len(train)
    split = SplitData(x[:n], y[:n], x[n:], y[n:], features.label_names)
    ids, config = features.utterance_ids[test], features.config.to_dict()
    return TrialData(
        split, ids, config, features.speakers[train], groups[n:], features.recorded[train], parts
    )


def relabel(features: FeatureSet, rows: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """(N,) int64 labels of ``rows`` as indices into ``classes`` (names both corpora share)."""
    names = np.asarray(features.label_names)[features.labels[rows]]
    return np.asarray([classes.index(name) for name in names], dtype=np.int64)
