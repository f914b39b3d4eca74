"""--stream: a network's rows streamed from the Parquet shards by Ray Data into Ray Train."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest

from featurize.store import content_fingerprint, load_features
from workflows.grid.config import TrainConfig
from workflows.grid.data import trial_data
from workflows.grid.plan import GridError, plan_grid
from workflows.grid.train_all import train_all
from workflows.runs import load_records

QUIET = {"progress": lambda _: None}


def _spec(features: str, runs: str, cfg: TrainConfig, protocol: str = "loso"):
    data = load_features(features, spectrograms=False)
    cfg = dataclasses.replace(cfg, protocol=protocol)
    fingerprint = content_fingerprint(features)
    return plan_grid(data, features, fingerprint, runs, ["CNN"], [0], cfg)[0]


@pytest.mark.parametrize("normalize,deltas", [("global", 0), ("speaker", 1)])
def test_streamed_rows_are_the_in_memory_rows_scaled_the_same(
    ray_local, synth_features, tmp_path, normalize, deltas
):
    """The statistics added up block by block are the in-memory split's, and each streamed
    row is the in-memory row it stands for (test rows in the trial's order)."""
    from attres.inputs import Standardizer
    from workflows.grid.stream import collect_test, stream_rows

    cfg = TrainConfig(normalize=normalize, deltas=deltas, stream=True)
    spec = _spec(synth_features, str(tmp_path / "runs"), cfg)
    split = trial_data(spec).split
    x_memory, x_memory_test = np.asarray(split.x_train), np.asarray(split.x_test)
    scale = Standardizer.fit(x_memory)
    rows = stream_rows(spec)
    assert rows.n_train == len(split.y_train)
    np.testing.assert_allclose(rows.scale.mean, scale.mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(rows.scale.std, scale.std, rtol=1e-4)

    x_test, y_test = collect_test(rows.test, rows.test_ids)
    np.testing.assert_array_equal(y_test, split.y_test)
    np.testing.assert_allclose(x_test, scale(x_memory_test), atol=2e-3)

    streamed = list(rows.train.iter_batches(batch_format="numpy", batch_size=None))
    x_train = np.concatenate([b["x"] for b in streamed])
    y_train = np.concatenate([b["y"] for b in streamed])
    assert x_train.shape == x_memory.shape
    # the same rows, in another order: matched by their sums, which differ row to row
    mine = np.argsort(x_train.sum(axis=(1, 2, 3)))
    theirs = np.argsort(scale(x_memory).sum(axis=(1, 2, 3)))
    np.testing.assert_allclose(x_train[mine], scale(x_memory)[theirs], atol=2e-3)
    np.testing.assert_array_equal(y_train[mine], split.y_train[theirs])


@pytest.mark.parametrize("workers", [1, 2])
def test_a_streamed_trial_trains_and_records_the_trials_rows(
    ray_local, synth_features, tmp_path, workers
):
    """The trial's own process (one worker) or two gloo ranks, each on its shard, iterate
    the training rows; the record names the same evaluated rows as the in-memory trial, and
    a re-run finds it finished. The trial holds every CPU of the cluster: the reads need
    none of their own."""
    runs = str(tmp_path / "runs")
    cfg = TrainConfig(epochs=2, batch_size=8, stream=True, workers_per_trial=workers,
                      cpus_per_trial=2 / workers, protocol="loso", normalize="speaker")  # fmt: skip
    summary = train_all(synth_features, runs, ["CNN"], [0], cfg, folds=[0], **QUIET)
    assert summary.failed == [] and summary.finished == 1
    record = load_records(runs)[0]
    spec = _spec(synth_features, runs, cfg)
    memory = trial_data(spec)
    assert record.n_train == len(memory.split.y_train)
    assert record.n_test == len(memory.split.y_test) == np.array(record.confusion).sum()
    assert record.test_labels == memory.split.y_test.tolist()
    assert record.test_ids_sha1 == memory.test_ids_sha1
    assert len(record.curves["train_loss"]) == 2
    assert (tmp_path / "runs" / "models").is_dir()  # rank 0 kept the model for predict
    again = train_all(synth_features, runs, ["CNN"], [0], cfg, folds=[0], **QUIET)
    assert again.skipped == 1 and again.finished == 0


def test_stream_refuses_a_cross_corpus_grid(ray_local, synth_features, tmp_path):
    cfg = TrainConfig(stream=True, epochs=1)
    with pytest.raises(GridError, match="--stream"):
        train_all(synth_features, str(tmp_path / "runs"), ["CNN"], [0], cfg,
                  test_features=synth_features, **QUIET)  # fmt: skip


def test_the_stream_tasks_module_imports_no_torch() -> None:
    """Ray Data's tasks run this module's functions in Ray workers that are then kept idle
    for reuse: with torch imported, each kept its 0.3 GiB and the tasks' freed heap (two
    idle workers held 1.9 GiB of a data-parallel trial's node at its peak)."""
    script = "import sys, workflows.grid.stream; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "False"


class _Batches:
    """A stand-in for a Ray dataset of scaled rows: ``iter_batches`` yields ``parts``."""

    def __init__(self, *parts: dict[str, np.ndarray]) -> None:
        self.parts = parts

    def iter_batches(self, **_) -> list[dict[str, np.ndarray]]:
        return list(self.parts)


def _part(ids: list[str]) -> dict[str, np.ndarray]:
    """Rows whose label is their id's number and whose image is filled with it."""
    labels = np.asarray([int(uid[1:]) for uid in ids])
    x = np.repeat(labels.astype(np.float32)[:, None, None, None], 4, axis=-1).reshape(-1, 1, 2, 2)
    return {"id": np.asarray(ids), "x": x, "y": labels}


def test_collect_test_puts_rows_in_the_trials_order_and_names_a_changed_stream() -> None:
    from workflows.grid.stream import collect_test

    test_ids = np.asarray(["u3", "u1", "u2", "u0"])
    x, y = collect_test(_Batches(_part(["u0", "u1"]), _part(["u2", "u3"])), test_ids)
    assert y.tolist() == [3, 1, 2, 0] and x[:, 0, 0, 0].tolist() == [3.0, 1.0, 2.0, 0.0]
    with pytest.raises(RuntimeError, match="3 test rows, the trial has 4 .1 missing"):
        collect_test(_Batches(_part(["u0", "u1", "u2"])), test_ids)
    with pytest.raises(RuntimeError, match="1 not the trial's"):
        collect_test(_Batches(_part(["u0", "u1", "u2", "u3", "u9"])), test_ids)
