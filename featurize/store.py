"""The FEATURES folder: Parquet spectrogram shards plus underscore-prefixed side files.

Layout (Arrow's dataset discovery skips names starting with ``_``, so
``pyarrow.parquet.read_table(FEATURES)`` and ``ray.data.read_parquet(FEATURES)`` see rows only)::

    FEATURES/_features.json     feature config + label names, written before any shard
    FEATURES/part-<hash>.parquet   one shard per featurize task, written atomically
    FEATURES/_rejects.csv       path, reason of every file that could not be featurized
    FEATURES/_summary.json      counts, config and elapsed seconds of the last run
    FEATURES/_functionals/<set>/_set.json          an openSMILE set's settings (--functionals)
    FEATURES/_functionals/<set>/part-<hash>.parquet   its vectors: utterance_id, values
    FEATURES/_encoders/<name>/...  a speech encoder's layer means (featurize.encoder_store)

A functionals family is keyed by utterance id, so a corpus featurized before gains a set
without its images being made again; the content fingerprint covers the audio and the
spectrogram settings only, so it does not change when a set is added.

FEATURES is a local folder or any URI pyarrow understands (``s3://``, ``gs://``).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from featurize.config import FeatureConfig
from featurize.location import TMP_PREFIX, Location

META_FILE = "_features.json"
REJECTS_FILE = "_rejects.csv"
SUMMARY_FILE = "_summary.json"
SHARD_PREFIX = "part-"
FUNCTIONALS_DIR = "_functionals"
SET_FILE = "_set.json"
CONFIG_KEY = b"attres.feature_config"
FUNCTIONALS_KEY = b"attres.functionals"  # the set, openSMILE's version, the feature names
LABELS_KEY = b"attres.labels"
STALE_TMP_S = 3600.0  # a temporary file this old is no write in flight


class FeatureStoreError(ValueError):
    """The FEATURES location is unusable or holds features made differently."""


def shard_schema(config: FeatureConfig, labels: tuple[str, ...]) -> pa.Schema:
    size = config.image_size
    image = pa.list_(pa.list_(pa.float32(), size), size)  # (H, W) rows = frequency
    fields = [
        ("utterance_id", pa.string()),
        ("speaker", pa.string()),
        ("emotion", pa.string()),
        ("label", pa.int16()),
        ("utt_id", pa.string()),
        ("duration_s", pa.float32()),
        ("sample_rate", pa.int32()),
        ("source", pa.string()),
        ("sha1", pa.string()),
        ("spectrogram", image),
    ]
    if config.speeds:  # the utterance a speed-perturbed row was made from (its own id if none)
        fields.insert(-1, ("origin", pa.string()))
    metadata = {CONFIG_KEY: json.dumps(config.to_dict()), LABELS_KEY: json.dumps(list(labels))}
    return pa.schema(fields, metadata=metadata)


def prepare_store(features: str, config: FeatureConfig, labels: tuple[str, ...]) -> None:
    """Create FEATURES or check that what is there was made with the same config and labels."""
    fs, root = Location(features).filesystem()
    fs.create_dir(root, recursive=True)
    meta = Location(features).child(META_FILE)
    wanted: dict[str, Any] = {"config": config.to_dict(), "labels": list(labels)}
    if meta.exists():
        found = json.loads(meta.read())
        if found != wanted:
            keys = dict.fromkeys([*found["config"], *wanted["config"]])  # either side's
            diff = [
                f"{key}: existing {found['config'].get(key)!r}, requested "
                f"{wanted['config'].get(key)!r}"
                for key in keys
                if found["config"].get(key) != wanted["config"].get(key)
            ]
            if found["labels"] != wanted["labels"]:
                diff.append(f"labels: existing {found['labels']}, corpus has {list(labels)}")
            raise FeatureStoreError(
                f"{features} holds features made with a different configuration "
                f"({'; '.join(diff)}); use another --out folder or the same settings"
            )
    elif shard_paths(fs, root):
        raise FeatureStoreError(f"{features} holds Parquet shards but no {META_FILE}")
    else:
        meta.write(json.dumps(wanted, indent=2))
    remove_stale_tmp(fs, root)


def remove_stale_tmp(fs: pafs.FileSystem, root: str) -> None:
    """Delete temporary files left by a run that was killed; a younger one may be another
    run's shard in flight."""
    stale = time.time() - STALE_TMP_S
    for info in fs.get_file_info(pafs.FileSelector(root)):
        if info.base_name.startswith(TMP_PREFIX) and info.mtime.timestamp() < stale:
            fs.delete_file(info.path)


def shard_paths(fs: pafs.FileSystem, root: str) -> list[str]:
    infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    return sorted(
        i.path
        for i in infos
        if i.base_name.startswith(SHARD_PREFIX) and i.path.endswith(".parquet")
    )


def existing_ids(features: str) -> set[str]:
    """utterance_ids already written (reads one column of each shard)."""
    fs, root = Location(features).filesystem()
    ids: set[str] = set()
    for path in shard_paths(fs, root):
        table = pq.read_table(path, columns=["utterance_id"], filesystem=fs)
        ids.update(table.column("utterance_id").to_pylist())
    return ids


def write_shard(
    features: str,
    rows: list[dict[str, Any]],
    config: FeatureConfig,
    labels: tuple[str, ...],
) -> str:
    """Write rows as one shard under a temporary name, then rename; returns the shard name."""
    schema = shard_schema(config, labels)
    columns = {name: [row[name] for row in rows] for name in schema.names if name != "spectrogram"}
    images = np.stack([row["spectrogram"] for row in rows], dtype=np.float32)  # (N, H, W)
    n, h, w = images.shape
    inner = pa.FixedSizeListArray.from_arrays(pa.array(images.reshape(-1)), w)
    arrays = [pa.array(columns[name], type=schema.field(name).type) for name in columns]
    arrays.append(pa.FixedSizeListArray.from_arrays(inner, h))
    table = pa.Table.from_arrays(arrays, schema=schema)
    return put_shard(Location(features), table, large="spectrogram")


def put_shard(folder: Location, table: pa.Table, large: str) -> str:
    """Write ``table`` as the shard of its utterance ids into ``folder`` (atomically);
    returns its name, the same for the same ids, so a re-made shard replaces itself.

    Floats barely compress (zstd made CASIA's spectrogram shards 7 % smaller for much more
    CPU; snappy 1 % smaller for 0.3 ms of a core per 128x128 row, more than the rest of the
    write), and dictionaries and min/max statistics over thousands of floats a row are
    wasted work: compression, dictionaries and statistics for the small columns only, not
    for the ``large`` one.
    """
    ids = "\n".join(sorted(table.column("utterance_id").to_pylist()))
    name = f"{SHARD_PREFIX}{hashlib.sha1(ids.encode()).hexdigest()[:16]}.parquet"
    small = [column for column in table.column_names if column != large]
    codecs = {column: "snappy" for column in small} | {large: "none"}
    folder.child(name).write_with(
        lambda f: pq.write_table(
            table, f, compression=codecs, use_dictionary=small, write_statistics=small
        )
    )
    return name


@dataclass(frozen=True)
class FeatureSet:
    """A featurized corpus in memory: what training reads. ``spectrograms`` is None in an
    index (``load_features(..., spectrograms=False)``): what planning a grid needs."""

    spectrograms: np.ndarray | None  # (N, 1, H, W) float32
    labels: np.ndarray  # (N,) int64
    utterance_ids: np.ndarray  # (N,) str, sorted
    speakers: np.ndarray  # (N,) str
    label_names: tuple[str, ...]
    config: FeatureConfig
    origins: np.ndarray  # (N,) str: the recording a row was made from; its own id if unperturbed

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def recorded(self) -> np.ndarray:
        """(N,) bool: the rows of the recordings as they are, not speed-perturbed copies."""
        return self.origins == self.utterance_ids

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, H, W) of one spectrogram."""
        return (1, self.config.image_size, self.config.image_size)

    @property
    def images(self) -> np.ndarray:
        """The spectrograms; RuntimeError on an index, which has none."""
        if self.spectrograms is None:
            raise RuntimeError("an index of FEATURES holds no spectrograms")
        return self.spectrograms


INDEX_COLUMNS = ["utterance_id", "speaker", "label", "sha1"]


def load_features(features: str, spectrograms: bool = True) -> FeatureSet:
    """Read every shard under FEATURES, sorted by utterance_id so row order is stable; with
    ``spectrograms=False`` the index only (ids, speakers, labels: a few MB, not GB)."""
    fs, root = Location(features).filesystem()
    paths = shard_paths(fs, root)
    if not paths:
        raise FeatureStoreError(
            f"no Parquet shards ({SHARD_PREFIX}*.parquet) under {features}; "
            "run `attres-flow featurize CORPUS --out FEATURES` first"
        )
    schema = pq.read_schema(paths[0], filesystem=fs)
    columns = INDEX_COLUMNS + [c for c in ("origin",) if c in schema.names]
    table = pq.read_table(paths, filesystem=fs, columns=columns).sort_by("utterance_id")
    ids = np.asarray(table.column("utterance_id").to_pylist())
    repeated = np.unique(ids[1:][ids[1:] == ids[:-1]])  # sorted, so repeats are neighbours
    if len(repeated):
        raise FeatureStoreError(
            f"{features}: {len(repeated)} utterance id(s) in more than one row "
            f"({', '.join(repeated[:5])}{', ...' if len(repeated) > 5 else ''}), so one clip "
            "could land in both train and test; featurize into a fresh --out folder"
        )
    origins = (
        np.asarray(table.column("origin").to_pylist()) if "origin" in table.column_names else ids
    )
    refuse_same_audio(features, ids[origins == ids], table.filter(origins == ids)["sha1"])
    meta = schema.metadata
    config = FeatureConfig.from_dict(json.loads(meta[CONFIG_KEY]))
    return FeatureSet(
        spectrograms=load_spectrograms(features, config.image_size, ids) if spectrograms else None,
        labels=table.column("label").to_numpy().astype(np.int64),
        utterance_ids=ids,
        speakers=np.asarray(table.column("speaker").to_pylist()),
        label_names=tuple(json.loads(meta[LABELS_KEY])),
        config=config,
        origins=origins,
    )


def load_spectrograms(features: str, size: int, expected: np.ndarray) -> np.ndarray:
    """(N, 1, size, size) float32 spectrograms of FEATURES in utterance_id order, read shard
    by shard into one array (no second copy of the corpus on the way); ``expected``: the ids
    of the index they go with (refused if the shards hold others now)."""
    positions, shards = spectrogram_shards(features, size, expected)
    row_of = np.empty(len(positions), dtype=np.int64)
    row_of[positions] = np.arange(len(positions))  # position in the file order -> row in id order
    out = np.empty((len(positions), 1, size, size), dtype=np.float32)
    start = 0
    for images in shards:
        out[row_of[start : start + len(images)]] = images
        start += len(images)
    return out


def spectrogram_shards(
    features: str, size: int, expected: np.ndarray
) -> tuple[np.ndarray, Iterator[np.ndarray]]:
    """The spectrograms of FEATURES one shard at a time: (N,) where each row of the index (in
    ``expected``'s utterance_id order) is among the shards' rows in file order, and each
    shard's (n, 1, size, size) float32 spectrograms in that order, read when asked for."""
    fs, root = Location(features).filesystem()
    paths = shard_paths(fs, root)
    ids = (
        pq.read_table(paths, filesystem=fs, columns=["utterance_id"])
        .column(0)
        .to_numpy(zero_copy_only=False)
    )
    order = np.argsort(ids, kind="stable")
    if not np.array_equal(ids[order], expected):
        raise FeatureStoreError(
            f"{features} changed while it was read ({len(ids)} rows, the index has "
            f"{len(expected)}); run the command again"
        )

    def shards() -> Iterator[np.ndarray]:
        for path in paths:
            column = pq.read_table(path, filesystem=fs, columns=["spectrogram"]).column(0)
            yield column.combine_chunks().flatten().flatten().to_numpy().reshape(-1, 1, size, size)

    return order, shards()


def refuse_same_audio(features: str, ids: np.ndarray, sha1: pa.ChunkedArray) -> None:
    """Refuse recordings of the same audio under two ids (FEATURES made before featurize
    kept one copy of each): one could train and the other test."""
    digests = np.asarray(sha1.to_pylist())
    order = np.argsort(digests, kind="stable")
    digests, ids = digests[order], ids[order]
    twice = np.flatnonzero(digests[1:] == digests[:-1])  # sorted: copies are neighbours
    if len(twice):
        pairs = [f"{ids[i]} = {ids[i + 1]}" for i in twice[:5]]
        raise FeatureStoreError(
            f"{features}: {len(twice)} recording(s) hold the same audio as another "
            f"({'; '.join(pairs)}{'; ...' if len(twice) > 5 else ''}), so one clip could land "
            "in both train and test; featurize into a fresh --out folder (featurize keeps "
            "one copy of each audio)"
        )


def content_fingerprint(features: str) -> str:
    """Hash of what the features are made of: settings, labels and every (utterance id,
    audio SHA-1) pair. The same corpus featurized the same way gives the same hash on any
    machine, whatever the shard names."""
    fs, root = Location(features).filesystem()
    paths = shard_paths(fs, root)
    if not paths:
        raise FeatureStoreError(f"no Parquet shards ({SHARD_PREFIX}*.parquet) under {features}")
    table = pq.read_table(paths, filesystem=fs, columns=["utterance_id", "sha1"])
    table = table.sort_by("utterance_id")
    meta = pq.read_schema(paths[0], filesystem=fs).metadata
    digest = hashlib.sha1()
    digest.update(json.dumps(json.loads(meta[CONFIG_KEY]), sort_keys=True).encode())
    digest.update(meta[LABELS_KEY])
    for uid, sha1 in zip(
        table.column("utterance_id").to_pylist(), table.column("sha1").to_pylist(), strict=True
    ):
        digest.update(f"{uid}\t{sha1}\n".encode())
    return digest.hexdigest()[:16]


def functionals_location(features: str, name: str) -> Location:
    return Location(features).child(FUNCTIONALS_DIR).child(name)


def prepare_functionals(features: str, sets: tuple[str, ...], sample_rate: int) -> None:
    """Create each set's family or check that it was made by the same openSMILE at the same
    rate (another version may compute other values under the same names)."""
    from featurize.functionals import SETS, opensmile_version

    for name in sets:
        family = functionals_location(features, name)
        fs, root = family.filesystem()
        fs.create_dir(root, recursive=True)
        wanted = {
            "set": name,
            "opensmile_feature_set": SETS[name][0],
            "opensmile": opensmile_version(),
            "sample_rate": sample_rate,
        }
        meta = family.child(SET_FILE)
        if not meta.exists():
            meta.write(json.dumps(wanted, indent=2))
        elif (found := json.loads(meta.read())) != wanted:
            raise FeatureStoreError(
                f"{family} holds {name} functionals made differently (existing {found}, "
                f"requested {wanted}); use another --out folder or the same openSMILE"
            )
        remove_stale_tmp(fs, root)


def functionals_settings(features: str, sets: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Each set's settings as featurize saved them (its ``_set.json``: openSMILE's version,
    the rate)."""
    return {name: json.loads(functionals_location(features, name).child(SET_FILE).read())
            for name in sets}  # fmt: skip


def shard_ids(folder: Location) -> set[str]:
    """utterance_ids of every shard in a set's folder (its ids column only)."""
    fs, root = folder.filesystem()
    ids: set[str] = set()
    for path in shard_paths(fs, root):
        ids.update(pq.read_table(path, columns=["utterance_id"], filesystem=fs)[0].to_pylist())
    return ids


def functionals_ids(features: str, name: str) -> set[str]:
    """utterance_ids that already have the set's vector."""
    return shard_ids(functionals_location(features, name))


def write_functionals_shard(
    features: str, name: str, ids: list[str], values: np.ndarray, names: list[str]
) -> str:
    """(N, D) vectors of ``ids`` as one shard of the set's family, written atomically."""
    from featurize.functionals import opensmile_version

    n, d = values.shape
    meta = {"set": name, "opensmile": opensmile_version(), "names": names}
    schema = pa.schema(
        [("utterance_id", pa.string()), ("values", pa.list_(pa.float32(), d))],
        metadata={FUNCTIONALS_KEY: json.dumps(meta)},
    )
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
    table = pa.Table.from_arrays(
        [pa.array(ids, type=pa.string()), pa.FixedSizeListArray.from_arrays(flat, d)],
        schema=schema,
    )
    return put_shard(functionals_location(features, name), table, large="values")


@dataclass(frozen=True)
class Functionals:
    """One set's vectors for given utterances, in their order."""

    name: str
    values: np.ndarray  # (N, D) float32
    names: list[str]  # D feature names, as openSMILE calls them
    opensmile: str  # the version that computed them


def check_functionals(features: str, name: str, ids: np.ndarray) -> None:
    """FeatureStoreError, naming the option to run, when the set is missing or some of
    ``ids`` lack it; reads the ids only."""
    fs, root = functionals_location(features, name).filesystem()
    if not shard_paths(fs, root):
        raise FeatureStoreError(
            f"{features} has no {name} functionals: featurize it with `attres-flow featurize "
            f"CORPUS --out {features} --functionals {name}` (its spectrograms are kept)"
        )
    have = functionals_ids(features, name)
    missing = [uid for uid in ids if uid not in have]
    if missing:
        raise FeatureStoreError(
            f"{features}: {len(missing)} utterance(s) have a spectrogram but no {name} "
            f"functionals ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); "
            f"run `attres-flow featurize CORPUS --out {features} --functionals {name}` again; "
            f"if openSMILE refused them (reasons in {REJECTS_FILE}), featurize into a fresh "
            "folder with --functionals from the start, which leaves them out for every model"
        )


def functionals_width(features: str, name: str) -> int:
    """D, the length of one vector of the set (read from a shard's schema)."""
    fs, root = functionals_location(features, name).filesystem()
    schema = pq.read_schema(shard_paths(fs, root)[0], filesystem=fs)
    return len(json.loads(schema.metadata[FUNCTIONALS_KEY])["names"])


def load_functionals(features: str, name: str, ids: np.ndarray) -> Functionals:
    """The set's vectors of ``ids``, in their order (``check_functionals`` first)."""
    check_functionals(features, name, ids)
    fs, root = functionals_location(features, name).filesystem()
    paths = shard_paths(fs, root)
    table = pq.read_table(paths, filesystem=fs)
    meta = json.loads(pq.read_schema(paths[0], filesystem=fs).metadata[FUNCTIONALS_KEY])
    position = {uid: i for i, uid in enumerate(table.column("utterance_id").to_pylist())}
    d = len(meta["names"])
    values = table.column("values").combine_chunks().flatten().to_numpy().reshape(-1, d)
    take = np.fromiter((position[uid] for uid in ids), dtype=np.int64, count=len(ids))
    return Functionals(name, values[take], meta["names"], meta["opensmile"])
