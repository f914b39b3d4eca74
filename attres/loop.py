"""The training loop of one torch model on one split: the function every path runs.

An in-process Tune trial, each rank of a data-parallel Ray Train run and the tests all call
``train_model``. Its whole state is one ``TrainingState``, saved as one dict by whatever
``Checkpoints`` the caller passes and restored from it, so a run killed at any point
resumes where its last checkpoint left it. Nothing here imports Ray.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from attres.flops import count_flops, count_parameters
from attres.inputs import Rows, Standardizer
from attres.metrics import classification_metrics
from attres.models import create_model
from attres.train import (
    Recipe,
    cosine_schedule,
    device_generator,
    device_precision,
    predict,
    predict_logits,
    prepare_for_training,
    train_batches,
    train_epoch,
)


@dataclass(frozen=True)
class SplitData:
    """One split before the loop's scaling: (N, C, H, W) float32 images (one channel, or
    more with delta channels), as arrays or as ``Rows`` made batch by batch (a grid trial's),
    and (N,) int64 labels."""

    x_train: np.ndarray | Rows
    y_train: np.ndarray
    x_test: np.ndarray | Rows
    y_test: np.ndarray
    label_names: tuple[str, ...]


class BatchedInputs:
    """One side of a split as the loop reads it, each batch made from ``Rows`` and
    standardized when asked for: indexed like the (N, C, H, W) tensor it stands for, by a
    tensor of rows or a slice."""

    def __init__(self, rows: Rows, scale: Standardizer, device: torch.device) -> None:
        self.rows, self.scale, self.device = rows, scale, device
        self.shape = torch.Size(rows.shape)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: slice | torch.Tensor) -> torch.Tensor:
        idx = np.arange(*key.indices(len(self))) if isinstance(key, slice) else key.cpu().numpy()
        batch = self.scale.apply_in_place(self.rows.take(idx))  # a fresh array: scaled in place
        return torch.from_numpy(batch).to(self.device)


@dataclass(frozen=True)
class StreamedSplit:
    """A split whose training rows arrive in batches, already scaled (a Ray Data shard,
    ``workflows.grid.stream``): the loop never holds them. Test rows are in memory."""

    batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]]  # epoch -> batches
    n_train: int  # rows of one epoch, over all ranks
    scale: Standardizer  # the statistics of the training rows the batches were scaled by
    x_test: np.ndarray  # (N_test, C, H, W) scaled
    y_test: np.ndarray
    label_names: tuple[str, ...]


class LoopSettings(Protocol):
    """What the loop reads of a run's settings (``workflows.grid.config.TrainConfig`` has it,
    frozen: read-only members)."""

    @property
    def epochs(self) -> int: ...

    @property
    def batch_size(self) -> int: ...

    @property
    def lr(self) -> float: ...

    @property
    def weight_decay(self) -> float: ...

    @property
    def schedule(self) -> str: ...

    @property
    def warmup_epochs(self) -> float: ...

    @property
    def precision(self) -> str: ...

    @property
    def checkpoint_s(self) -> float: ...

    def recipe(self) -> Recipe: ...


class Checkpoints(Protocol):
    """Where a run's state goes: ``load`` returns the last saved state or None."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...


class Replica:
    """This process's part in training one model: alone (the default), or one rank of a
    data-parallel run (``workflows.grid``'s DDP replica overrides the three members)."""

    rank = 0
    world = 1

    def wrap(self, model: nn.Module) -> nn.Module:
        """The model as it trains (data-parallel: wrapped so gradients are averaged)."""
        return model

    def sync(self, generator: torch.Generator) -> None:
        """Before each epoch: make ``generator`` rank 0's, so every rank draws the same
        order (ranks whose last batch slices differ in size draw different numbers of masks
        and would drift apart)."""


ALONE = Replica()
CURVES = ("train_loss", "train_acc", "test_acc")  # per epoch; test accuracy is never used


@dataclass
class TrainedModel:
    """What a finished run leaves: its part of the trial record (scores, curves, cost; the
    grid adds what the trial was, ``workflows.record``), the model and the input scaling."""

    record: dict[str, Any]
    model: nn.Module
    scale: Standardizer


@dataclass
class TrainingState:
    """Everything a resumed run needs to continue exactly: one checkpoint."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    generator: torch.Generator  # batch order, masks and mixup draws
    device: torch.device  # whose CUDA random state is the run's (a CPU run has none)
    scaler: torch.amp.GradScaler | None = None  # fp16 training only
    progress: dict[str, Any] = field(
        default_factory=lambda: {
            "epoch": 0,
            "curves": {key: [] for key in CURVES},
            "train_s": 0.0,
            "elapsed_s": 0.0,  # this run's time up to the checkpoint, earlier attempts included
        }
    )

    @classmethod
    def start(
        cls,
        model: nn.Module,
        cfg: LoopSettings,
        n_train: int,
        seed: int,
        device: torch.device,
        precision: str = "fp32",
    ) -> TrainingState:
        """Adam, the learning-rate schedule, the batch generator (and for fp16 the gradient
        scaler) of a fresh run."""
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        scheduler = None
        if cfg.schedule == "cosine":
            steps = math.ceil(n_train / cfg.batch_size)
            scheduler = cosine_schedule(
                optimizer, cfg.epochs * steps, round(cfg.warmup_epochs * steps)
            )
        generator = torch.Generator().manual_seed(seed)
        scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        return cls(model, optimizer, scheduler, generator, device, scaler)

    def save(self) -> dict[str, Any]:
        """The whole training state as one dict of tensors and plain values."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else {},
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            # the run's own GPU only: Ray shows every worker of a node all its GPUs, and a
            # resume may see fewer; a CPU run leaves CUDA alone
            "cuda_rng": [torch.cuda.get_rng_state(self.device)] if self.on_cuda else [],
            "scaler": self.scaler.state_dict() if self.scaler is not None else {},
            "progress": self.progress,
        }

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"

    def restore(self, saved: dict[str, Any]) -> None:
        """Load a ``save`` dict (read with ``map_location="cpu"``).

        ``load_state_dict`` copies the tensors to the model's device; Adam's ``step`` counters
        stay on the CPU, where Adam keeps them. The RNG states must be CPU byte tensors, which
        is why checkpoints are always read onto the CPU first.
        """
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(saved["scheduler"])
        self.generator.set_state(saved["generator"])
        torch.set_rng_state(saved["torch_rng"])
        states = saved["cuda_rng"]  # the run's GPU's (older checkpoints: every visible GPU's)
        if states and self.on_cuda:
            index = self.device.index or 0
            torch.cuda.set_rng_state(states[index if index < len(states) else 0], self.device)
        if self.scaler is not None and saved.get("scaler"):  # none in older checkpoints
            self.scaler.load_state_dict(saved["scaler"])
        self.progress = {"elapsed_s": 0.0, **saved["progress"]}  # older states lack it


def train_model(
    model_name: str,
    data: SplitData | StreamedSplit,
    cfg: LoopSettings,
    seed: int,
    device: torch.device,
    checkpoints: Checkpoints,
    report: Callable[[dict[str, Any]], None] = lambda metrics: None,
    replica: Replica = ALONE,
) -> TrainedModel:
    """Adam for ``cfg.epochs`` from the last checkpoint; the record is the final epoch's.

    ``replica`` trains this process's part (all of it, or one rank's slice of every global
    batch); ``report`` gets each epoch's metrics. Test accuracy per epoch is kept for the
    curves only: nothing is chosen on it. The test rows are evaluated in batches of the
    training batch's size, so evaluating adds nothing to the run's peak memory.
    """
    attempt_start = time.perf_counter()
    torch.manual_seed(seed)
    if isinstance(data, StreamedSplit):
        scale, n_train = data.scale, data.n_train
        x_test = torch.from_numpy(data.x_test).to(device)
    elif isinstance(data.x_train, Rows):  # a grid trial's: no scaled copy of the split
        rows = data.x_train
        scale, n_train = Standardizer.fit_rows(rows.between, len(rows), rows.shape[1]), len(rows)
        x_train = BatchedInputs(rows, scale, device)
        x_test = BatchedInputs(data.x_test, scale, device)
        y_train = torch.from_numpy(data.y_train).to(device)
    else:
        scale, n_train = Standardizer.fit(data.x_train), len(data.y_train)
        x_train = torch.from_numpy(scale(data.x_train)).to(device)
        y_train = torch.from_numpy(data.y_train).to(device)
        x_test = torch.from_numpy(scale(data.x_test)).to(device)
    shape = tuple(x_test.shape[1:])  # (C, H, W)
    model = create_model(model_name, len(data.label_names), in_chans=shape[0])
    flops = count_flops(model, shape)
    model = prepare_for_training(model, device)  # inputs are NHWC too (memory_format)
    precision = device_precision(cfg.precision, device)
    state = TrainingState.start(model, cfg, n_train, seed, device, precision)
    saved = checkpoints.load()
    if saved is not None:
        state.restore(saved)
    progress = state.progress
    resumed_from_epoch, earlier_attempts_s = progress["epoch"], progress["elapsed_s"]
    trained, nhwc = replica.wrap(model), torch.channels_last

    def epoch_of_training(epoch: int) -> tuple[float, float]:
        if isinstance(data, StreamedSplit):  # the rank's own shard of the rows
            draws = device_generator(state.generator, device)
            return train_batches(
                trained, state.optimizer, data.batches(epoch), state.generator, draws,
                precision, nhwc, cfg.recipe(), state.scheduler, state.scaler,
            )  # fmt: skip
        return train_epoch(
            trained,
            state.optimizer,
            x_train,
            y_train,
            cfg.batch_size,
            state.generator,
            precision=precision,
            memory_format=nhwc,
            recipe=cfg.recipe(),
            scheduler=state.scheduler,
            shard=(replica.rank, replica.world),
            scaler=state.scaler,
        )

    last_save = time.monotonic()
    for epoch in range(progress["epoch"], cfg.epochs):
        replica.sync(state.generator)
        start = time.perf_counter()
        loss, acc = epoch_of_training(epoch)
        epoch_s = time.perf_counter() - start
        progress["train_s"] += epoch_s
        y_pred = predict(model, x_test, cfg.batch_size, memory_format=nhwc)
        test_acc = float((y_pred == data.y_test).mean())
        for key, value in zip(CURVES, (loss, acc, test_acc), strict=True):
            progress["curves"][key].append(value)
        progress["epoch"] = epoch + 1
        report({"epoch": epoch + 1, "train_loss": loss, "train_acc": acc, "epoch_s": epoch_s})
        if time.monotonic() - last_save >= cfg.checkpoint_s and epoch + 1 < cfg.epochs:
            progress["elapsed_s"] = earlier_attempts_s + time.perf_counter() - attempt_start
            checkpoints.save(state.save())
            last_save = time.monotonic()

    record = {
        **final_scores(data, n_train, predict_logits(model, x_test, cfg.batch_size, nhwc)),
        "curves": progress["curves"],
        "scale_mean": scale.mean,  # one value, or one per channel with delta channels
        "scale_std": scale.std,
        "params": count_parameters(model),
        "flops": flops,
        "train_s": progress["train_s"],
        "samples_per_s": progress["epoch"] * n_train / max(progress["train_s"], 1e-9),
        "device": str(device),
        "precision": precision,  # the arithmetic the training steps ran in
        "resumed_from_epoch": resumed_from_epoch,
        # the attempts before this one, up to their last checkpoint (the work this one did not
        # redo); work they lost after it is not counted
        "earlier_attempts_s": earlier_attempts_s,
    }
    return TrainedModel(record, model, scale)


def final_scores(
    data: SplitData | StreamedSplit, n_train: int, logits: torch.Tensor
) -> dict[str, Any]:
    """WA, UA, macro-F1 and confusion of the final model's (N, classes) test logits, and per
    test row the label and class probabilities (for ensembles over seeds of one split)."""
    y_pred = logits.argmax(1).cpu().numpy()
    return {
        **classification_metrics(data.y_test, y_pred, len(data.label_names)),
        "test_labels": data.y_test.tolist(),
        "test_probabilities": logits.softmax(1).cpu().numpy().round(5).tolist(),
        "label_names": list(data.label_names),
        "n_train": n_train,
        "n_test": len(data.y_test),
    }
