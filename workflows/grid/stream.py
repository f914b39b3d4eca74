"""A trial's rows streamed from the Parquet shards (``--stream``): Ray Data reads, selects and
scales them batch by batch; the trial's own process iterates them, or with
``--workers-per-trial N`` Ray Train hands each data-parallel rank its equal shard of the
training rows. No process holds the trial's split: a corpus larger than a node's memory
trains.

The statistics the in-memory path takes of the whole split (each voice's per-frequency mean
and std for ``--normalize speaker``, the training rows' mean and std) are partial sums of
each block, computed by Ray Data and added in the trial (``attres.inputs.VoiceSums``,
``attres.inputs.channel_sums``): the same figures up to float rounding. What differs from
the in-memory path is the order of the batches (files shuffled, then rows in a local
buffer), so records are not bit-identical to it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from attres.inputs import (
    InputSettings,
    Standardizer,
    VoiceScaling,
    VoiceSums,
    add_deltas,
    channel_sums,
)
from featurize.location import Location
from featurize.store import shard_paths
from workflows.grid.config import TrialSpec
from workflows.grid.data import index_for

if TYPE_CHECKING:  # the module imports no torch: Ray Data's tasks run its functions
    from attres.loop import StreamedSplit

# Rows each rank shuffles among (a buffer of 1,000 spectrograms of 128x128 is 66 MB).
SHUFFLE_ROWS = 1000
# Ray Data tasks of a streamed trial hold no CPU of their own: they work for the trial's
# ranks, which hold its CPUs, and the ranks wait for them (a cluster full of ranks would
# otherwise leave the reads none). Their number is bounded instead.
DATA_TASKS = 2


@dataclass(frozen=True)
class StreamedRows:
    """What a streamed trial's ranks read: the datasets and what scaled them."""

    train: Any  # ray.data.Dataset of {"x": (C, H, W) float32, "y": int64}, training rows
    test: Any  # ray.data.Dataset of {"id": str, "x", "y"}, the evaluated rows
    n_train: int
    scale: Standardizer
    test_ids: np.ndarray  # (N_test,) the evaluated rows' ids, in the trial's order


def stream_rows(spec: TrialSpec) -> StreamedRows:
    """The datasets of ``spec``'s rows as the model's inputs, scaled as ``trial_data`` scales
    them: two passes of partial sums (each voice's statistics over its rows on both sides,
    then the training rows' mean and std), then the scaled rows, read again as they go."""
    index = index_for(spec.features, spec.fingerprint)
    train_ids = index.utterance_ids[np.asarray(spec.train_rows)]
    test_ids = index.utterance_ids[np.asarray(spec.test_rows)]
    inputs = spec.train.inputs()
    size = index.config.image_size
    voices = None
    if inputs.normalize == "speaker":
        sums = VoiceSums()
        both = np.concatenate([train_ids, test_ids])
        for batch in (
            _rows(spec.features, both, size)
            .map_batches(_voice_sums, fn_kwargs={"deltas": inputs.deltas}, **_TASKS)
            .iter_rows()
        ):
            sums.merge({batch["voice"]: batch["sums"]})
        voices = sums.scaling()
    totals = sum(
        row["sums"]
        for row in _rows(spec.features, train_ids, size)
        .map_batches(_channel_sums, fn_kwargs={"inputs": inputs, "voices": voices}, **_TASKS)
        .iter_rows()
    )
    scale = Standardizer.from_sums(*totals)
    scaled = {"inputs": inputs, "voices": voices, "scale": scale}
    return StreamedRows(
        train=_rows(spec.features, train_ids, size, shuffle=True).map_batches(
            _model_inputs, fn_kwargs=scaled, **_TASKS
        ),
        test=_rows(spec.features, test_ids, size).map_batches(
            _model_inputs, fn_kwargs={**scaled, "keep_ids": True}, **_TASKS
        ),
        n_train=len(train_ids),
        scale=scale,
        test_ids=test_ids,
    )


_TASKS = {"batch_format": "numpy", "num_cpus": 0, "concurrency": DATA_TASKS}


def _rows(features: str, ids: np.ndarray, size: int, shuffle: bool = False) -> Any:
    """The shards' rows whose id is in ``ids``: {"id", "voice", "label", "image"}, read a
    few hundred rows at a time (``READ_ROWS``), shard by shard, by tasks that hold no CPU
    (Ray Data's own Parquet reader lists the files in a task that holds one: where the
    trials hold every CPU, the read would never start)."""
    import ray.data

    fs, root = Location(features).filesystem()
    paths = shard_paths(fs, root)
    shards = ray.data.from_items([{"path": p} for p in paths], override_num_blocks=len(paths))
    if shuffle:  # a new order of the shards each epoch, then the ranks' buffers
        shards = shards.randomize_block_order()
    read = {"features": features, "ids": frozenset(ids.tolist()), "size": size}
    return shards.map_batches(_read_shard, fn_kwargs=read, batch_size=1, **_TASKS)


READ_ROWS = 256  # rows of a shard read at once: 16 MiB of 128x128 spectrograms


def _read_shard(
    batch: dict[str, np.ndarray], features: str, ids: frozenset[str], size: int
) -> Iterator[dict[str, np.ndarray]]:
    fs, _ = Location(features).filesystem()
    columns = ["utterance_id", "speaker", "label", "spectrogram"]
    for path in batch["path"]:
        with fs.open_input_file(str(path)) as handle:
            shard = pq.ParquetFile(handle)
            wanted = columns + (["origin"] if "origin" in shard.schema_arrow.names else [])
            for part in shard.iter_batches(batch_size=READ_ROWS, columns=wanted):
                rows = _select(pa.Table.from_batches([part]), ids, size)
                if len(rows["id"]):
                    yield rows
        # Arrow's allocator keeps what a shard's reads freed; the worker outlives the task
        pa.default_memory_pool().release_unused()


def _select(table: pa.Table, ids: frozenset[str], size: int) -> dict[str, np.ndarray]:
    """The rows of ``ids`` in a block of shard rows, as arrays (numpy, not Arrow kernels, on
    the nested spectrogram column)."""
    uid = np.asarray(table["utterance_id"].to_pylist(), dtype=object)
    rows = np.flatnonzero(np.fromiter((u in ids for u in uid), bool, len(uid)))
    speaker = np.asarray(table["speaker"].to_pylist(), dtype=object)[rows]
    origin = (
        np.asarray(table["origin"].to_pylist(), dtype=object)[rows]
        if "origin" in table.column_names
        else uid[rows]
    )
    # a speed-perturbed copy is a voice of its own (``workflows.grid.data.voices``)
    voice = [s + u[len(o) :] for s, u, o in zip(speaker, uid[rows], origin, strict=True)]
    images = table["spectrogram"].combine_chunks().flatten().flatten().to_numpy()
    return {
        "id": uid[rows].astype(str),
        "voice": np.asarray(voice, dtype=str),
        "label": table["label"].to_numpy().astype(np.int64)[rows],
        "image": images.reshape(-1, 1, size, size)[rows],
    }


def _voice_sums(batch: dict[str, np.ndarray], deltas: int) -> dict[str, np.ndarray]:
    sums = VoiceSums()
    x = add_deltas(batch["image"], deltas) if deltas else batch["image"]
    sums.add(x, batch["voice"])
    names = list(sums.totals)
    return {
        "voice": np.asarray(names, dtype=str),
        "sums": np.stack([sums.totals[n] for n in names]),
    }


def _channel_sums(
    batch: dict[str, np.ndarray], inputs: InputSettings, voices: VoiceScaling | None
) -> dict[str, np.ndarray]:
    x = inputs.apply_batch(batch["image"], batch["voice"], voices)
    return {"sums": channel_sums(x)[None]}


def _model_inputs(
    batch: dict[str, np.ndarray],
    inputs: InputSettings,
    voices: VoiceScaling | None,
    scale: Standardizer,
    keep_ids: bool = False,
) -> dict[str, np.ndarray]:
    x = inputs.apply_batch(batch["image"], batch["voice"], voices)
    scaled = {"x": scale.apply_in_place(x), "y": batch["label"]}
    return {**scaled, "id": batch["id"]} if keep_ids else scaled


def streamed_split(
    spec: TrialSpec,
    train: Any,
    test: Any,
    test_ids: np.ndarray,
    n_train: int,
    scale: Standardizer,
    world: int,
) -> StreamedSplit:
    """The loop's view of streamed rows (a Dataset, or a rank's shard of one): batches that
    make one global batch of ``batch_size`` over the ``world`` ranks, shuffled anew each
    epoch; the evaluated rows gathered in the trial's order."""
    import torch

    from attres.loop import StreamedSplit

    x_test, y_test = collect_test(test, test_ids)
    rank_batch = max(2, spec.train.batch_size // world)

    def batches(epoch: int) -> Iterator[tuple[Any, Any]]:
        for batch in train.iter_torch_batches(
            batch_size=rank_batch,
            dtypes={"x": torch.float32, "y": torch.int64},
            local_shuffle_buffer_size=SHUFFLE_ROWS,
            local_shuffle_seed=spec.seed * 100_003 + epoch,
        ):
            if len(batch["y"]) >= 2:  # BatchNorm needs 2 rows; every rank's shard is as long
                yield batch["x"], batch["y"]

    label_names = index_for(spec.features, spec.fingerprint).label_names
    return StreamedSplit(batches, n_train, scale, x_test, y_test, label_names)


def collect_test(shard: Any, test_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N_test, C, H, W) scaled images and (N_test,) labels of the evaluated rows, in the
    trial's order (the record lists them so), from the unsplit test dataset: each batch
    written into its rows' places as it arrives, never a second copy of the split."""
    where = {uid: i for i, uid in enumerate(test_ids)}
    x, y = None, np.zeros(len(test_ids), dtype=np.int64)
    seen = np.zeros(len(test_ids), dtype=bool)
    arrived, unknown = 0, []
    for part in shard.iter_batches(batch_format="numpy", batch_size=256):
        rows = np.asarray([where.get(uid, -1) for uid in part["id"]], dtype=np.int64)
        unknown += [uid for uid, row in zip(part["id"], rows, strict=True) if row < 0]
        mine = rows >= 0
        if x is None:
            x = np.empty((len(test_ids), *part["x"].shape[1:]), dtype=np.float32)
        x[rows[mine]], y[rows[mine]] = part["x"][mine], part["y"][mine]
        seen[rows[mine]] = True
        arrived += len(rows)
    if x is None or unknown or arrived != len(test_ids) or not seen.all():
        missing = test_ids[~seen].tolist()
        raise RuntimeError(
            f"the stream gave {arrived} test rows, the trial has {len(test_ids)} "
            f"({len(missing)} missing, e.g. {missing[:3]}; {len(unknown)} not the trial's): "
            "the FEATURES changed; re-run"
        )
    return x, y
