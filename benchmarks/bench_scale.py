"""Benchmark: the data path at scale. Memory of the node against one copy of the features.

    python benchmarks/bench_scale.py [--clips 20000 | --features FEATURES] [--image-size 128]
        [--trials 1,2,4] [--data-parallel] [--stream] [--object-store-gib G] [--model CNN]
        [--functionals] [--work DIR]

Builds a synthetic corpus of about ``--clips`` clips (4 speakers; or reads ``--features``, a
featurized corpus of your own), featurizes it (``featurize`` as the CLI runs it, with
``--functionals`` eGeMAPS too), then runs one epoch of ``--model`` under the paper's split
with k trials at once (seeds 0..k-1, ``--max-concurrent k``, each trial holding 1/k of
the CPUs where there are fewer than k) for each k of ``--trials``,
and with ``--data-parallel`` one trial on two Ray Train workers; with ``--stream`` the
trials stream their rows from the shards (``train-all --stream``). Each step on one local
Ray instance, started by this process (``--object-store-gib`` sets its object store: a
streamed trial trains a corpus larger than it), so every Ray process is below it.

Reports featurize clips/s, and per step the node's peak memory: PSS summed over this
process and every Ray process (the object store's shared pages count once), the peak of
this process (the driver) and of the largest Ray process, against the size of one copy
of the spectrograms (N x H x W x 4 bytes), and the peak's PSS by process (each trial, the
raylet holding the object store, Ray's own processes); and the epoch's seconds. Writes
the figures to ``WORK/bench_scale.json`` as each step ends. Memory is sampled once a
second: a shorter peak can be missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import tempfile
import time
from pathlib import Path

from memory import PeakMemory

GIB = 2**30


def build_corpus(root: Path, clips: int) -> Path:
    """About ``clips`` synthetic clips: 4 speakers x 6 emotions x n sentences."""
    from workflows.demo.synth import SynthConfig, synthesize_corpus

    per = max(1, math.ceil(clips / 24))
    config = SynthConfig(speakers=4, utterances_per_emotion=per, min_duration_s=1.0,
                         max_duration_s=2.0, seed=0)  # fmt: skip
    synthesize_corpus(root, config, workers=2)
    return root


def featurize_step(corpus: Path, features: str, image_size: int, functionals: bool) -> dict:
    from featurize.config import FeatureConfig
    from featurize.pipeline import run_featurize

    start = time.perf_counter()
    with PeakMemory() as memory:
        summary = run_featurize(
            corpus, features, FeatureConfig(image_size=image_size),
            functionals=("egemaps",) if functionals else (), progress=lambda _: None,
        )  # fmt: skip
    wall = time.perf_counter() - start
    return {"step": "featurize", "clips": summary.featurized, "wall_s": wall,
            "clips_per_s": summary.featurized / wall, **figures(memory)}  # fmt: skip


def grid_step(
    features: str, work: Path, model: str, trials: int, data_parallel: bool, stream: bool
) -> dict:
    from workflows.grid.config import TrainConfig
    from workflows.grid.train_all import train_all
    from workflows.runs import load_records

    name = (f"dp2-{trials}" if data_parallel else f"k{trials}") + ("-stream" if stream else "")
    workers = 2 if data_parallel else 1
    # k trials at once, whatever the cores: each holds its share of them
    cpus = min(1.0, (os.cpu_count() or 1) / (trials * workers))
    cfg = TrainConfig(epochs=1, protocol="paper", workers_per_trial=workers, stream=stream,
                      cpus_per_trial=cpus)  # fmt: skip
    start = time.perf_counter()
    with PeakMemory() as memory:
        summary = train_all(features, str(work / f"runs-{name}"), [model], list(range(trials)),
                            cfg, max_concurrent=trials, progress=lambda _: None)  # fmt: skip
    assert not summary.failed, summary.failed
    records = load_records(str(work / f"runs-{name}"))
    return {
        "step": f"train-all {model}, {trials} trial(s)"
        + (", 2 data-parallel workers" if data_parallel else f", {trials} at once")
        + (", streamed" if stream else ""),
        "wall_s": time.perf_counter() - start,
        "epoch_s": max(r.train_s for r in records),
        **figures(memory),
    }


def figures(memory: PeakMemory) -> dict:
    at_peak = sorted(memory.at_peak.items(), key=lambda item: -item[1])
    return {"node_pss_gib": memory.pss / GIB, "driver_pss_gib": memory.driver / GIB,
            "largest_gib": memory.largest / GIB, "largest": memory.largest_name,
            "at_peak_gib": {name: pss / GIB for name, pss in at_peak}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clips", type=int, default=20000)
    parser.add_argument("--features", help="a featurized corpus instead of a synthetic one")
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--trials", default="1,2,4")
    parser.add_argument("--data-parallel", action="store_true")
    parser.add_argument("--stream", action="store_true", help="train-all --stream")
    parser.add_argument("--object-store-gib", type=float, help="the object store's size")
    parser.add_argument("--model", default="CNN")
    parser.add_argument("--functionals", action="store_true", help="featurize eGeMAPS too")
    parser.add_argument("--work", help="folder for the corpus, features and runs (kept)")
    args = parser.parse_args()

    from featurize.raysession import ensure_ray
    from featurize.store import load_features

    work = Path(args.work or tempfile.mkdtemp(prefix="bench-scale-")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    if args.object_store_gib:  # ensure_ray's local instance, with this object store
        import ray

        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False,
                 _node_ip_address="127.0.0.1", log_to_driver=False, logging_level="WARNING",
                 object_store_memory=int(args.object_store_gib * GIB))  # fmt: skip
    ray_info = ensure_ray()
    steps: list[dict] = []
    result = {"machine": f"{platform.node()}, {os.cpu_count()} CPUs",
              "date": time.strftime("%Y-%m-%d"), "steps": steps,
              "object_store_gib": ray_info.cluster_resources()["object_store_memory"] / GIB,
              }  # fmt: skip

    def done(step: dict) -> None:  # each step's figures kept as it ends: a kill loses none
        steps.append(step)
        (work / "bench_scale.json").write_text(json.dumps(result, indent=2))

    features = args.features
    if features is None:
        corpus = build_corpus(work / "corpus", args.clips)
        features = str(work / "features")
        done(featurize_step(corpus, features, args.image_size, args.functionals))
    index = load_features(features, spectrograms=False)
    one_copy = len(index) * 4 * math.prod(index.image_shape) / GIB
    result.update(clips=len(index), one_copy_gib=one_copy)
    for k in (int(t) for t in args.trials.split(",") if t):  # --trials "": featurize only
        done(grid_step(features, work, args.model, k, False, args.stream))
    if args.data_parallel:
        done(grid_step(features, work, args.model, 1, True, args.stream))
    print(f"{len(index)} clips at {index.image_shape}: one copy of the spectrograms "
          f"{one_copy:.2f} GiB; object store {result['object_store_gib']:.2f} GiB "
          f"({result['machine']}, {result['date']})")  # fmt: skip
    for step in steps:
        rate = f", {step['clips_per_s']:.1f} clips/s" if "clips_per_s" in step else ""
        epoch = f", epoch {step['epoch_s']:.0f} s" if "epoch_s" in step else ""
        print(f"{step['step']}: {step['wall_s']:.0f} s{rate}{epoch}; node PSS "
              f"{step['node_pss_gib']:.2f} GiB (driver {step['driver_pss_gib']:.2f}, largest "
              f"{step['largest']} {step['largest_gib']:.2f})")  # fmt: skip
        print("  at the peak, PSS by process: " + ", ".join(
            f"{name} {gib:.2f}" for name, gib in step["at_peak_gib"].items()))  # fmt: skip
    print(f"figures in {work / 'bench_scale.json'}")


if __name__ == "__main__":
    main()
