"""Encoder embeddings in FEATURES: one family of Parquet shards per encoder set.

    FEATURES/_encoders/<name>/_set.json        the encoder: model, revision, layers, dim, pooling
    FEATURES/_encoders/<name>/part-<hash>.parquet   utterance_id, values ((layers + 1) * dim)

Keyed by utterance id like the openSMILE families (``featurize.store``), so a featurized
corpus gains an encoder set without its spectrograms or functionals being made again, and
the content fingerprint (audio and spectrogram settings) does not change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from featurize.encoders import EncoderSource
from featurize.location import Location
from featurize.store import (
    REJECTS_FILE,
    SET_FILE,
    FeatureStoreError,
    put_shard,
    remove_stale_tmp,
    shard_ids,
    shard_paths,
)

ENCODERS_DIR = "_encoders"
ENCODER_KEY = b"attres.encoder"  # the set's name, the encoder's revision, layers and dim
POOLING = "mean over the clip's own frames of every hidden state (embeddings and each layer)"
# what must match for an existing set to be continued (the model's path may move)
SAME = ("revision", "model_type", "layers", "dim", "pooling", "sample_rate")


def encoder_location(features: str, name: str) -> Location:
    return Location(features).child(ENCODERS_DIR).child(name)


def encoder_shape(source: EncoderSource) -> tuple[int, int]:
    """(layers + 1, dim) of the encoder's embeddings, read from its configuration."""
    config = json.loads((Location(source.path).child("config.json")).read())
    if source.model_type == "whisper":
        return config["encoder_layers"] + 1, config["d_model"]
    return config["num_hidden_layers"] + 1, config["hidden_size"]


def encoder_settings(source: EncoderSource) -> dict[str, Any]:
    """What ``_set.json`` records of a set: what made it and how it was pooled."""
    import transformers

    layers, dim = encoder_shape(source)
    return {
        "encoder": source.name,
        "model": source.model,
        "revision": source.revision,
        "model_type": source.model_type,
        "layers": layers,  # hidden states: the embeddings' output and each layer's
        "dim": dim,
        "pooling": POOLING,
        "sample_rate": source.sample_rate,
        "transformers": transformers.__version__,
    }


def prepare_encoder(features: str, source: EncoderSource) -> dict[str, Any]:
    """Create the set's family, or check that it was made by the same encoder revision
    (another revision computes other values under the same name); its settings."""
    family = encoder_location(features, source.name)
    fs, root = family.filesystem()
    fs.create_dir(root, recursive=True)
    wanted = encoder_settings(source)
    meta = family.child(SET_FILE)
    if not meta.exists():
        meta.write(json.dumps(wanted, indent=2))
        return wanted
    found = json.loads(meta.read())
    if any(found.get(key) != wanted[key] for key in SAME):
        differ = {
            key: (found.get(key), wanted[key]) for key in SAME if found.get(key) != wanted[key]
        }
        raise FeatureStoreError(
            f"{family} holds {source.name} embeddings made differently (existing, requested: "
            f"{differ}); name this encoder otherwise (--encoder NAME={source.model}) or use "
            "another --out folder"
        )
    remove_stale_tmp(fs, root)
    return found


def saved_settings(features: str, name: str) -> dict[str, Any]:
    """The set's ``_set.json``; FeatureStoreError naming the option when there is none."""
    meta = encoder_location(features, name).child(SET_FILE)
    if not meta.exists():
        have = encoder_sets(features)
        raise FeatureStoreError(
            f"{features} has no encoder set {name!r} ("
            + (f"it has {', '.join(have)}" if have else "it has none")
            + f"): featurize it with `attres-flow featurize CORPUS --out {features} "
            f"--encoder {name}=MODEL` (its spectrograms are kept)"
        )
    return dict(json.loads(meta.read()))


def encoder_sets(features: str) -> list[str]:
    """The names of the encoder sets FEATURES holds."""
    import pyarrow.fs as pafs

    fs, root = Location(features).child(ENCODERS_DIR).filesystem()
    infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True))
    return sorted(i.base_name for i in infos if i.type == pafs.FileType.Directory)


def encoder_ids(features: str, name: str) -> set[str]:
    """utterance_ids that already have the set's embedding."""
    return shard_ids(encoder_location(features, name))


def write_encoder_shard(
    features: str, settings: dict[str, Any], ids: list[str], values: np.ndarray
) -> str:
    """(N, layers + 1, dim) embeddings of ``ids`` as one shard of the set, written atomically."""
    n, layers, dim = values.shape
    if (layers, dim) != (settings["layers"], settings["dim"]):
        raise ValueError(
            f"embeddings of {layers} x {dim}; the set holds {settings['layers']} x "
            f"{settings['dim']}"
        )
    meta = {k: settings[k] for k in ("encoder", "revision", "layers", "dim")}
    width = layers * dim
    schema = pa.schema(
        [("utterance_id", pa.string()), ("values", pa.list_(pa.float32(), width))],
        metadata={ENCODER_KEY: json.dumps(meta)},
    )
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
    table = pa.Table.from_arrays(
        [pa.array(ids, type=pa.string()), pa.FixedSizeListArray.from_arrays(flat, width)],
        schema=schema,
    )
    return put_shard(encoder_location(features, settings["encoder"]), table, large="values")


def check_encoder_set(features: str, name: str, ids: np.ndarray) -> dict[str, Any]:
    """The set's settings; FeatureStoreError, naming the option to run, when the set is
    missing or some of ``ids`` lack it (reads the ids only)."""
    settings = saved_settings(features, name)
    have = encoder_ids(features, name)
    missing = [uid for uid in ids if uid not in have]
    if missing:
        raise FeatureStoreError(
            f"{features}: {len(missing)} utterance(s) have a spectrogram but no {name} "
            f"embedding ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}); run "
            f"`attres-flow featurize CORPUS --out {features} --encoder {name}={settings['model']}` "
            f"again; if the encoder refused them (reasons in {REJECTS_FILE}), featurize into a "
            "fresh folder without them (a --manifest that leaves them out)"
        )
    return settings


@dataclass(frozen=True)
class EncoderVectors:
    """One encoder set's embeddings for given utterances, in their order."""

    name: str
    values: np.ndarray  # (N, layers + 1, dim) float32
    settings: dict[str, Any]  # its _set.json


def load_encoder_set(features: str, name: str, ids: np.ndarray) -> EncoderVectors:
    """The set's (N, layers + 1, dim) embeddings of ``ids``, in their order."""
    settings = check_encoder_set(features, name, ids)
    fs, root = encoder_location(features, name).filesystem()
    table = pq.read_table(shard_paths(fs, root), filesystem=fs)
    position = {uid: i for i, uid in enumerate(table.column("utterance_id").to_pylist())}
    layers, dim = settings["layers"], settings["dim"]
    values = table.column("values").combine_chunks().flatten().to_numpy()
    values = values.reshape(-1, layers, dim)
    take = np.fromiter((position[uid] for uid in ids), dtype=np.int64, count=len(ids))
    return EncoderVectors(name, values[take], settings)
