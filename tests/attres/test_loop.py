"""The training loop without Ray: checkpoints restore exactly, on the CPU."""

from __future__ import annotations

import copy
import dataclasses
import subprocess
import sys

import numpy as np
import pytest
import torch

from attres.inputs import InputSettings, Part, Rows, voice_scaling
from attres.loop import SplitData, train_model
from workflows.grid.checkpoints import FileCheckpoints
from workflows.grid.config import TrainConfig


class Recorded:
    """Checkpoints kept in memory, every saved state in order; ``load`` returns ``start``."""

    def __init__(self, start=None) -> None:
        self.start, self.saved = start, []

    def load(self):
        return self.start

    def save(self, state):
        self.saved.append(copy.deepcopy(state))  # the live tensors go on changing


def tiny_split(seed: int = 0) -> SplitData:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(3), 8)
    x = rng.normal(size=(24, 1, 32, 32)).astype(np.float32) + y[:, None, None, None]
    return SplitData(x[::2], y[::2], x[1::2], y[1::2], ("a", "b", "c"))


def test_a_run_resumed_from_a_file_checkpoint_matches_one_never_stopped(tmp_path):
    cfg = TrainConfig(epochs=4, batch_size=4, mixup=0.2, spec_masks=1, checkpoint_s=0)
    data, cpu = tiny_split(), torch.device("cpu")
    whole = Recorded()
    reference = train_model("CNN", data, cfg, 0, cpu, whole).record
    assert [s["progress"]["epoch"] for s in whole.saved] == [1, 2, 3]  # not after the last
    elapsed = [s["progress"]["elapsed_s"] for s in whole.saved]
    assert 0 < elapsed[0] < elapsed[1] < elapsed[2] and reference["earlier_attempts_s"] == 0
    assert isinstance(reference["scale_mean"], float)  # one channel: one scalar pair

    files = FileCheckpoints(str(tmp_path / "storage"), "trial")
    assert files.load() is None
    files.save(whole.saved[1])  # as if killed during epoch 3
    state = files.load()
    assert state["generator"].device.type == "cpu" and state["torch_rng"].dtype == torch.uint8
    resumed = train_model("CNN", data, cfg, 0, cpu, Recorded(state)).record
    assert resumed["resumed_from_epoch"] == 2
    assert resumed["earlier_attempts_s"] == elapsed[1]  # the killed attempt's, to epoch 2
    for key in ("curves", "confusion", "wa"):
        assert resumed[key] == reference[key], key
    files.clear()
    assert files.load() is None


def test_no_checkpoint_is_written_before_checkpoint_s_has_passed():
    cfg = dataclasses.replace(TrainConfig(epochs=3, batch_size=4), checkpoint_s=3600)
    recorded = Recorded()
    train_model("CNN", tiny_split(), cfg, 0, torch.device("cpu"), recorded)
    assert recorded.saved == []


@pytest.mark.parametrize("settings", [InputSettings(), InputSettings("speaker", deltas=2)])
def test_rows_made_batch_by_batch_train_the_run_of_the_whole_arrays(settings):
    """A grid trial's split is ``Rows`` over the store's read-only copy, gathered and scaled
    a batch at a time: the statistics, every batch and so the record are bit for bit those
    of the split made whole first (``InputSettings.apply``, then ``Standardizer.fit``)."""
    cfg = TrainConfig(epochs=2, batch_size=4, checkpoint_s=1e9)
    cpu = torch.device("cpu")
    data = tiny_split()
    store = np.concatenate([data.x_train, data.x_test])
    store.flags.writeable = False  # as Ray's object store hands it out
    voices = np.tile(np.array(["p", "q", "r"]), 8)
    train, test = np.arange(12), np.arange(12, 24)
    scaling = voice_scaling(store, np.arange(24), voices, settings)

    def side(rows: np.ndarray) -> Rows:
        return Rows((Part(store, rows, voices[rows], scaling),), settings)

    made = settings.apply(store, voices)  # what a trial held before
    whole = dataclasses.replace(data, x_train=made[train], x_test=made[test])
    batched = dataclasses.replace(data, x_train=side(train), x_test=side(test))
    on_arrays = train_model("CNN", whole, cfg, 0, cpu, Recorded()).record
    on_rows = train_model("CNN", batched, cfg, 0, cpu, Recorded()).record
    for key in ("scale_mean", "scale_std", "wa", "confusion", "curves", "test_probabilities"):
        assert on_rows[key] == on_arrays[key], key


def test_a_network_trials_process_never_loads_scikit_learn():
    """A network trial's process imports its trial, fit and training loop and trains: none of
    it needs scikit-learn, scipy or pandas, nor the heap they bring (docs/performance.md)."""
    script = """
import sys
import numpy as np, torch
import workflows.grid.trial, workflows.grid.fit
from attres.loop import SplitData, train_model
from workflows.grid.config import TrainConfig

class Nothing:
    def load(self): return None
    def save(self, state): pass

x = np.random.default_rng(0).normal(size=(12, 1, 32, 32)).astype(np.float32)
y = np.arange(12) % 3
data = SplitData(x[:8], y[:8], x[8:], y[8:], ("a", "b", "c"))
train_model("CNN", data, TrainConfig(epochs=1, batch_size=4), 0, torch.device("cpu"), Nothing())
print(sorted(name for name in ("sklearn", "scipy", "pandas") if name in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
