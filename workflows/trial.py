"""What runs inside one Tune trial: train (or fit) one model on one split, save its record.

A single-worker torch trial trains in the trial's own process (``train_in_process``): no
extra actors, no process group, features read once per process. ``--workers-per-trial N``
trains one model data-parallel over N Ray Train workers instead (``train_data_parallel``).
Both call ``attres.loop.train_model`` and checkpoint to the same file,
``STORAGE/checkpoints/<trial>/state.pt``, so a Tune retry and a re-run of the grid after a
kill both resume from it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import subprocess
import time
from typing import Any

import numpy as np

from attres.loop import SplitData, TrainedModel, train_model
from attres.registry import model_kind
from featurize.location import Location
from featurize.store import FeatureSet, content_fingerprint, load_features
from workflows.config import TrialSpec
from workflows.trained import save_trained

# Features read by this process, by location: a reused trial actor reads them once.
_FEATURES: dict[str, tuple[str, FeatureSet]] = {}


def features_for(spec: TrialSpec) -> FeatureSet:
    """The trial's features, from this process's cache when they are still the same."""
    cached = _FEATURES.get(spec.features)
    if cached is None or cached[0] != spec.fingerprint:
        fingerprint = content_fingerprint(spec.features)
        if fingerprint != spec.fingerprint:
            raise RuntimeError(
                f"{spec.features} changed after the grid was planned (fingerprint "
                f"{fingerprint}, planned on {spec.fingerprint}); re-run train-all"
            )
        _FEATURES[spec.features] = cached = (fingerprint, load_features(spec.features))
    return cached[1]


def split_data(spec: TrialSpec) -> SplitData:
    """The trial's rows as the network's inputs (``TrainConfig.inputs``): a speaker is scaled
    by the statistics of their rows in this split, training and evaluation parts alike. The
    speed-perturbed copies of a speaker count as a voice of their own (Kaldi gives them
    speaker ids of their own too): their formants moved, and a tested voice has no copies."""
    features = features_for(spec)
    train, test = np.asarray(spec.train_rows), np.asarray(spec.test_rows)
    rows = np.concatenate([train, test])
    inputs = spec.train.inputs()
    voices = features.speakers[rows]
    if inputs.normalize == "speaker":
        voices = np.asarray([
            speaker + uid[len(origin) :]  # "spk01", or "spk01~speed0.9" for a copy
            for speaker, uid, origin in zip(
                voices, features.utterance_ids[rows], features.origins[rows], strict=True
            )
        ])  # fmt: skip
    x = inputs.apply(features.spectrograms[rows], voices)
    y = features.labels[rows]
    n = len(train)
    return SplitData(x[:n], y[:n], x[n:], y[n:], features.label_names)


class FileCheckpoints:
    """One trial's training state as a single file (local folder or URI), written whole."""

    def __init__(self, storage: str, trial: str) -> None:
        self.folder = Location(storage).child("checkpoints", trial)
        self.location = self.folder.child("state.pt")
        self.record = self.folder.child("record.json")  # a data-parallel run's result

    def load(self) -> dict[str, Any] | None:
        import torch

        try:
            data = self.location.read()
        except FileNotFoundError:
            return None
        # CPU first: RNG states must stay CPU tensors; restore() moves the rest.
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)

    def save(self, state: dict[str, Any]) -> None:
        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        self.location.write(buffer.getvalue())

    def clear(self) -> None:
        fs, path = self.folder.filesystem()
        try:
            fs.delete_dir(path)
        except FileNotFoundError:
            pass


class ReadOnlyCheckpoints:
    """Checkpoints that load and never save: data-parallel ranks other than 0."""

    def __init__(self, checkpoints: FileCheckpoints) -> None:
        self.checkpoints = checkpoints

    def load(self) -> dict[str, Any] | None:
        return self.checkpoints.load()

    def save(self, state: dict[str, Any]) -> None:
        pass


def train_in_process(spec: TrialSpec) -> TrainedModel:
    """Train a torch model in this process, on its GPU if the trial holds one."""
    import torch

    from attres.cpu import configure_threads

    cfg = spec.train
    configure_threads(max(1, int(cfg.cpus_per_trial)))  # a reused actor resets it too
    use_gpu = cfg.gpus_per_trial > 0 and torch.cuda.is_available()
    device = torch.device("cuda" if use_gpu else "cpu")
    return train_model(
        spec.model,
        split_data(spec),
        cfg,
        spec.seed,
        device,
        FileCheckpoints(spec.storage, spec.name),
    )


def ddp_worker_loop(config: dict[str, Any]) -> None:
    """Ray Train ``train_loop_per_worker``: one rank of a data-parallel trial.

    Every rank loads the same checkpoint and draws the same batch order; rank 0 saves the
    checkpoints and writes the finished record next to them for the trial to pick up.
    """
    import ray.train
    import ray.train.torch
    import torch
    from torch.nn.parallel import DistributedDataParallel

    from attres.cpu import configure_threads

    spec = TrialSpec.from_dict(config["spec"])
    context = ray.train.get_context()
    rank, world = context.get_world_rank(), context.get_world_size()
    configure_threads(max(1, int(spec.train.cpus_per_trial)))
    device = ray.train.torch.get_device()
    checkpoints = FileCheckpoints(spec.storage, spec.name)
    saved_by_this_rank = checkpoints if rank == 0 else ReadOnlyCheckpoints(checkpoints)

    def wrap(model: torch.nn.Module) -> torch.nn.Module:
        ids = [device.index] if device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def sync(generator: torch.Generator) -> None:
        state = generator.get_state().to(device)
        torch.distributed.broadcast(state, src=0)
        generator.set_state(state.cpu())

    trained = train_model(
        spec.model, split_data(spec), spec.train, spec.seed, device, saved_by_this_rank,
        report=ray.train.report, shard=(rank, world), wrap=wrap, sync=sync,
    )  # fmt: skip
    if rank == 0:
        keep_model(spec, trained)
        checkpoints.record.write(json.dumps(trained.record))


def train_data_parallel(spec: TrialSpec) -> dict[str, Any]:
    """Train one model over ``workers_per_trial`` Ray Train workers (DDP); its record."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from attres.cpu import WORKER_ENV

    cfg = spec.train
    use_gpu = cfg.gpus_per_trial > 0
    resources = {"CPU": cfg.cpus_per_trial, **({"GPU": cfg.gpus_per_trial} if use_gpu else {})}
    trainer = TorchTrainer(
        ddp_worker_loop,
        train_loop_config={"spec": spec.to_dict()},
        # gloo's default timeout is 30 minutes: a rank that cannot connect fails sooner.
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo", timeout_s=300),
        scaling_config=ScalingConfig(
            num_workers=cfg.workers_per_trial, use_gpu=use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(
            name=spec.name,
            storage_path=Location(spec.storage).child("train"),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            worker_runtime_env={"env_vars": WORKER_ENV},
        ),
    )
    trainer.fit()
    return json.loads(FileCheckpoints(spec.storage, spec.name).record.read())


def fit_sklearn(spec: TrialSpec) -> dict[str, Any]:
    """Fit and test a scikit-learn model (the SVM) on the trial's split; returns its record."""
    from attres.metrics import classification_metrics
    from attres.registry import create_model

    data = split_data(spec)
    num_classes = len(data.label_names)
    model = create_model(spec.model, num_classes=num_classes, in_chans=data.x_train.shape[1])
    start = time.perf_counter()
    model.fit(data.x_train, data.y_train)
    train_s = time.perf_counter() - start
    save_trained(  # the SVM reads raw spectrograms: no scaling
        spec.runs, spec.name, spec.model, model, 0.0, 1.0,
        list(data.label_names), features_for(spec).config.to_dict(), spec.train.inputs(),
    )  # fmt: skip
    return {
        **classification_metrics(data.y_test, model.predict(data.x_test), num_classes),
        "curves": {},
        "params": None,
        "flops": None,
        "train_s": train_s,
        "samples_per_s": len(data.y_train) / max(train_s, 1e-9),
        "device": "cpu",
        "label_names": list(data.label_names),
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
    }


def keep_model(spec: TrialSpec, trained: TrainedModel) -> None:
    """Keep a finished trial's model for predict/export (RUNS/models)."""
    save_trained(
        spec.runs, spec.name, spec.model, trained.model, trained.scale.mean, trained.scale.std,
        list(trained.record["label_names"]), features_for(spec).config.to_dict(),
        spec.train.inputs(),
    )  # fmt: skip


def run_trial(config: dict[str, Any]) -> None:
    """Tune's function trainable: one trial, start to record, resuming where it stopped."""
    from ray import tune

    spec = TrialSpec.from_dict(config["spec"])
    cfg = spec.train
    start = time.perf_counter()
    if model_kind(spec.model) == "sklearn":
        record = fit_sklearn(spec)
    elif cfg.workers_per_trial > 1:
        record = train_data_parallel(spec)
    else:
        trained = train_in_process(spec)
        keep_model(spec, trained)
        record = trained.record
    record.update(
        trial=spec.name,
        model=spec.model,
        # validation runs get their own rows in the tables, never mixed with test figures
        protocol=f"{cfg.protocol}-validation" if cfg.validating else cfg.protocol,
        evaluated_on="validation" if cfg.validating else "test",
        seed=spec.seed,
        fold=spec.fold,
        n_folds=spec.n_folds,  # what a complete seed has, when --folds ran only some
        split=spec.split,
        epochs=cfg.epochs if model_kind(spec.model) == "torch" else None,
        # a resumed trial's earlier attempts too, up to their last checkpoint (attres/loop.py)
        wall_s=time.perf_counter() - start + record.get("earlier_attempts_s", 0.0),
        # which rows were tested, so seeds of one fold can be averaged (seed ensembles)
        test_ids_sha1=test_ids_sha1(spec),
        provenance=provenance(spec),
    )
    Location(spec.runs).child("trials", f"{spec.name}.json").write(json.dumps(record, indent=1))
    FileCheckpoints(spec.storage, spec.name).clear()  # the record supersedes it
    tune.report({"wa": record["wa"], "wall_s": record["wall_s"]})


def test_ids_sha1(spec: TrialSpec) -> str:
    ids = features_for(spec).utterance_ids[list(spec.test_rows)]
    return hashlib.sha1("\n".join(ids.tolist()).encode()).hexdigest()[:16]


def provenance(spec: TrialSpec) -> dict[str, Any]:
    import ray
    import torch

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            cwd=os.path.dirname(__file__),
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {
        "git_commit": commit or "unknown",
        "train_config": spec.train.to_dict(),
        "features": spec.features,
        "features_fingerprint": spec.fingerprint,
        "ray_version": ray.__version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
    }
