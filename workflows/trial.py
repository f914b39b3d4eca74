"""What runs inside one trial: the Ray Train worker loop and the scikit-learn fit.

Both read the trial's split straight from the Parquet shards, train, and return the same
record (metrics, curves, cost); the driver in ``train_all`` writes it to RUNS.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from typing import Any

import numpy as np

from attres.metrics import classification_metrics
from featurize.store import FeatureSet, load_features
from workflows.config import TrialSpec


def split_arrays(features: FeatureSet, spec: TrialSpec) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test) of the trial's split, by utterance id."""
    position = {uid: i for i, uid in enumerate(features.utterance_ids)}
    missing = [u for u in spec.train_ids + spec.test_ids if u not in position]
    if missing:
        raise ValueError(f"{len(missing)} split utterances not in {spec.features}: {missing[:3]}")
    train = np.array([position[u] for u in spec.train_ids])
    test = np.array([position[u] for u in spec.test_ids])
    x, y = features.spectrograms, features.labels
    return x[train], y[train], x[test], y[test]


def torch_worker_loop(config: dict[str, Any]) -> None:
    """Ray Train ``train_loop_per_worker``: Adam for ``epochs``, checkpoint, resume, report."""
    import ray.train
    import torch

    from attres.cpu import configure_threads, prepare_for_training
    from attres.registry import count_flops, count_parameters, create_model
    from attres.train import Standardizer, cosine_schedule, predict, train_epoch

    spec = TrialSpec.from_dict(config)
    cfg = spec.train
    configure_threads(max(1, int(cfg.cpus_per_trial)))
    features = load_features(spec.features)
    x_tr, y_tr, x_te, y_te = split_arrays(features, spec)
    scale = Standardizer.fit(x_tr)
    device = ray.train.torch.get_device()
    to_dev = lambda a: torch.from_numpy(a).to(device)  # noqa: E731
    x_train, y_train, x_test = to_dev(scale(x_tr)), to_dev(y_tr), to_dev(scale(x_te))

    torch.manual_seed(spec.seed)
    num_classes = len(features.label_names)
    model = create_model(spec.model, num_classes=num_classes)
    flops = count_flops(model, tuple(x_tr.shape[1:]))
    model = prepare_for_training(model, device)
    memory_format = torch.channels_last  # inputs match the model's NHWC layout
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = None
    if cfg.schedule == "cosine":
        steps_per_epoch = math.ceil(len(y_tr) / cfg.batch_size)
        scheduler = cosine_schedule(
            optimizer, cfg.epochs * steps_per_epoch, round(cfg.warmup_epochs * steps_per_epoch)
        )
    generator = torch.Generator().manual_seed(spec.seed)
    curves: dict[str, list[float]] = {"train_loss": [], "train_acc": [], "test_acc": []}
    state: dict[str, Any] = {"epoch": 0, "curves": curves, "train_s": 0.0}

    resumed_from_epoch = 0
    checkpoint = ray.train.get_checkpoint()
    if checkpoint:  # resuming: a restarted worker or a re-run after a kill
        with checkpoint.as_directory() as folder:
            saved = torch.load(
                os.path.join(folder, "state.pt"), map_location=device, weights_only=True
            )
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(saved["scheduler"])
        generator.set_state(saved["generator"])
        state = saved["progress"]
    resumed_from_epoch = state["epoch"]

    def final_record(y_pred: np.ndarray | None = None) -> dict[str, Any]:
        if y_pred is None:
            y_pred = predict(model, x_test, bf16=cfg.bf16, memory_format=memory_format)
        return {
            **classification_metrics(y_te, y_pred, num_classes),
            "curves": state["curves"],
            "params": count_parameters(model),
            "flops": flops,
            "train_s": state["train_s"],
            "samples_per_s": state["epoch"] * len(y_tr) / max(state["train_s"], 1e-9),
            "device": str(device),
            "label_names": list(features.label_names),
            "n_train": len(y_tr),
            "n_test": len(y_te),
            "resumed_from_epoch": resumed_from_epoch,
        }

    def report(metrics: dict[str, Any], checkpoint: bool) -> None:
        """Report, with a checkpoint of the whole training state if asked. The record must
        travel with a checkpoint: Ray Train's Result.metrics are the latest checkpoint's."""
        if not checkpoint:
            ray.train.report(metrics)
            return
        with tempfile.TemporaryDirectory() as folder:
            saved = {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "generator": generator.get_state(),
                "scheduler": scheduler.state_dict() if scheduler is not None else {},
                "progress": state,
            }
            torch.save(saved, os.path.join(folder, "state.pt"))
            ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))

    if state["epoch"] >= cfg.epochs:  # killed after the last checkpoint, before the record
        report({"epoch": state["epoch"], "record": final_record()}, checkpoint=True)
    for epoch in range(state["epoch"], cfg.epochs):
        start = time.perf_counter()
        loss, acc = train_epoch(
            model, optimizer, x_train, y_train, cfg.batch_size, generator, cfg.bf16,
            memory_format, cfg.recipe(), scheduler,
        )  # fmt: skip
        state["train_s"] += time.perf_counter() - start
        # Test accuracy per epoch is recorded for the curves only; nothing is chosen on it.
        y_pred = predict(model, x_test, bf16=cfg.bf16, memory_format=memory_format)
        test_acc = float((y_pred == y_te).mean())
        for key, value in zip(
            ("train_loss", "train_acc", "test_acc"), (loss, acc, test_acc), strict=True
        ):
            state["curves"][key].append(value)
        state["epoch"] = epoch + 1
        metrics: dict[str, Any] = {"epoch": epoch + 1, "train_loss": loss}
        final = epoch + 1 == cfg.epochs
        if final:  # the test figures are those of the final epoch
            metrics["record"] = final_record(y_pred)
        report(metrics, checkpoint=final or (epoch + 1) % cfg.checkpoint_every == 0)


def sklearn_fit(spec_dict: dict[str, Any]) -> dict[str, Any]:
    """Fit and test a scikit-learn model (the SVM) on the trial's split; returns its record."""
    from attres.registry import create_model

    spec = TrialSpec.from_dict(spec_dict)
    features = load_features(spec.features)
    x_tr, y_tr, x_te, y_te = split_arrays(features, spec)
    num_classes = len(features.label_names)
    model = create_model(spec.model, num_classes=num_classes)
    start = time.perf_counter()
    model.fit(x_tr, y_tr)
    train_s = time.perf_counter() - start
    return {
        **classification_metrics(y_te, model.predict(x_te), num_classes),
        "curves": {},
        "params": None,
        "flops": None,
        "train_s": train_s,
        "samples_per_s": len(y_tr) / max(train_s, 1e-9),
        "device": "cpu",
        "label_names": list(features.label_names),
        "n_train": len(y_tr),
        "n_test": len(y_te),
    }
