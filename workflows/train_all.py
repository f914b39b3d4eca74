"""train-all: one Ray Tune experiment over models x seeds x folds; each trial a Ray Train run.

Layout of RUNS (a local folder, or a URI every node can reach)::

    RUNS/train_config.json          the resolved TrainConfig of the last invocation
    RUNS/splits/<split>.json        train/test utterance ids of every split used
    RUNS/trials/<trial>.json        one record per finished trial (metrics, curves, provenance)
    RUNS/results.parquet            all trial records, one row each (rebuilt at the end)
    RUNS/checkpoints/<trial>/       Ray Train checkpoints (a re-run resumes from them)
    RUNS/tune/                      Ray Tune's experiment state

A trial whose record exists is never run again; an unfinished one resumes from its last
checkpoint, so running the same command after a kill finishes only what is missing.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import ray
from ray import tune
from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
from ray.train.torch import TorchTrainer
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from attres.cpu import WORKER_ENV
from attres.registry import model_info, model_kind
from attres.splits import Protocol, make_split, protocol_folds, validation_split
from featurize.store import (
    load_features,
    open_store,
    summary_fingerprint,
    write_text_atomic,
)
from workflows.config import TrainConfig, TrialSpec
from workflows.trial import sklearn_fit, torch_worker_loop

RESULT_COLUMNS = (
    "trial", "model", "protocol", "seed", "fold", "split", "wa", "ua", "macro_f1",
    "wall_s", "train_s", "samples_per_s", "params", "flops", "epochs", "device",
)  # fmt: skip


class GridError(ValueError):
    """The grid cannot run as asked: RUNS holds other training settings, or the features
    cannot support the protocol."""


@dataclass(frozen=True)
class GridSummary:
    runs: str
    planned: int
    skipped: int  # finished in an earlier invocation
    finished: int
    failed: list[str]
    elapsed_s: float


def plan_grid(
    features: str,
    runs: str,
    models: list[str],
    seeds: list[int],
    cfg: TrainConfig,
    storage: str | None = None,
) -> list[TrialSpec]:
    """Every trial of the grid, with its split; also saves each split's ids under RUNS."""
    names = [model_info(m).name for m in models]  # raises on an unknown model, listing known
    data = load_features(features)
    protocol = Protocol(cfg.protocol)
    n_speakers = len(np.unique(data.speakers))
    if protocol is Protocol.loso and n_speakers < 2:
        raise GridError(f"protocol loso needs at least 2 speakers; {features} has {n_speakers}")
    fs, root = open_store(runs)
    fs.create_dir(f"{root}/splits", recursive=True)
    specs = []
    for seed in seeds:
        for fold in range(protocol_folds(protocol, data.speakers, cfg.k)):
            split = make_split(protocol, data.labels, data.speakers, seed, fold, cfg.k)
            train, test, split_name = split.train, split.test, split.name
            if cfg.validation:  # evaluate on a part of the training split; the test is unused
                fit, val = validation_split(data.labels[train], seed, cfg.validation)
                train, test = train[fit], train[val]
                split_name = f"{split.name}-val{round(100 * cfg.validation)}"
            train_ids = tuple(data.utterance_ids[train].tolist())
            test_ids = tuple(data.utterance_ids[test].tolist())
            record = {
                "split": split_name,
                "evaluated_on": "validation" if cfg.validation else "test",
                "held_out_speakers": sorted(set(data.speakers[test].tolist())),
                "train": list(train_ids),
                "test": list(test_ids),
            }
            write_text_atomic(fs, f"{root}/splits/{split_name}.json", json.dumps(record))
            for name in names:
                specs.append(
                    TrialSpec(
                        model=name,
                        slug=model_info(name).slug,
                        seed=seed,
                        fold=fold,
                        split=split_name,
                        features=features,
                        runs=runs,
                        storage=storage or runs,
                        train=cfg.for_model(model_info(name).recipe),
                        train_ids=train_ids,
                        test_ids=test_ids,
                    )
                )
    return specs


# Settings that change results; the others (resources, checkpointing) may differ per run.
RESOURCE_KEYS = {"cpus_per_trial", "gpus_per_trial", "checkpoint_every", "max_failures"}


def check_same_recipe(runs: str, cfg: TrainConfig) -> None:
    """Refuse to mix trials trained differently in one RUNS: trial names do not encode
    the settings, so a finished trial would otherwise count as done for another recipe."""
    fs, root = open_store(runs)
    path = f"{root}/train_config.json"
    if fs.get_file_info(path).type == pafs.FileType.NotFound:
        return
    with fs.open_input_stream(path) as f:
        saved = json.loads(f.read())
    new = cfg.to_dict()
    changed = sorted(
        k for k in (set(saved) | set(new)) - RESOURCE_KEYS if saved.get(k) != new.get(k)
    )
    if changed:
        diff = ", ".join(f"{k}: {saved.get(k)!r} -> {new.get(k)!r}" for k in changed)
        raise GridError(
            f"{runs} holds runs with other training settings ({diff}); "
            "use another --out, or the same settings to resume"
        )


def finished_trials(runs: str) -> set[str]:
    fs, root = open_store(runs)
    infos = fs.get_file_info(pafs.FileSelector(f"{root}/trials", allow_not_found=True))
    return {i.base_name[: -len(".json")] for i in infos if i.base_name.endswith(".json")}


def provenance(spec: TrialSpec) -> dict[str, Any]:
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
        "features_hash": summary_fingerprint(spec.features),
        "ray_version": ray.__version__,
        "torch_version": torch.__version__,
        "python": platform.python_version(),
        "host": platform.node(),
    }


def run_trial(config: dict[str, Any]) -> None:
    """Tune's trial driver: launch the trial on Ray Train (or as a CPU task), save its record."""
    spec = TrialSpec.from_dict(config["spec"])
    cfg = spec.train
    start = time.perf_counter()
    if model_kind(spec.model) == "sklearn":
        task = ray.remote(sklearn_fit).options(
            num_cpus=cfg.cpus_per_trial,
            # outside the trial's placement group, which holds no CPU
            scheduling_strategy=PlacementGroupSchedulingStrategy(placement_group=None),
        )
        record = ray.get(task.remote(spec.to_dict()))
    else:
        use_gpu = cfg.gpus_per_trial > 0
        resources = {"CPU": cfg.cpus_per_trial, **({"GPU": cfg.gpus_per_trial} if use_gpu else {})}
        trainer = TorchTrainer(
            torch_worker_loop,
            train_loop_config=spec.to_dict(),
            scaling_config=ScalingConfig(
                num_workers=1, use_gpu=use_gpu, resources_per_worker=resources
            ),
            run_config=RunConfig(
                name=spec.name,
                storage_path=storage_uri(spec.storage, "checkpoints"),
                failure_config=FailureConfig(max_failures=cfg.max_failures),
                checkpoint_config=CheckpointConfig(num_to_keep=1),
                worker_runtime_env={"env_vars": WORKER_ENV},
            ),
        )
        result = trainer.fit()
        record = result.metrics["record"]
    record.update(
        trial=spec.name,
        model=spec.model,
        # validation runs get their own rows in the tables, never mixed with test figures
        protocol=f"{cfg.protocol}-validation" if cfg.validation else cfg.protocol,
        evaluated_on="validation" if cfg.validation else "test",
        seed=spec.seed,
        fold=spec.fold,
        split=spec.split,
        epochs=cfg.epochs if model_kind(spec.model) == "torch" else None,
        wall_s=time.perf_counter() - start,
        provenance=provenance(spec),
    )
    fs, root = open_store(spec.runs)
    fs.create_dir(f"{root}/trials", recursive=True)
    write_text_atomic(fs, f"{root}/trials/{spec.name}.json", json.dumps(record, indent=1))
    tune.report({"wa": record["wa"], "wall_s": record["wall_s"]})


def storage_uri(storage: str, sub: str) -> str:
    """An absolute path or URI under ``storage`` that Ray Train and Tune accept."""
    base = storage.rstrip("/") if "://" in storage else open_store(storage)[1]
    return f"{base}/{sub}".rstrip("/")


def train_all(
    features: str,
    runs: str,
    models: list[str],
    seeds: list[int],
    cfg: TrainConfig,
    storage: str | None = None,
    address: str | None = None,
    max_concurrent: int | None = None,
    verbose: bool = False,
    progress: Callable[[str], None] = print,
) -> GridSummary:
    """Run every missing trial of the grid concurrently on Ray; returns what happened."""
    from featurize.raysession import ensure_ray, require_visible_on_all_nodes

    start = time.perf_counter()
    check_same_recipe(runs, cfg)
    specs = plan_grid(features, runs, models, seeds, cfg, storage)
    fs, root = open_store(runs)
    write_text_atomic(fs, f"{root}/train_config.json", json.dumps(cfg.to_dict(), indent=2))
    done = finished_trials(runs)
    todo = [s for s in specs if s.name not in done]
    if done & {s.name for s in specs}:
        progress(f"train-all: {len(specs) - len(todo)} of {len(specs)} trials already finished")
    failed: list[str] = []
    if todo:
        ensure_ray(address, verbose=verbose)
        for path in {features, runs, storage or runs}:
            require_visible_on_all_nodes(path)
        failed = _run_tune(todo, storage or runs, cfg, max_concurrent, verbose, progress)
    write_results_table(runs)
    return GridSummary(
        runs=runs,
        planned=len(specs),
        skipped=len(specs) - len(todo),
        finished=len(todo) - len(failed),
        failed=failed,
        elapsed_s=time.perf_counter() - start,
    )


def _run_tune(todo, storage, cfg, max_concurrent, verbose, progress) -> list[str]:
    resources = ray.cluster_resources()
    if max_concurrent is None:
        by_cpu = int(resources.get("CPU", 1) // cfg.cpus_per_trial)
        by_gpu = (
            int(resources.get("GPU", 0) // cfg.gpus_per_trial) if cfg.gpus_per_trial else by_cpu
        )
        max_concurrent = max(1, min(by_cpu, by_gpu))
    progress(
        f"train-all: {len(todo)} trials, up to {max_concurrent} at once "
        f"({resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs in the cluster)"
    )
    if not verbose:  # one line per trial (TrialLines) instead of Tune's boxes and tables
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
        logging.getLogger("ray.tune").setLevel(logging.WARNING)
    callback = TrialLines(len(todo), progress)
    tuner = tune.Tuner(
        # the driver only schedules: no CPU (Tune refuses an empty bundle, hence the memory)
        tune.with_resources(run_trial, {"CPU": 0, "memory": 64 * 2**20}),
        param_space={"spec": tune.grid_search([s.to_dict() for s in todo])},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=max_concurrent,
            trial_name_creator=_trial_name,
            trial_dirname_creator=_trial_name,
        ),
        run_config=tune.RunConfig(
            name="tune",
            storage_path=storage_uri(storage, ""),
            verbose=2 if verbose else 0,
            callbacks=[callback],
            failure_config=tune.FailureConfig(max_failures=0),
        ),
    )
    tuner.fit()
    return callback.failed


def _trial_name(trial) -> str:
    return TrialSpec.from_dict(trial.config["spec"]).name


class TrialLines(tune.Callback):
    """Prints one line per finished or failed trial instead of Ray's status tables."""

    def __init__(self, total: int, progress: Callable[[str], None]) -> None:
        self.total, self.progress = total, progress
        self.count, self.failed = 0, []

    def __getstate__(self) -> dict[str, Any]:
        # Tune pickles its callbacks into the experiment state. The output function stays
        # behind: `print` bound before a library replaced `builtins.print` (Ray's tqdm_ray
        # does) no longer pickles, and the state is never restored with it.
        return {**self.__dict__, "progress": None}

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.count += 1
        spec = TrialSpec.from_dict(trial.config["spec"])
        wa, wall = trial.last_result.get("wa"), trial.last_result.get("wall_s")
        self.progress(
            f"[{self.count}/{self.total}] {spec.model} seed {spec.seed} fold {spec.fold}: "
            f"WA {100 * wa:.1f} % in {wall:.1f} s"
        )

    def on_trial_error(self, iteration, trials, trial, **info):
        self.count += 1
        name = _trial_name(trial)
        self.failed.append(name)
        self.progress(f"[{self.count}/{self.total}] {name}: FAILED (details in {trial.local_path})")


def load_records(runs: str) -> list[dict[str, Any]]:
    fs, root = open_store(runs)
    records = []
    for name in sorted(finished_trials(runs)):
        with fs.open_input_stream(f"{root}/trials/{name}.json") as f:
            records.append(json.loads(f.read()))
    return records


def write_results_table(runs: str) -> None:
    """RUNS/results.parquet: one row per finished trial, from the per-trial records."""
    records = load_records(runs)
    if not records:
        return
    columns = {c: [r.get(c) for r in records] for c in RESULT_COLUMNS}
    columns["confusion"] = [json.dumps(r["confusion"]) for r in records]
    columns["git_commit"] = [r["provenance"]["git_commit"] for r in records]
    fs, root = open_store(runs)
    tmp = f"{root}/_tmp-results.parquet"
    pq.write_table(pa.table(columns), tmp, filesystem=fs)
    fs.move(tmp, f"{root}/results.parquet")
