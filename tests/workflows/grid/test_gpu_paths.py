"""The GPU paths' logic, checked without a GPU: refusals, precision, random states, bundles."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attres.loop import TrainingState
from attres.models import create_model
from attres.train import precision_for
from workflows.grid.config import TrainConfig
from workflows.grid.fit import trial_device
from workflows.grid.train_all import _trial_bundle, trial_slots


def test_settings_a_gpu_cluster_would_crash_on_are_refused():
    with pytest.raises(ValueError, match="NCCL refuses two ranks on one device"):
        TrainConfig(workers_per_trial=2, gpus_per_trial=0.25)
    with pytest.raises(ValueError, match="would hold GPUs it never uses"):
        TrainConfig(gpus_per_trial=2)
    TrainConfig(workers_per_trial=2, gpus_per_trial=1)  # one whole GPU per rank
    TrainConfig(gpus_per_trial=0.25)  # single-worker trials may share a GPU


@pytest.mark.parametrize(
    ("asked", "device", "capability", "used"),
    [
        ("auto", "cpu", (0, 0), "fp32"),  # CPUs train fp32 whatever was asked
        ("bf16", "cpu", (0, 0), "fp32"),
        ("auto", "cuda", (8, 0), "bf16"),  # A100, H100: native bf16
        ("auto", "cuda", (7, 5), "fp16"),  # T4: fp16 with a gradient scaler
        ("auto", "cuda", (7, 0), "fp16"),  # V100
        ("fp32", "cuda", (9, 0), "fp32"),
        ("fp16", "cuda", (9, 0), "fp16"),
    ],
)
def test_the_precision_follows_what_the_device_runs_natively(asked, device, capability, used):
    assert precision_for(asked, device, capability) == used


def test_bf16_on_a_gpu_without_it_is_refused_and_old_configs_read_as_auto():
    with pytest.raises(ValueError, match="no bf16 arithmetic"):
        precision_for("bf16", "cuda", (7, 5))
    assert TrainConfig.from_dict({"bf16": True}).precision == "auto"
    assert TrainConfig.from_dict({"bf16": False}).precision == "fp32"


def test_a_cpu_run_saves_no_gpu_state_and_resumes_from_any(monkeypatch):
    def no_cuda(*args, **kwargs):
        raise AssertionError("a CPU run touched CUDA")

    monkeypatch.setattr(torch.cuda, "get_rng_state", no_cuda)
    monkeypatch.setattr(torch.cuda, "get_rng_state_all", no_cuda)
    model = create_model("CNN", 3)
    cpu = torch.device("cpu")
    state = TrainingState.start(model, TrainConfig(), 8, 0, cpu)
    saved = state.save()
    assert saved["cuda_rng"] == [] and saved["scaler"] == {}
    # a checkpoint from a GPU node that saw three GPUs resumes here, on the CPU
    saved["cuda_rng"] = [torch.zeros(16, dtype=torch.uint8)] * 3
    TrainingState.start(create_model("CNN", 3), TrainConfig(), 8, 0, cpu).restore(saved)


def test_a_gpu_asked_for_and_none_found_is_refused_naming_the_node():
    assert trial_device(0).type == "cpu"
    with pytest.raises(RuntimeError, match=r"--gpus-per-trial 0.5, but torch on node .* no GPU"):
        trial_device(0.5, cuda_available=False)


def test_scikit_learn_trials_hold_cpus_only():
    train = TrainConfig(gpus_per_trial=0.25).to_dict()
    svm = _trial_bundle({"spec": {"model": "SVM", "train": train}})
    cnn = _trial_bundle({"spec": {"model": "CNN", "train": train}})
    assert svm.required_resources == {"CPU": 1.0}
    assert cnn.required_resources == {"CPU": 1.0, "GPU": 0.25}
    # a grid of SVMs alone runs on a CPU-only cluster; networks there are refused
    assert trial_slots({"CPU": 4}, TrainConfig(gpus_per_trial=0.25), networks=False) == 4
    with pytest.raises(ValueError, match="asks for GPUs and the cluster has none"):
        trial_slots({"CPU": 4}, TrainConfig(gpus_per_trial=0.25))


def test_spec_augment_draws_where_its_generator_lives():
    from attres.train import spec_augment

    x = torch.ones(2, 1, 16, 16)
    a = spec_augment(x, 2, 0.25, torch.Generator().manual_seed(3))
    b = spec_augment(x, 2, 0.25, torch.Generator("cpu").manual_seed(3))
    assert torch.equal(a, b) and a.device == x.device and float(a.mean()) < 1.0
    assert np.isfinite(a.numpy()).all()
