"""Fitting one trial's model: a network or a scikit-learn model, behind one interface.

``fit_for(spec)`` picks how; every way takes (spec, data) and returns a ``Fitted``:

* ``train_in_process``: a network in the Tune trial's own process (no extra actors, no
  process group, features read once per process);
* ``train_data_parallel``: a network data-parallel over ``--workers-per-trial`` Ray Train
  workers (DDP); rank 0 keeps the model and hands back the scores;
* ``fit_sklearn``: the SVM, fitted in the trial's process.

Networks run ``attres.loop.train_model`` and checkpoint to
``STORAGE/checkpoints/<trial>-<run>`` (``TrialSpec.checkpoint_name``).
"""

from __future__ import annotations

import inspect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from attres.inputs import Standardizer
from attres.loop import Replica, SplitData, StreamedSplit, train_model
from attres.models import create_model, model_info, model_kind
from attres.saved import ModelMeta
from featurize.encoder_store import saved_settings
from featurize.location import Location
from featurize.store import functionals_settings
from workflows.grid.checkpoints import FileCheckpoints, ReadOnlyCheckpoints
from workflows.grid.config import TrialSpec, runs_on_ray_train, streams
from workflows.grid.data import Shared, TrialData, trial_data, trial_index
from workflows.grid.provenance import code_version
from workflows.grid.runtime import WORKER_ENV, tune_process
from workflows.runs import save_model


@dataclass
class Fitted:
    scores: dict[str, Any]  # the fit's part of the trial record (workflows.record)
    model: Any | None = None  # None: already kept by the data-parallel rank that trained it
    scale: Standardizer = Standardizer(0.0, 1.0)  # the input scaling the model trained behind


def fit_for(spec: TrialSpec) -> Callable[[TrialSpec, TrialData, Shared | None], Fitted]:
    """How the trial's model is fitted; each fit takes the spec, the trial's data and the
    grid's shared features (which a data-parallel trial hands its ranks)."""
    if model_kind(spec.model) == "sklearn":
        return fit_sklearn
    return train_data_parallel if runs_on_ray_train(spec) else train_in_process


def keep_model(spec: TrialSpec, data: TrialData, fitted: Fitted) -> None:
    """Keep a finished trial's model for predict, export, explain and report (RUNS/models)."""
    info = model_info(spec.model)
    meta = ModelMeta(
        model=spec.model,
        trial=spec.name,
        label_names=tuple(fitted.scores["label_names"]),
        mean=fitted.scale.mean,
        std=fitted.scale.std,
        feature_config=data.feature_config,
        inputs=spec.train.inputs(),
        code_version=code_version(),
        functionals=functionals_settings(spec.features, info.features),
        encoder=saved_settings(spec.features, info.encoder) if info.encoder else {},
    )
    save_model(spec.runs, meta, fitted.model, model_kind(spec.model))


def trial_device(gpus: float, cuda_available: bool | None = None) -> Any:
    """The device of a trial holding ``gpus`` GPUs (Ray shows it only its own): the CPU, or
    its GPU, whose memory a packed trial (a fraction) may fill only to its share. A GPU
    asked for and none found (a CPU build of torch, a driver mismatch) is refused, naming
    the node and what torch reports, instead of training on one CPU thread."""
    import platform

    import torch

    if gpus <= 0:
        return torch.device("cpu")
    if not (torch.cuda.is_available() if cuda_available is None else cuda_available):
        raise RuntimeError(
            f"--gpus-per-trial {gpus:g}, but torch on node {platform.node()} sees no GPU "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}, "
            f"{torch.cuda.device_count()} devices visible)"
        )
    device = torch.device("cuda", 0)
    if gpus < 1:  # fractional GPUs limit no memory: packed trials would share it unguarded
        torch.cuda.set_per_process_memory_fraction(gpus, device)
    return device


def train_in_process(spec: TrialSpec, data: TrialData, shared: Shared | None = None) -> Fitted:
    """Train a network in this process, on its GPU if the trial holds one."""
    device = trial_device(spec.train.gpus_per_trial)
    tune_process(spec.train.cpus_per_trial, device)
    from ray import tune

    checkpoints = FileCheckpoints(spec.storage, spec.checkpoint_name)
    split = data.split
    if streams(spec):  # the trial's rows as Ray Data reads them, in this process
        from workflows.grid.stream import stream_rows, streamed_split

        rows = stream_rows(spec)
        split = streamed_split(spec, rows.train, rows.test, rows.test_ids, rows.n_train,
                               rows.scale, world=1)  # fmt: skip
    trained = train_model(
        spec.model, split, spec.train, spec.seed, device, checkpoints, report=tune.report
    )  # each epoch's figures, for the grid's progress display
    return Fitted(trained.record, trained.model, trained.scale)


class DDPReplica(Replica):
    """One rank of a data-parallel run on Ray Train: DDP over the run's process group."""

    def __init__(self, device: Any) -> None:
        import ray.train

        context = ray.train.get_context()
        self.rank, self.world = context.get_world_rank(), context.get_world_size()
        self.device = device

    def wrap(self, model: Any) -> Any:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def sync(self, generator: Any) -> None:
        import torch

        state = generator.get_state().to(self.device)
        torch.distributed.broadcast(state, src=0)
        generator.set_state(state.cpu())


def ddp_worker_loop(config: dict[str, Any]) -> None:
    """Ray Train ``train_loop_per_worker``: one rank of a data-parallel trial.

    Every rank loads the same checkpoint and draws the same batch order; rank 0 saves the
    checkpoints, keeps the model and writes the scores next to the checkpoints for the
    trial to pick up.
    """
    import ray.train
    import ray.train.torch

    spec = TrialSpec.from_dict(config["spec"])
    device = ray.train.torch.get_device()
    tune_process(spec.train.cpus_per_trial, device)
    replica = DDPReplica(device)
    checkpoints = FileCheckpoints(spec.storage, spec.checkpoint_name)
    saved_by_this_rank = checkpoints if replica.rank == 0 else ReadOnlyCheckpoints(checkpoints)
    if streams(spec):  # this rank's shard of the training rows, as Ray Data reads them
        data = streamed_data(spec, config, replica.world)
        split: SplitData | StreamedSplit = data.split
    else:
        data = trial_data(spec, config.get("shared"))  # the object store's copy, by reference
        split = data.split
    trained = train_model(
        spec.model,
        split,
        spec.train,
        spec.seed,
        device,
        saved_by_this_rank,
        report=ray.train.report,
        replica=replica,
    )
    if replica.rank == 0:
        keep_model(spec, data, Fitted(trained.record, trained.model, trained.scale))
        checkpoints.record.write(json.dumps(trained.record))


def streamed_data(spec: TrialSpec, config: dict[str, Any], world: int) -> TrialData:
    """A streamed data-parallel trial's data on one rank: its shard of the training rows
    (``streamed_split``), the evaluated rows in memory."""
    import ray.train

    from workflows.grid.stream import streamed_split

    split = streamed_split(
        spec, ray.train.get_dataset_shard("train"), ray.train.get_dataset_shard("test"),
        np.asarray(config["test_ids"]), config["n_train"], Standardizer(*config["scale"]), world,
    )  # fmt: skip
    return trial_index(spec, split=split)


def train_data_parallel(spec: TrialSpec, data: TrialData, shared: Shared | None = None) -> Fitted:
    """Train one network on ``workers_per_trial`` Ray Train workers (DDP), its rows from the
    grid's shared copy or (``--stream``) streamed from the shards by Ray Data."""
    from ray.train import DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    cfg = spec.train
    use_gpu = cfg.gpus_per_trial > 0
    resources = {"CPU": cfg.cpus_per_trial, **({"GPU": cfg.gpus_per_trial} if use_gpu else {})}
    loop_config: dict[str, Any] = {"spec": spec.to_dict(), "shared": shared}
    streamed: dict[str, Any] = {}
    if streams(spec):
        from workflows.grid.stream import stream_rows

        rows = stream_rows(spec)
        scale = (rows.scale.mean, rows.scale.std)
        loop_config.update(test_ids=rows.test_ids.tolist(), n_train=rows.n_train, scale=scale)
        streamed = {
            "datasets": {"train": rows.train, "test": rows.test},
            "dataset_config": DataConfig(datasets_to_split=["train"]),  # every rank tests all
        }
    trainer = TorchTrainer(
        ddp_worker_loop,
        train_loop_config=loop_config,
        **streamed,
        # gloo's default timeout is 30 minutes: a rank that cannot connect fails sooner.
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo", timeout_s=300),
        scaling_config=ScalingConfig(
            num_workers=cfg.workers_per_trial, use_gpu=use_gpu, resources_per_worker=resources
        ),
        run_config=RunConfig(
            name=spec.checkpoint_name,
            storage_path=Location(spec.storage).child("train"),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            worker_runtime_env={"env_vars": WORKER_ENV},
        ),
    )
    trainer.fit()
    return Fitted(json.loads(FileCheckpoints(spec.storage, spec.checkpoint_name).record.read()))


def fit_sklearn(spec: TrialSpec, data: TrialData, shared: Shared | None = None) -> Fitted:
    """Fit and test a scikit-learn model (the SVM, the models over functionals) on the
    trial's split; a model that chooses its own settings sees the training rows' speakers."""
    from attres.metrics import classification_metrics

    # scikit-learn is imported here, in a scikit-learn trial: a network trial's process never
    # loads it, nor the heap and libraries it brings (docs/performance.md)
    from attres.models.functionals import class_probabilities

    split = data.split
    x_train, x_test = np.asarray(split.x_train), np.asarray(split.x_test)  # made whole
    num_classes = len(split.label_names)
    info = model_info(spec.model)
    several = {"parts": data.parts} if len(info.features) > 1 else {}
    # a model with a seed of its own (the encoder heads' networks) takes the trial's
    seeded = {"seed": spec.seed} if "seed" in inspect.signature(info.build).parameters else {}
    model = create_model(
        spec.model, num_classes=num_classes, in_chans=x_train.shape[1], **several, **seeded
    )
    start = time.perf_counter()
    # a model choosing its settings scores its held-out speaker's recordings, not copies
    scored = {"scored": data.train_recorded} if hasattr(model, "selection_") else {}
    if data.train_weights is not None:  # other corpora's clips on the training side
        scored["sample_weight"] = data.train_weights
    model.fit(x_train, split.y_train, groups=data.train_speakers, **scored)
    train_s = time.perf_counter() - start
    # for seed ensembles and fusion: probabilities where the model has them, else votes
    if hasattr(model, "adapted_probabilities"):  # adapts to each tested speaker, unlabeled
        probabilities = model.adapted_probabilities(x_test, data.test_groups)
    elif hasattr(model.pipeline, "predict_proba"):
        probabilities = class_probabilities(model.pipeline, x_test, num_classes)
    else:
        probabilities = np.eye(num_classes)[model.predict(x_test)]
    predicted = probabilities.argmax(axis=1)
    scores = {
        **classification_metrics(split.y_test, predicted, num_classes),
        "train_s": train_s,
        "samples_per_s": len(split.y_train) / max(train_s, 1e-9),
        "device": "cpu",
        "label_names": list(split.label_names),
        "n_train": len(split.y_train),
        "n_test": len(split.y_test),
        "test_labels": split.y_test.tolist(),
        "test_probabilities": probabilities.round(5).tolist(),
        **({"selection": model.selection_} if hasattr(model, "selection_") else {}),
    }
    return Fitted(scores, model, Standardizer(0.0, 1.0))  # scaled inside its pipeline
