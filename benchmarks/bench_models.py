"""CPU training throughput of every model in the zoo, as a fraction of this machine's GEMM peak.

Not a test. One training step is forward, cross-entropy, backward and an Adam step on
one fixed random batch (no data loading), after warm-up steps. Training FLOPs are
counted as 3x the forward FLOPs of ``attres.flops.count_flops`` (the backward pass
computes gradients for both the inputs and the weights of every layer, each about
the cost of the forward). The peak is the best fp32 ``torch.mm`` rate on large square
matrices with the same threads. The SVM row reports the fit time on ``--svm-samples``
random spectrograms instead.

    python benchmarks/bench_models.py --size 128 --batch-size 32 --seconds 9
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import threading
import time
from typing import Any

import numpy as np
import torch
from torch import nn

from attres.flops import count_flops, count_parameters
from attres.models import create_model, list_models, model_kind, resolve_name
from attres.train import prepare_for_training
from workflows.grid import runtime
from workflows.grid.config import TrainConfig

NUM_CLASSES = 6
WINDOWS = 3  # --seconds is split into this many timed windows; the fastest one is reported


def gemm_peak_gflops(n: int = 2048, repeats: int = 10) -> float:
    """Best fp32 GFLOP/s of an (n x n) @ (n x n) product."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def cpu_model_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return platform.processor() or "unknown"
    names = [line.split(":", 1)[1].strip() for line in out.splitlines() if "Model name" in line]
    return names[0] if names else "unknown"


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


def bench_torch(
    name: str, size: int, batch_size: int, seconds: float, prepare: bool, compile_model: bool
) -> dict[str, Any]:
    torch.manual_seed(0)
    model: nn.Module = create_model(name, NUM_CLASSES)
    flops = count_flops(model, (1, size, size))
    params = count_parameters(model)
    if prepare:
        model = prepare_for_training(model, "cpu")
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    step_model = torch.compile(model) if compile_model else model
    x = torch.randn(batch_size, 1, size, size)
    y = torch.randint(0, NUM_CLASSES, (batch_size,))

    def step() -> None:
        loss = nn.functional.cross_entropy(step_model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    load_before = load()
    start = time.perf_counter()
    warmup_steps = 0
    while warmup_steps < 3 or time.perf_counter() - start < 1.0:
        step()
        warmup_steps += 1
    warmup = time.perf_counter() - start
    best = float("inf")  # seconds per step in the best window: other processes only slow it
    for _ in range(WINDOWS):
        steps, start = 0, time.perf_counter()
        while steps < 2 or time.perf_counter() - start < seconds / WINDOWS:
            step()
            steps += 1
        best = min(best, (time.perf_counter() - start) / steps)
    samples_per_s = batch_size / best
    return {
        "params": params,
        "fwd_gflop": flops / 1e9,
        "samples_per_s": samples_per_s,
        "ms_per_step": 1e3 * best,
        "gflops": 3 * flops * samples_per_s / 1e9,
        "warmup_s": warmup,
        "load": f"{load_before} -> {load()}",
    }


def bench_svm(size: int, samples: int) -> dict[str, Any]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(samples, 1, size, size)).astype(np.float32)
    y = rng.integers(0, NUM_CLASSES, samples)
    svm = create_model("SVM", NUM_CLASSES)
    load_before = load()
    start = time.perf_counter()
    svm.fit(x, y)
    fit = time.perf_counter() - start
    start = time.perf_counter()
    svm.predict(x)
    return {
        "fit_s": fit,
        "predict_ms_per_sample": 1e3 * (time.perf_counter() - start) / samples,
        "load": f"{load_before} -> {load()}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128, help="spectrogram height = width")
    parser.add_argument("--batch-size", type=int, default=TrainConfig.batch_size)
    parser.add_argument("--models", default="all", help="comma-separated names, or 'all'")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per model")
    parser.add_argument("--threads", type=int, default=None, help="default: all usable cores")
    parser.add_argument("--svm-samples", type=int, default=1000)
    parser.add_argument(
        "--no-prepare", action="store_true", help="skip the CPU settings (naive NCHW baseline)"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile each model")
    parser.add_argument(
        "--in-thread",
        action="store_true",
        help="train in a second thread, as Ray Train does (compare with MALLOC_ARENA_MAX=1)",
    )
    args = parser.parse_args()
    if args.in_thread:
        worker = threading.Thread(target=run, args=(args,))
        worker.start()
        worker.join()
    else:
        run(args)


def run(args: argparse.Namespace) -> None:

    threads = runtime.configure_threads(args.threads)
    if not args.no_prepare:
        runtime.configure_allocator()  # before the GEMM peak too, for the same process state
    names = list_models() if args.models == "all" else args.models.split(",")
    names = [resolve_name(name) for name in names]
    load_start, peak_before = load(), gemm_peak_gflops()
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        print(f"{name} ...", file=sys.stderr, flush=True)
        if model_kind(name) == "sklearn":
            results[name] = bench_svm(args.size, args.svm_samples)
        else:
            results[name] = bench_torch(
                name, args.size, args.batch_size, args.seconds, not args.no_prepare, args.compile
            )
    peak = max(peak_before, gemm_peak_gflops())  # best of before and after the models

    settings = (
        "naive (no channels_last, default malloc)"
        if args.no_prepare
        else "channels_last + tuned malloc (prepare_for_training, runtime.configure_allocator)"
    )
    if args.in_thread:
        arenas = os.environ.get("MALLOC_ARENA_MAX", "glibc default")
        settings += f"; in a second thread, MALLOC_ARENA_MAX={arenas}"
    print(f"- date: {datetime.date.today().isoformat()}")
    print(f"- machine: {os.cpu_count()} cores, {cpu_model_name()}, torch {torch.__version__}")
    print(f"- threads: {threads}; settings: {settings}{', torch.compile' if args.compile else ''}")
    print(f"- fp32 GEMM peak (best torch.mm 2048^2, before and after): {peak:.1f} GFLOP/s")
    print(f"- input 1x{args.size}x{args.size}, batch {args.batch_size}; load at start {load_start}")
    print(
        f"- samples/s: fastest of {WINDOWS} windows in {args.seconds:g} s, after >= 1 s warm-up\n"
    )
    print(
        "| model | params | fwd GFLOP/sample | samples/s | ms/step | GFLOP/s (3x fwd) "
        "| % of GEMM peak | warm-up s | load 1/5/15 min before -> after |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for name, r in results.items():
        if model_kind(name) == "sklearn":
            print(
                f"| {name} | - | - | fit {args.svm_samples} samples: {r['fit_s']:.2f} s "
                f"| predict {r['predict_ms_per_sample']:.3f} ms/sample | - | - | - | {r['load']} |"
            )
        else:
            print(
                f"| {name} | {r['params']:,} | {r['fwd_gflop']:.3f} | {r['samples_per_s']:.1f} "
                f"| {r['ms_per_step']:.0f} | {r['gflops']:.1f} | {100 * r['gflops'] / peak:.0f} % "
                f"| {r['warmup_s']:.1f} | {r['load']} |"
            )


if __name__ == "__main__":
    main()
