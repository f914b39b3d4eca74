"""train-all: one Ray Tune experiment over models x seeds x folds.

Each single-worker trial trains inside its Tune trial's process (``workflows.grid.trial``), with
actors reused from one trial to the next; ``--workers-per-trial N`` trains each model
data-parallel on Ray Train instead. RUNS is laid out as ``workflows.runs`` describes. A
trial whose record exists is never run again; an unfinished one resumes from its last
checkpoint, so running the same command after a kill finishes only what is missing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import ray
from ray import tune

from attres.models import create_model, model_info, model_kind
from featurize.encoder_store import saved_settings
from featurize.location import Location
from featurize.store import FeatureSet, content_fingerprint, functionals_width, load_features
from workflows.grid.config import TrainConfig, TrialSpec, is_network, streams
from workflows.grid.data import SharedFeatures, share_features
from workflows.grid.plan import (
    GridError,
    cross_classes,
    plan_cross_corpus,
    plan_grid,
    require_functionals,
)
from workflows.grid.progress import GridProgress, trial_name
from workflows.grid.tracking import Tracking, tracking_callbacks
from workflows.grid.trial import run_trial
from workflows.runs import (
    FEATURES_USED,
    TRAIN_CONFIG,
    finished_trials,
    read_json,
    write_results_table,
)


@dataclass(frozen=True)
class GridSummary:
    runs: str
    planned: int
    skipped: int  # finished in an earlier invocation
    finished: int
    failed: list[str]
    unfinished: list[str]  # neither finished nor failed: the run was stopped (Ctrl-C)
    elapsed_s: float


def check_runs_belong(runs: str, cfg: TrainConfig, features_used: dict[str, Any]) -> None:
    """Refuse to mix trials trained differently, or on other features, in one RUNS: trial
    names encode neither, so finished trials would count as done. The first run into a RUNS
    claims it: its settings and features are written where none are, atomically, so of two
    runs started at once into an empty RUNS with other settings one is refused."""
    settings = Location(runs).child(TRAIN_CONFIG)
    if not settings.create(json.dumps(cfg.to_dict(), indent=2)):
        saved = json.loads(settings.read())
        old = TrainConfig.from_dict(saved).result_settings()
        new = cfg.result_settings()
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        if changed:
            diff = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in changed)
            raise GridError(
                f"{runs} holds runs with other training settings ({diff}); "
                "use another --out, or the same settings to resume"
            )
    used_file = Location(runs).child(FEATURES_USED)
    used = None if used_file.create(json.dumps(features_used)) else read_json(used_file)
    if used is not None and used.get("extra_train") != features_used.get("extra_train"):
        raise GridError(
            f"{runs} holds runs trained with other --extra-train corpora "
            f"({used.get('extra_train') or 'none'}); use another --out"
        )
    if used is not None and used.get("test_fingerprint") != features_used.get("test_fingerprint"):
        raise GridError(
            f"{runs} holds runs tested on other features ({used.get('test_features')}); "
            "use another --out"
        )
    if used is not None and used["fingerprint"] != features_used["fingerprint"]:
        raise GridError(
            f"{runs} holds runs trained on other features ({used['features']}, fingerprint "
            f"{used['fingerprint']}); {features_used['features']} has fingerprint "
            f"{features_used['fingerprint']} (re-featurized, or other settings); "
            "use another --out for these features"
        )


def longest_first(specs: list[TrialSpec], image_shape: tuple[int, ...]) -> list[TrialSpec]:
    """The grid ordered by each model's FLOPs per example, largest first, so the longest
    trials do not start last and leave the other slots idle at the end (models of
    functionals, a few thousand FLOPs, count as none). The networks are built and counted
    in a Ray task: the driver never imports torch. The task's worker exits when it is done
    (``max_calls=1``): kept idle for reuse, it would hold torch's 0.5 GiB for the grid."""
    networks = sorted({s.model for s in specs if is_network(s.model)})
    flops = {}
    if networks:
        count = ray.remote(num_cpus=0, max_calls=1)(network_flops)
        counted = count.remote(networks, image_shape)
        flops = dict(zip(networks, ray.get(counted), strict=True))
    return sorted(specs, key=lambda s: -flops.get(s.model, 0))


def network_flops(names: list[str], image_shape: tuple[int, ...]) -> list[int]:
    """FLOPs per example of each network on ``image_shape`` inputs (in a Ray worker)."""
    from attres.flops import count_flops

    return [count_flops(create_model(name, num_classes=2), image_shape) for name in names]


def trial_slots(resources: dict[str, float], cfg: TrainConfig, networks: bool = True) -> int:
    """How many trials fit in the cluster at once (a grid of scikit-learn models alone
    holds no GPU)."""
    workers = cfg.workers_per_trial
    by_cpu = math.floor(resources.get("CPU", 0) / (cfg.cpus_per_trial * workers) + 1e-9)
    slots = by_cpu
    if cfg.gpus_per_trial and networks:
        gpus = resources.get("GPU", 0)
        if not gpus:
            raise GridError(
                f"--gpus-per-trial {cfg.gpus_per_trial:g} asks for GPUs and the cluster has "
                "none; if its GPU workers scale up from zero, pass --max-concurrent N"
            )
        slots = min(slots, math.floor(gpus / (cfg.gpus_per_trial * workers) + 1e-9))
    if slots < 1:
        raise GridError(
            f"one trial needs {cfg.cpus_per_trial * workers:g} CPUs"
            f"{f' and {cfg.gpus_per_trial * workers:g} GPUs' if cfg.gpus_per_trial else ''}; "
            f"the cluster has {resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs"
        )
    return slots


def train_all(
    features: str,
    runs: str,
    models: list[str],
    seeds: list[int],
    cfg: TrainConfig,
    folds: list[int] | None = None,
    storage: str | None = None,
    address: str | None = None,
    max_concurrent: int | None = None,
    verbose: bool = False,
    progress: Callable[[str], None] = print,
    display: str = "auto",
    test_features: str | None = None,
    classes: tuple[str, ...] | None = None,
    track: Tracking | None = None,
) -> GridSummary:
    """Run every missing trial of the grid concurrently on Ray; returns what happened.

    ``display`` is how the running trials show (``workflows.grid.progress``): "auto" (live
    on a terminal, else lines), "live", "lines" or "quiet". With ``test_features`` the grid
    is cross-corpus: trained on ``features``, tested on those, on the classes both have
    (``classes``: these of them). ``track``: the trackers each trial is logged to
    (``workflows.grid.tracking``)."""
    from featurize.raysession import ensure_ray, require_visible_on_all_nodes

    start = time.perf_counter()
    features, runs = Location(features), Location(runs)
    storage = Location(storage) if storage else runs
    trackers = tracking_callbacks(track or Tracking(), runs)  # refused here, before any work
    data = load_features(features, spectrograms=False)  # planning reads the index only
    features_used = {
        "features": features,
        "fingerprint": content_fingerprint(features),
        "feature_config": data.config.to_dict(),
        "labels": list(data.label_names),
    }
    fingerprint = features_used["fingerprint"]
    extras: tuple[str, ...] = ()
    if cfg.extra_train:
        extras = extra_train_fingerprints(cfg, models, data, test_features, progress)
        features_used["extra_train"] = [
            {"features": location, "fingerprint": fp}
            for location, fp in zip(cfg.extra_train, extras, strict=True)
        ]
    if test_features is None:
        check_runs_belong(runs, cfg, features_used)
        specs = plan_grid(
            data, features, fingerprint, runs, models, seeds, cfg, storage, folds, progress
        )
    else:
        if cfg.stream:
            raise GridError("--stream trains on one corpus's shards; cross-corpus reads two")
        test_features = Location(test_features)
        other = load_features(test_features, spectrograms=False)
        named = classes is not None
        classes = cross_classes(data, other, features, test_features, classes)
        features_used.update(
            test_features=test_features,
            test_fingerprint=content_fingerprint(test_features),
            classes=list(classes),
        )
        check_runs_belong(runs, cfg, features_used)
        fingerprints = (fingerprint, features_used["test_fingerprint"])
        specs = plan_cross_corpus(
            data, other, features, test_features, fingerprints, runs, models, seeds, cfg,
            storage, classes,
        )  # fmt: skip
        progress(
            f"train-all: cross-corpus, trained on {features}, tested on {test_features}, "
            f"on the {len(classes)} classes both have"
            f"{' that --classes names' if named else ''}: {', '.join(classes)}"
        )
    if cfg.extra_train:  # every trial's training side gains these corpora's clips
        specs = [dataclasses.replace(s, extra_fingerprints=extras) for s in specs]
    runs.child(FEATURES_USED).write(json.dumps(features_used, indent=2))
    done = finished_trials(runs)
    todo = [s for s in specs if s.name not in done]
    if done & {s.name for s in specs}:
        progress(f"train-all: {len(specs) - len(todo)} of {len(specs)} trials already finished")
    failed: list[str] = []
    if todo:
        ensure_ray(address, verbose=verbose)
        for path in {features, runs, storage, *cfg.extra_train}:
            require_visible_on_all_nodes(path)
        todo = longest_first(todo, data.image_shape)
        shared = share_grid_features(todo, data, other if test_features else None, progress)
        failed = _run_tune(
            todo, storage, cfg, max_concurrent, verbose, progress, display, shared, trackers
        )  # fmt: skip
    write_results_table(runs)
    recorded = finished_trials(runs)
    return GridSummary(
        runs=runs,
        planned=len(specs),
        skipped=len(specs) - len(todo),
        finished=sum(s.name in recorded for s in todo),
        failed=failed,
        unfinished=[s.name for s in todo if s.name not in recorded and s.name not in failed],
        elapsed_s=time.perf_counter() - start,
    )


def extra_train_fingerprints(
    cfg: TrainConfig,
    models: list[str],
    data: FeatureSet,
    test_features: str | None,
    progress: Callable[[str], None],
) -> tuple[str, ...]:
    """Check the ``--extra-train`` corpora (each shares a class with the target; the models
    are scikit-learn models of functionals, which weigh rows, and each corpus has their
    sets) and return their fingerprints."""
    if test_features is not None:
        raise GridError("--extra-train adds to one corpus's training side; not cross-corpus")
    names = [model_info(m).name for m in models]
    unweighted = [n for n in names if model_kind(n) != "sklearn" or not model_info(n).features]
    if unweighted:
        raise GridError(
            f"--extra-train trains the scikit-learn models of functionals (eGeMAPS-LR, "
            f"eGeMAPS-LR-ST, openSMILE-linear, ...); not {', '.join(unweighted)}"
        )
    fingerprints = []
    for location in cfg.extra_train:
        other = load_features(location, spectrograms=False)
        require_functionals(names, other, location)
        names_there = np.asarray(other.label_names)[other.labels]
        shared = [c for c in data.label_names if c in set(names_there.tolist())]
        if not shared:
            raise GridError(
                f"--extra-train {location}: none of its classes ({', '.join(other.label_names)}) "
                f"is one of the target's ({', '.join(data.label_names)})"
            )
        kept = int(np.isin(names_there, data.label_names).sum())
        progress(
            f"train-all: {kept} clips of {location} ({', '.join(shared)}) join every fold's "
            f"training side, weighted {cfg.extra_weight:g}"
        )
        fingerprints.append(content_fingerprint(location))
    return tuple(fingerprints)


def share_grid_features(
    todo: list[TrialSpec],
    data: FeatureSet,
    other: FeatureSet | None,
    progress: Callable[[str], None] = print,
) -> dict[str, SharedFeatures]:
    """What the grid's trials read, in the object store once: the spectrograms if a model
    reads them, and each functionals set a model reads (of both corpora, cross-corpus).
    Says so, with the sizes, when that is more than a node's object store holds: Ray then
    spills to disk, which is slower but finishes."""
    reads = {
        model_info(s.model).features
        for s in todo
        if not model_info(s.model).encoder and not streams(s)
    }
    encoders = tuple(sorted({model_info(s.model).encoder for s in todo} - {""}))
    if not reads and not encoders:  # every trial streams its rows from the shards
        return {}
    sets = tuple(sorted({name for group in reads for name in group}))
    first = todo[0]
    located = [(first.features, first.fingerprint, data)]
    if other is not None:
        located.append((first.test_features, first.test_fingerprint, other))
    size = sum(
        len(index) * 4 * (math.prod(index.image_shape) * (() in reads)
                          + sum(functionals_width(location, name) for name in sets)
                          + sum(math.prod(encoder_shape(location, name)) for name in encoders))
        for location, _, index in located
    )  # fmt: skip
    # each node that runs a trial holds a copy: the smallest node's store is the bound
    stores = [n["Resources"].get("object_store_memory", 0) for n in ray.nodes() if n["Alive"]]
    store = min(stores, default=0)
    if size > store:
        progress(
            f"train-all: the features the grid reads are {size / 2**30:.2f} GiB, more than "
            f"the {store / 2**30:.2f} GiB object store of the smallest node, which holds a "
            "copy when it runs a trial: Ray spills them to disk (slower); start Ray with more "
            "--object-store-memory to keep them in memory"
        )
    return {
        location: share_features(location, fingerprint, index, () in reads, sets, encoders)
        for location, fingerprint, index in located
    }


def encoder_shape(features: str, name: str) -> tuple[int, int]:
    """(layers + 1, dim) of an encoder set of FEATURES, from its settings."""
    settings = saved_settings(features, name)
    return settings["layers"], settings["dim"]


def _trial_bundle(config: dict[str, Any]) -> tune.PlacementGroupFactory:
    """What one trial holds: its device (a streamed trial's Ray Data tasks work within it),
    or (data-parallel) only a foothold, as the Ray
    Train workers it starts reserve their own. A scikit-learn model holds CPUs only, so it
    runs on a CPU-only node and leaves the GPU shares to the networks."""
    cfg = TrainConfig.from_dict(config["spec"]["train"])
    network = model_kind(config["spec"]["model"]) == "torch"
    if cfg.workers_per_trial > 1 and network:  # ``fit.runs_on_ray_train``
        return tune.PlacementGroupFactory([{"CPU": 0, "memory": 64 * 2**20}])
    gpu = {"GPU": cfg.gpus_per_trial} if cfg.gpus_per_trial and network else {}
    return tune.PlacementGroupFactory([{"CPU": cfg.cpus_per_trial, **gpu}])


def _run_tune(
    todo, storage, cfg, max_concurrent, verbose, progress, display, shared, trackers
) -> list[str]:
    resources = ray.cluster_resources()
    if max_concurrent is None:
        networks = any(model_kind(s.model) == "torch" for s in todo)
        max_concurrent = trial_slots(resources, cfg, networks)
    progress(
        f"train-all: {len(todo)} trials, up to {max_concurrent} at once "
        f"({resources.get('CPU', 0):g} CPUs, {resources.get('GPU', 0):g} GPUs in the cluster)"
    )
    if not verbose:  # our progress (GridProgress) instead of Tune's boxes and tables
        os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
        logging.getLogger("ray.tune").setLevel(logging.WARNING)
    callback = GridProgress(todo, max_concurrent, progress, display, epochs=_epochs)
    # Tune's own per-trial result.json and progress.csv, not its TensorBoard logger: that one
    # imports torch into the driver (--track tensorboard writes the grid's event files)
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"
    loggers = [tune.logger.CSVLoggerCallback(), tune.logger.JsonLoggerCallback()]
    tuner = tune.Tuner(
        # the features travel to each trial by reference: one copy per node, read zero-copy
        tune.with_resources(tune.with_parameters(run_trial, shared=shared), _trial_bundle),
        param_space={"spec": tune.grid_search([s.to_dict() for s in todo])},
        tune_config=tune.TuneConfig(
            max_concurrent_trials=max_concurrent,
            reuse_actors=True,  # one process trains trial after trial: no start-up each
            trial_name_creator=trial_name,
            trial_dirname_creator=trial_name,
        ),
        run_config=tune.RunConfig(
            # one experiment folder per RUNS: runs sharing a storage keep apart
            name=f"tune-{hashlib.sha1(todo[0].runs.encode()).hexdigest()[:12]}",
            storage_path=str(storage),
            verbose=2 if verbose else 0,
            callbacks=[callback, *loggers, *trackers],
            failure_config=tune.FailureConfig(max_failures=cfg.max_failures),
        ),
    )
    try:
        tuner.fit()
    finally:
        callback.close()
    return callback.failed


def _epochs(spec: TrialSpec) -> int:
    return spec.train.epochs if model_kind(spec.model) == "torch" else 0
