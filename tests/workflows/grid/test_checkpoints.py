"""A checkpoint belongs to its run, and a damaged one does not stop the trial for good."""

from __future__ import annotations

import dataclasses

import pytest

from workflows.grid.checkpoints import FileCheckpoints
from workflows.grid.config import TrainConfig, TrialSpec


def spec(runs: str = "/runs/a", fingerprint: str = "f1", **train: object) -> TrialSpec:
    return TrialSpec(
        model="CNN", slug="cnn", seed=0, fold=0, split="paper-s0-f0", features="/features",
        fingerprint=fingerprint, runs=runs, storage="/scratch", train=TrainConfig(**train),
        train_rows=(0, 1), test_rows=(2,),
    )  # fmt: skip


def test_a_checkpoint_is_named_after_the_run_settings_and_features_it_belongs_to():
    mine = spec().checkpoint_name
    assert mine.startswith("cnn-paper-s0-f0-") and mine == spec().checkpoint_name
    assert spec(lr=1e-2).checkpoint_name != mine  # other settings: another run's state
    assert spec(runs="/runs/b").checkpoint_name != mine  # another RUNS on the same storage
    assert spec(fingerprint="f2").checkpoint_name != mine  # other features
    # resources do not change the figures: the same run, resumed on another machine
    assert spec(cpus_per_trial=2, checkpoint_s=10).checkpoint_name == mine


def test_two_runs_on_one_storage_keep_their_checkpoints_apart(tmp_path):
    a, b = spec(), spec(lr=1e-2)
    FileCheckpoints(str(tmp_path), a.checkpoint_name).save({"progress": {"epoch": 3}})
    assert FileCheckpoints(str(tmp_path), b.checkpoint_name).load() is None
    FileCheckpoints(str(tmp_path), b.checkpoint_name).clear()  # b finished: its clean-up
    assert FileCheckpoints(str(tmp_path), a.checkpoint_name).load() == {"progress": {"epoch": 3}}


def test_a_damaged_checkpoint_is_set_aside_and_the_trial_starts_over(tmp_path):
    files = FileCheckpoints(str(tmp_path), "trial")
    files.save({"progress": {"epoch": 1}})
    files.location.write(b"\x80half a torch file")
    with pytest.warns(UserWarning, match="could not be read.*starts over"):
        assert files.load() is None
    assert (tmp_path / "checkpoints" / "trial" / "state.pt.corrupt").exists()
    assert files.load() is None  # the next attempt finds no state and trains from the start


def test_resource_settings_are_not_results():
    settings = TrainConfig().result_settings()
    assert "cpus_per_trial" not in settings and settings["precision"] == "fp32"
    gpu = dataclasses.replace(TrainConfig(), gpus_per_trial=0.5).result_settings()
    assert gpu["precision"] == "auto"  # bf16 or fp16 by the GPU: each record says which


def test_settings_added_since_leave_the_checkpoint_names_of_earlier_runs_alone():
    """--stream and --extra-train at their defaults leave a trial's checkpoint name as the
    code before them named it (computed with that code), so a killed run resumes."""
    from workflows.grid.config import TrainConfig, TrialSpec

    loso = TrainConfig(protocol="loso")
    spec = TrialSpec(model="CNN", slug="cnn", seed=0, fold=0, split="loso-s0-f0", features="/f",
                     fingerprint="abc", runs="/r", storage="/r", train=loso,
                     train_rows=(0, 1), test_rows=(2,))  # fmt: skip
    assert spec.checkpoint_name == "cnn-loso-s0-f0-c5a3fa9b139b"
    streamed = dataclasses.replace(spec, train=TrainConfig(protocol="loso", stream=True))
    assert streamed.checkpoint_name != spec.checkpoint_name
