"""The training loop of one torch model on one split: the function every path runs.

An in-process Tune trial, each rank of a data-parallel Ray Train run and the tests all call
``train_model``. Its whole state is one dict (``save_state``), written by whatever
``Checkpoints`` the caller passes and read back by ``restore``, so a run killed at any
point resumes where its last checkpoint left it. Nothing here imports Ray.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from attres.cpu import prepare_for_training
from attres.metrics import classification_metrics
from attres.registry import count_flops, count_parameters, create_model
from attres.train import (
    Recipe,
    Standardizer,
    cosine_schedule,
    predict,
    predict_logits,
    train_epoch,
)


@dataclass(frozen=True)
class SplitData:
    """The arrays of one split before the loop's scaling: (N, C, H, W) float32 images (one
    channel, or more with delta channels) and (N,) int64 labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    label_names: tuple[str, ...]


class LoopSettings(Protocol):
    """What the loop reads of a run's settings (``workflows.config.TrainConfig`` has it)."""

    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    schedule: str
    warmup_epochs: float
    bf16: bool
    checkpoint_s: float

    def recipe(self) -> Recipe: ...


class Checkpoints(Protocol):
    """Where a run's state goes: ``load`` returns the last saved state or None."""

    def load(self) -> dict[str, Any] | None: ...

    def save(self, state: dict[str, Any]) -> None: ...


@dataclass
class TrainedModel:
    """What a finished run leaves: its record, the model and the input scaling."""

    record: dict[str, Any]
    model: nn.Module
    scale: Standardizer


def save_state(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    generator: torch.Generator,
    progress: dict[str, Any],
) -> dict[str, Any]:
    """The whole training state as one dict of tensors and plain values."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict() if scheduler is not None else {},
        "generator": generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "progress": progress,
    }


def restore(
    saved: dict[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None,
    generator: torch.Generator,
) -> dict[str, Any]:
    """Load a ``save_state`` dict (read with ``map_location="cpu"``); returns its progress.

    ``load_state_dict`` copies the tensors to the model's device; Adam's ``step`` counters
    stay on the CPU, where Adam keeps them. The RNG states must be CPU byte tensors, which
    is why checkpoints are always read onto the CPU first.
    """
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(saved["scheduler"])
    generator.set_state(saved["generator"])
    torch.set_rng_state(saved["torch_rng"])
    if saved["cuda_rng"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(saved["cuda_rng"])
    return saved["progress"]


def train_model(
    model_name: str,
    data: SplitData,
    cfg: LoopSettings,
    seed: int,
    device: torch.device,
    checkpoints: Checkpoints,
    report: Callable[[dict[str, Any]], None] = lambda metrics: None,
    shard: tuple[int, int] = (0, 1),
    wrap: Callable[[nn.Module], nn.Module] = lambda model: model,
    sync: Callable[[torch.Generator], None] = lambda generator: None,
) -> TrainedModel:
    """Adam for ``cfg.epochs`` from the last checkpoint; the record is the final epoch's.

    ``shard`` = (rank, world size) trains on the rank's part of every global batch;
    ``wrap`` turns the model into its data-parallel form (DistributedDataParallel), and
    ``sync`` makes every rank's generator rank 0's before each epoch (ranks whose last
    batch slices differ in size draw different numbers of masks and would drift apart).
    ``report`` gets each epoch's metrics. Test accuracy per epoch is kept for the curves
    only: nothing is chosen on it. The record's ``earlier_attempts_s`` is the time the
    attempts before this one spent in here up to their last checkpoint (the work this one
    did not redo); work they lost after it is not counted.
    """
    attempt_start = time.perf_counter()
    torch.manual_seed(seed)
    scale = Standardizer.fit(data.x_train)
    x_train = torch.from_numpy(scale(data.x_train)).to(device)
    y_train = torch.from_numpy(data.y_train).to(device)
    x_test = torch.from_numpy(scale(data.x_test)).to(device)
    num_classes = len(data.label_names)
    model = create_model(model_name, num_classes=num_classes, in_chans=data.x_train.shape[1])
    flops = count_flops(model, tuple(data.x_train.shape[1:]))
    model = prepare_for_training(model, device)
    memory_format = torch.channels_last  # inputs match the model's NHWC layout
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = None
    if cfg.schedule == "cosine":
        steps_per_epoch = math.ceil(len(data.y_train) / cfg.batch_size)
        scheduler = cosine_schedule(
            optimizer, cfg.epochs * steps_per_epoch, round(cfg.warmup_epochs * steps_per_epoch)
        )
    generator = torch.Generator().manual_seed(seed)
    progress: dict[str, Any] = {
        "epoch": 0,
        "curves": {"train_loss": [], "train_acc": [], "test_acc": []},
        "train_s": 0.0,
    }
    saved = checkpoints.load()
    if saved is not None:
        progress = restore(saved, model, optimizer, scheduler, generator)
    resumed_from_epoch = progress["epoch"]
    earlier_attempts_s = progress.get("elapsed_s", 0.0)  # older checkpoints lack it
    trained = wrap(model)

    last_save = time.monotonic()
    for epoch in range(progress["epoch"], cfg.epochs):
        sync(generator)
        start = time.perf_counter()
        loss, acc = train_epoch(
            trained, optimizer, x_train, y_train, cfg.batch_size, generator, cfg.bf16,
            memory_format, cfg.recipe(), scheduler, shard,
        )  # fmt: skip
        progress["train_s"] += time.perf_counter() - start
        y_pred = predict(model, x_test, bf16=cfg.bf16, memory_format=memory_format)
        test_acc = float((y_pred == data.y_test).mean())
        for key, value in zip(
            ("train_loss", "train_acc", "test_acc"), (loss, acc, test_acc), strict=True
        ):
            progress["curves"][key].append(value)
        progress["epoch"] = epoch + 1
        report({"epoch": epoch + 1, "train_loss": loss, "train_acc": acc})
        if time.monotonic() - last_save >= cfg.checkpoint_s and epoch + 1 < cfg.epochs:
            progress["elapsed_s"] = earlier_attempts_s + time.perf_counter() - attempt_start
            checkpoints.save(save_state(model, optimizer, scheduler, generator, progress))
            last_save = time.monotonic()

    logits = predict_logits(model, x_test, bf16=cfg.bf16, memory_format=memory_format)
    y_pred = logits.argmax(1).cpu().numpy()
    record = {
        **classification_metrics(data.y_test, y_pred, num_classes),
        # per test row, for ensembles over seeds of the same split (workflows/tables.py)
        "test_labels": data.y_test.tolist(),
        "test_probabilities": logits.softmax(1).cpu().numpy().round(5).tolist(),
        "curves": progress["curves"],
        # one scalar pair, or one pair per channel with delta channels (Standardizer)
        "scale_mean": scale.mean,
        "scale_std": scale.std,
        "params": count_parameters(model),
        "flops": flops,
        "train_s": progress["train_s"],
        "samples_per_s": progress["epoch"] * len(data.y_train) / max(progress["train_s"], 1e-9),
        "device": str(device),
        "label_names": list(data.label_names),
        "n_train": len(data.y_train),
        "n_test": len(data.y_test),
        "resumed_from_epoch": resumed_from_epoch,
        "earlier_attempts_s": earlier_attempts_s,
    }
    return TrainedModel(record, model, scale)
