"""A trial's data: its split of the features, as the model's inputs.

A grid's features go into Ray's object store once (``share_features``, by the driver: a task
reads them there, so the driver never holds them), and every trial and every data-parallel
rank on a node reads that one copy, zero-copy and read-only; Ray moves it to other nodes. A
trial then holds its own split's working set. Outside a grid (or where the store does not
hold them) a process reads FEATURES itself, once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from attres.inputs import InputSettings, Part, Rows, voice_scaling
from attres.models import ModelInfo, model_info
from featurize.encoder_store import load_encoder_set
from featurize.store import (
    FeatureSet,
    content_fingerprint,
    load_features,
    load_functionals,
    spectrogram_shards,
)
from workflows.grid.config import TrialSpec

if TYPE_CHECKING:  # the loop imports torch: the grid's driver shares features, trains nothing
    from attres.loop import SplitData, StreamedSplit

# Features read by this process, by location: a reused trial actor reads them once.
_FEATURES: dict[str, tuple[str, FeatureSet]] = {}
_FUNCTIONALS: dict[tuple[str, str, str], np.ndarray] = {}  # (location, fingerprint, set)
_INDEXES: dict[tuple[str, str], FeatureSet] = {}  # (location, fingerprint): no spectrograms
_ENCODERS: dict[tuple[str, str, str], np.ndarray] = {}  # (location, fingerprint, set)


@dataclass(frozen=True)
class SharedFeatures:
    """One FEATURES of a grid in Ray's object store: its index by value (ids, speakers,
    labels), its spectrograms and each functionals set its models read by reference."""

    location: str
    fingerprint: str
    index: FeatureSet  # spectrograms None
    # the spectrograms: the ray.ObjectRef of where each row is among the shards' rows, then
    # one of each shard's (n, 1, H, W) array (``ShardedImages``); () where no model reads them
    spectrograms: tuple[Any, ...]
    functionals: dict[str, Any]  # set -> ray.ObjectRef of its (N, D) vectors, in index order
    # encoder set -> ray.ObjectRef of its (N, layers + 1, dim) embeddings, in index order
    encoders: dict[str, Any] = field(default_factory=dict)

    @property
    def images(self) -> ShardedImages:
        """The spectrograms as the store holds them: read-only, zero-copy."""
        import ray

        positions, *shards = ray.get(list(self.spectrograms))
        return ShardedImages(shards, positions)


class ShardedImages:
    """(N, 1, H, W) spectrograms kept as one array per shard, indexed by rows of the index
    (utterance_id order) like one array: the task that puts them into the object store holds
    one shard at a time, never a second copy of the corpus."""

    def __init__(self, shards: list[np.ndarray], positions: np.ndarray) -> None:
        self.shards = shards
        self.positions = positions  # (N,) each row's place among the shards' rows, in order
        self.starts = np.cumsum([0, *(len(shard) for shard in shards)])[:-1]
        self.shape = (len(positions), *shards[0].shape[1:])

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        """The rows' images, a fresh (n, 1, H, W) array."""
        where = self.positions[np.asarray(rows, dtype=np.intp)]
        shard = np.searchsorted(self.starts, where, side="right") - 1
        out = np.empty((len(where), *self.shape[1:]), dtype=self.shards[0].dtype)
        for k in np.unique(shard):
            mine = shard == k
            out[mine] = self.shards[k][where[mine] - self.starts[k]]
        return out


def share_features(
    location: str,
    fingerprint: str,
    index: FeatureSet,
    spectrograms: bool,
    sets: tuple[str, ...],
    encoders: tuple[str, ...] = (),
) -> SharedFeatures:
    """Put what a grid's models read of ``location`` into the object store, each array read
    by a task (one copy, owned by this driver, which never loads it); the spectrograms shard
    by shard, from a task that streams them (``num_returns="streaming"``). Each task's
    worker exits when it is done (``max_calls=1``): Ray would keep it idle for reuse, with
    the heap the reading grew, for the whole grid; the store keeps what it put."""
    import ray

    once = {"num_cpus": 0, "max_calls": 1}
    read_images = ray.remote(num_returns="streaming", **once)(_read_spectrograms)
    read_set = ray.remote(**once)(_read_functionals)
    read_encoder = ray.remote(**once)(_read_encoder)
    images = ()
    if spectrograms:
        size = index.config.image_size
        images = tuple(read_images.remote(location, fingerprint, size, index.utterance_ids))
    return SharedFeatures(
        location=location,
        fingerprint=fingerprint,
        index=index,
        spectrograms=images,
        functionals={
            name: read_set.remote(location, fingerprint, name, index.utterance_ids) for name in sets
        },
        encoders={
            name: read_encoder.remote(location, fingerprint, name, index.utterance_ids)
            for name in encoders
        },
    )


def _read_spectrograms(
    location: str, planned: str, size: int, ids: np.ndarray
) -> Iterator[np.ndarray]:
    """Where each row is among the shards' rows, then each shard's spectrograms."""
    _require_unchanged(location, planned)
    positions, shards = spectrogram_shards(location, size, ids)
    yield positions
    yield from shards


def _read_functionals(location: str, planned: str, name: str, ids: np.ndarray) -> np.ndarray:
    _require_unchanged(location, planned)
    return load_functionals(location, name, ids).values


def _read_encoder(location: str, planned: str, name: str, ids: np.ndarray) -> np.ndarray:
    _require_unchanged(location, planned)
    return load_encoder_set(location, name, ids).values


def _require_unchanged(location: str, planned: str) -> None:
    fingerprint = content_fingerprint(location)
    if fingerprint != planned:
        raise RuntimeError(
            f"{location} changed after the grid was planned (fingerprint "
            f"{fingerprint}, planned on {planned}); re-run train-all"
        )


@dataclass(frozen=True)
class TrialData:
    # the inputs (``TrainConfig.inputs`` applied) and labels; None in the process of a trial
    # whose Ray Train ranks gather them (``trial_index``), a stream on a streaming rank
    split: SplitData | StreamedSplit | None
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
    # (N_train,) each training row's weight, where other corpora's clips join the training
    # side (``--extra-train``, weighted ``--extra-weight``); None: all weigh the same
    train_weights: np.ndarray | None = None

    @property
    def test_ids_sha1(self) -> str:
        """Which rows were evaluated, so seeds of one fold can be averaged (seed ensembles)."""
        return hashlib.sha1("\n".join(self.test_ids.tolist()).encode()).hexdigest()[:16]


Shared = dict[str, SharedFeatures]  # by location


def _shared(location: str, planned: str, shared: Shared | None) -> SharedFeatures | None:
    """The grid's shared copy of ``location``, if it shared the features planned on."""
    mine = shared.get(location) if shared else None
    return mine if mine is not None and mine.fingerprint == planned else None


def images_for(location: str, planned: str, shared: Shared | None = None) -> Any:
    """The (N, 1, H, W) spectrograms the grid was planned on (fingerprint ``planned``): the
    object store's copy where the grid shared them (``ShardedImages``), else this process's
    own array, read once."""
    if (mine := _shared(location, planned, shared)) is not None and mine.spectrograms:
        return mine.images
    cached = _FEATURES.get(location)
    if cached is None or cached[0] != planned:
        _require_unchanged(location, planned)
        _FEATURES[location] = cached = (planned, load_features(location))
    return cached[1].images


def model_values(
    location: str,
    planned: str,
    model: ModelInfo,
    rows: np.ndarray,
    shared: Shared | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[tuple[str, int], ...]]:
    """What ``model`` reads of ``rows``, as an array and each row's index into it: the
    features' (N, 1, H, W) spectrograms (the store's read-only copy, not gathered), or an
    openSMILE set's (N, D, 1, 1) functionals, several sets side by side for ``rows`` alone,
    with each set's length (a model of functionals never reads a spectrogram), or an encoder
    set's (N, layers + 1, dim, 1) embeddings."""
    if model.encoder:
        return encoder_values(location, planned, model.encoder, shared)[..., None], rows, ()
    sets = model.features
    if not sets:
        return images_for(location, planned, shared), rows, ()
    if len(sets) == 1:
        values = set_values(location, planned, sets[0], shared)
        return values[:, :, None, None], rows, ((sets[0], values.shape[1]),)
    parts = [set_values(location, planned, name, shared)[rows] for name in sets]
    x = np.concatenate(parts, axis=1)[:, :, None, None]
    lengths = tuple((name, part.shape[1]) for name, part in zip(sets, parts, strict=True))
    return x, np.arange(len(rows)), lengths


def scaled_parts(
    location: str,
    planned: str,
    model: ModelInfo,
    sides: list[np.ndarray],
    voices_of: list[np.ndarray],
    settings: InputSettings,
    shared: Shared | None,
) -> tuple[list[Part], tuple[tuple[str, int], ...]]:
    """Rows of one FEATURES, one ``Part`` per side given, every voice scaled by the
    statistics of all of its rows on these sides together."""
    rows = np.concatenate(sides)
    values, index, lengths = model_values(location, planned, model, rows, shared)
    everyone = np.concatenate(voices_of)
    scaling = voice_scaling(values, index, everyone, settings)
    parts, start = [], 0
    for side, who in zip(sides, voices_of, strict=True):
        parts.append(Part(values, index[start : start + len(side)], who, scaling))
        start += len(side)
    return parts, lengths


def set_values(location: str, planned: str, name: str, shared: Shared | None) -> np.ndarray:
    """(N, D) vectors of one functionals set in index order: the store's copy, or read."""
    import ray

    mine = _shared(location, planned, shared)
    if mine is not None and name in mine.functionals:
        return ray.get(mine.functionals[name])
    key = (location, planned, name)
    if key not in _FUNCTIONALS:
        ids = index_for(location, planned, shared).utterance_ids
        _FUNCTIONALS[key] = load_functionals(location, name, ids).values
    return _FUNCTIONALS[key]


def encoder_values(location: str, planned: str, name: str, shared: Shared | None) -> np.ndarray:
    """(N, layers + 1, dim) embeddings of one encoder set in index order: the store's copy,
    or read."""
    import ray

    mine = _shared(location, planned, shared)
    if mine is not None and name in mine.encoders:
        return ray.get(mine.encoders[name])
    key = (location, planned, name)
    if key not in _ENCODERS:
        ids = index_for(location, planned, shared).utterance_ids
        _ENCODERS[key] = load_encoder_set(location, name, ids).values
    return _ENCODERS[key]


def index_for(location: str, planned: str, shared: Shared | None = None) -> FeatureSet:
    """The ids, speakers and labels of FEATURES, no spectrogram read."""
    if (mine := _shared(location, planned, shared)) is not None:
        return mine.index
    cached = _FEATURES.get(location)
    if cached is not None and cached[0] == planned:
        return cached[1]
    if (location, planned) not in _INDEXES:
        _require_unchanged(location, planned)
        _INDEXES[location, planned] = load_features(location, spectrograms=False)
    return _INDEXES[location, planned]


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


def trial_data(spec: TrialSpec, shared: Shared | None = None) -> TrialData:
    """The trial's rows as the model's inputs (``TrainConfig.inputs``), made batch by batch
    from the grid's copy (``attres.inputs.Rows``): a speaker is scaled by the statistics of
    their rows in this split, training and evaluation parts alike. The speed-perturbed
    copies of a speaker count as a voice of their own (Kaldi gives them speaker ids of their
    own too): their formants moved, and a tested voice has no copies."""
    from attres.loop import SplitData

    features = index_for(spec.features, spec.fingerprint, shared)
    train, test = np.asarray(spec.train_rows), np.asarray(spec.test_rows)
    settings = spec.train.inputs()
    model = model_info(spec.model)
    train_voices = voices(features, train)
    if spec.test_features:  # cross-corpus: each corpus's voices scaled within their corpus
        other = index_for(spec.test_features, spec.test_fingerprint, shared)
        test_voices = voices(other, test)
        (trained,), parts = scaled_parts(
            spec.features, spec.fingerprint, model, [train], [train_voices], settings, shared
        )  # fmt: skip
        (tested,), _ = scaled_parts(
            spec.test_features, spec.test_fingerprint, model, [test], [test_voices], settings,
            shared,
        )  # fmt: skip
        y_train, y_test = relabel(features, train, spec.classes), relabel(other, test, spec.classes)
        split = SplitData(
            Rows((trained,), settings), y_train, Rows((tested,), settings), y_test, spec.classes
        )  # fmt: skip
        ids, config = other.utterance_ids[test], features.config.to_dict()
        return TrialData(
            split, ids, config, features.speakers[train], test_voices, features.recorded[train],
            parts,
        )  # fmt: skip
    test_voices = voices(features, test)
    (trained, tested), parts = scaled_parts(
        spec.features, spec.fingerprint, model, [train, test], [train_voices, test_voices],
        settings, shared,
    )  # fmt: skip
    y_train, y_test = features.labels[train], features.labels[test]
    ids, config = features.utterance_ids[test], features.config.to_dict()
    speakers, recorded = features.speakers[train], features.recorded[train]
    x_test = Rows((tested,), settings)
    if not spec.extra_fingerprints:
        split = SplitData(Rows((trained,), settings), y_train, x_test, y_test, features.label_names)
        return TrialData(split, ids, config, speakers, test_voices, recorded, parts)
    extra = extra_training_rows(spec, features.label_names, model, shared)
    split = SplitData(
        Rows((trained, *extra.parts), settings), np.concatenate([y_train, extra.y]), x_test,
        y_test, features.label_names,
    )  # fmt: skip
    weights = np.concatenate([np.ones(len(train)), np.full(len(extra.y), spec.train.extra_weight)])
    return TrialData(
        split, ids, config, np.concatenate([speakers, extra.speakers]), test_voices,
        np.concatenate([recorded, np.zeros(len(extra.y), bool)]), parts, weights,
    )  # fmt: skip


@dataclass(frozen=True)
class ExtraRows:
    """Other corpora's clips of the target's classes, as the model's inputs."""

    parts: tuple[Part, ...]  # one per corpus
    y: np.ndarray  # indices into the target's label names
    speakers: np.ndarray  # "<corpus number>:<speaker>": no speaker shared across corpora


def extra_training_rows(
    spec: TrialSpec, label_names: tuple[str, ...], model: ModelInfo, shared: Shared | None
) -> ExtraRows:
    """Every clip of each ``--extra-train`` corpus whose emotion the target has, its
    speakers scaled by their own statistics within their corpus (never beside the target's
    rows, nor the other corpora's)."""
    parts, ys, speakers = [], [], []
    settings = spec.train.inputs()
    for k, (location, fingerprint) in enumerate(
        zip(spec.train.extra_train, spec.extra_fingerprints, strict=True)
    ):
        index = index_for(location, fingerprint, shared)
        names = np.asarray(index.label_names)[index.labels]
        rows = np.flatnonzero(np.isin(names, label_names))
        tagged = np.asarray([f"{k}:{voice}" for voice in voices(index, rows)])
        (part,), _ = scaled_parts(location, fingerprint, model, [rows], [tagged], settings, shared)
        parts.append(part)
        ys.append(relabel(index, rows, label_names))
        speakers.append(np.asarray([f"{k}:{speaker}" for speaker in index.speakers[rows]]))
    return ExtraRows(tuple(parts), np.concatenate(ys), np.concatenate(speakers))


def trial_index(
    spec: TrialSpec, index: FeatureSet | None = None, split: StreamedSplit | None = None
) -> TrialData:
    """What the trial's record needs of its rows (which were tested, whose they are), read
    from the index: a trial whose Ray Train ranks gather the inputs gathers none itself."""
    features = index if index is not None else index_for(spec.features, spec.fingerprint)
    train, test = np.asarray(spec.train_rows), np.asarray(spec.test_rows)
    tested = features
    if spec.test_features:
        tested = index_for(spec.test_features, spec.test_fingerprint)
    return TrialData(
        split, tested.utterance_ids[test], features.config.to_dict(), features.speakers[train],
        voices(tested, test), features.recorded[train],
    )  # fmt: skip


def relabel(features: FeatureSet, rows: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """(N,) int64 labels of ``rows`` as indices into ``classes`` (names both corpora share)."""
    names = np.asarray(features.label_names)[features.labels[rows]]
    return np.asarray([classes.index(name) for name in names], dtype=np.int64)
