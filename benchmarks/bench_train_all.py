"""Benchmark: one train-all over N models run concurrently against the same models one by one.

    python benchmarks/bench_train_all.py FEATURES [--models att-Res0,CNN,SVM,LSTM+CNN]
        [--epochs 5] [--concurrent 2]

Each run goes into a fresh RUNS folder on one local Ray instance (started once, not timed).
Reports the wall time of both runs, the speed-up, per trial the time spent in the training
epochs against the whole trial wall time, and the fixed cost per trial,
(wall x slots - sum of training seconds) / trials: scheduling, actor start, data loading
and checkpointing, everything that is not arithmetic.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time

from featurize.raysession import ensure_ray
from workflows.grid.config import TrainConfig
from workflows.grid.train_all import train_all
from workflows.runs import load_records


def timed_grid(
    features: str, models: list[str], cfg: TrainConfig, concurrent: int
) -> tuple[float, list[dict]]:
    runs = tempfile.mkdtemp(prefix="bench-train-all-")
    try:
        start = time.perf_counter()
        summary = train_all(
            features, runs, models, [0], cfg, max_concurrent=concurrent, progress=lambda _: None
        )
        wall = time.perf_counter() - start
        assert not summary.failed, summary.failed
        return wall, load_records(runs)
    finally:
        shutil.rmtree(runs, ignore_errors=True)


def fixed_cost(wall: float, slots: int, records: list[dict]) -> float:
    """Seconds per trial not spent in training epochs, with ``slots`` trials at a time."""
    return (wall * slots - sum(r["train_s"] for r in records)) / len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("features")
    parser.add_argument("--models", default="att-Res0,CNN,SVM,LSTM+CNN")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--concurrent", type=int, default=2)
    args = parser.parse_args()
    models = args.models.split(",")
    cfg = TrainConfig(epochs=args.epochs)
    ensure_ray()
    print(
        f"{len(models)} models, {args.epochs} epochs, {os.cpu_count()} CPUs, load {os.getloadavg()}"
    )
    seq_wall, seq = timed_grid(args.features, models, cfg, 1)
    con_wall, con = timed_grid(args.features, models, cfg, args.concurrent)
    print(
        f"one by one      : {seq_wall:7.1f} s"
        f"   fixed cost/trial {fixed_cost(seq_wall, 1, seq):.2f} s"
    )
    print(
        f"{args.concurrent} at a time     : {con_wall:7.1f} s   speed-up {seq_wall / con_wall:.2f}x"
        f"   fixed cost/trial {fixed_cost(con_wall, args.concurrent, con):.2f} s"
    )
    print(
        "\n| model | trial wall s (seq) | training s (seq) "
        "| trial wall s (conc) | training s (conc) |"
    )
    print("|---|---|---|---|---|")
    conc = {r["model"]: r for r in con}
    for r in seq:
        c = conc[r["model"]]
        print(
            f"| {r['model']} | {r['wall_s']:.1f} | {r['train_s']:.1f} "
            f"| {c['wall_s']:.1f} | {c['train_s']:.1f} |"
        )


if __name__ == "__main__":
    main()
