"""Benchmark: the Ray Data featurize pipeline against a single-process loop over the same files.

    python benchmarks/bench_featurize.py CORPUS [--image-size 128] [--address A] [--timeline]
                                         [--skip-loop | --loops-only] [--loop-sample N]
                                         [--functionals egemaps[,compare]]

Times ``run_featurize`` end to end into a fresh output folder, with the start of a local
Ray instance timed apart (``--address`` joins a running cluster instead: nothing to
start). Then, with Ray shut down, a plain loop calling the same per-file function
(``featurize_file``) in this process, and the same function split across one fresh
process per CPU, started and warmed before the clock: about the most any parallel
framework could get from this machine. Loop and processes write nothing. Both keep
freed memory in glibc's heap (``workflows.grid.runtime.configure_allocator``): a freshly spawned
process otherwise spends a third of its time in page faults, while Ray's workers and
this process have raised glibc's thresholds long before (importing Ray does).

Reports files/s, the ratios, and the peak memory of the driver and every Ray process
below it: PSS (shared pages split between the processes that map them) and summed RSS
(shared pages counted once per process, an upper bound). With ``--address`` the
cluster's processes are not below the driver and are not counted.

The loop is timed a second time writing the same shards as the pipeline does (the actors'
``FeaturizeBlocks`` called in this process on blocks of ``SHARD_ROWS``): the pipeline's
per-core throughput against that loop is what Ray costs, the write left out of the
comparison. ``--loops-only`` times the loops alone. ``--loop-sample N`` times the loops and
processes on N files drawn at random (seed 0) instead of all, their files/s standing for the
whole corpus's: a 100,000-clip corpus's loops take an hour with openSMILE.

``--functionals`` adds openSMILE's sets to both (``featurize --functionals``), the loop's
extractor built once off the clock, as each actor builds its own.

The shards' size is reported with the rate at which the output folder's disk takes a
sustained write (``DISK_PROBE_BYTES`` written and fsync'd): the seconds the disk alone needs
for the shards, a floor under the pipeline's time that no number of cores lowers.

``--timeline`` has each featurize actor log, per block, when it ran and the CPU time its
thread took, and prints per actor: when it was constructed and began its first block
(seconds after Ray was up), its blocks, files, busy time, CPU ms per file and the idle
time between its blocks.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import tempfile
import time
from pathlib import Path

from memory import PeakMemory

import featurize.pipeline
from featurize.config import FeatureConfig
from featurize.corpus import Corpus, discover
from featurize.functionals import Extractor, check_sets
from featurize.pipeline import SHARD_ROWS, FeaturizeBlocks, featurize_file, run_featurize
from featurize.raysession import ensure_ray
from featurize.store import prepare_functionals, prepare_store

EXTRACTORS: dict[tuple[str, ...], Extractor] = {}  # one per process, as one per actor
DISK_PROBE_BYTES = 2**30  # more than a few seconds of any disk, less than the page cache


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def disk_write_rate(folder: Path, nbytes: int = DISK_PROBE_BYTES) -> float:
    """Bytes/s of one sustained write of ``nbytes`` into ``folder``, fsync'd before the
    clock stops (the file is removed)."""
    chunk = os.urandom(2**20)
    path = folder / "disk-probe"
    start = time.perf_counter()
    with open(path, "wb") as f:
        for _ in range(nbytes // len(chunk)):
            f.write(chunk)
        f.flush()
        os.fsync(f.fileno())
    seconds = time.perf_counter() - start
    path.unlink()
    return nbytes / seconds


def featurize_all(
    utts: list[dict], config: FeatureConfig, labels: tuple[str, ...], sets: tuple[str, ...] = ()
) -> None:
    import cv2

    from workflows.grid.runtime import configure_allocator  # imports torch: after the pipeline

    cv2.setNumThreads(1)  # as in the pipeline's actors
    configure_allocator()
    if sets and sets not in EXTRACTORS:
        EXTRACTORS[sets] = Extractor(sets)
    extractor = EXTRACTORS.get(sets)
    for utt in utts:
        featurize_file({**utt, "sets": ",".join(sets)}, config, labels, extractor)


def write_all(
    utts: list[dict],
    config: FeatureConfig,
    labels: tuple[str, ...],
    sets: tuple[str, ...],
    features: Path,
) -> None:
    """What the pipeline's actors do, in this process: featurize blocks of SHARD_ROWS and
    write each as a shard (and a functionals shard per set) into ``features``."""
    import numpy as np

    prepare_store(str(features), config, labels)
    prepare_functionals(str(features), sets, config.sample_rate)
    blocks = FeaturizeBlocks(config, labels, str(features), sets)
    for i in range(0, len(utts), SHARD_ROWS):
        chunk = [
            {**u, "has_spectrogram": "no", "sets": ",".join(sets)} for u in utts[i : i + SHARD_ROWS]
        ]
        blocks({key: np.array([u[key] for u in chunk]) for key in chunk[0]})


def _pool_worker(utts, config, labels, sets, barrier) -> None:
    featurize_all(utts[:1], config, labels, sets)  # imports and first-call costs, off the clock
    barrier.wait()
    featurize_all(utts, config, labels, sets)
    barrier.wait()


def pool_seconds(
    utts: list[dict], config: FeatureConfig, labels: tuple[str, ...], sets: tuple[str, ...] = ()
) -> float:
    """Wall seconds of featurize_file over utts split across one process per CPU.

    The clock runs from every process being started and warmed to every one being done.
    """
    ctx = multiprocessing.get_context("spawn")
    processes = os.cpu_count() or 1
    barrier = ctx.Barrier(processes + 1)
    workers = [
        ctx.Process(target=_pool_worker, args=(utts[i::processes], config, labels, sets, barrier))
        for i in range(processes)
    ]
    for worker in workers:
        worker.start()
    barrier.wait()
    start = time.perf_counter()
    barrier.wait()
    seconds = time.perf_counter() - start
    for worker in workers:
        worker.join()
    return seconds


class TimedBlocks(FeaturizeBlocks):
    """FeaturizeBlocks that appends (born, start, end, thread CPU s, files) per block to
    ``log_dir/<pid>.jsonl``. Pickled by value with this script, class attribute included."""

    log_dir = ""

    def __init__(self, *args, **kwargs) -> None:
        self.born = time.time()
        super().__init__(*args, **kwargs)

    def __call__(self, batch):
        start, cpu = time.time(), time.thread_time()
        out = super().__call__(batch)
        record = [self.born, start, time.time(), time.thread_time() - cpu, len(out["source"])]
        with open(f"{self.log_dir}/{os.getpid()}.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        return out


def print_timeline(log_dir: Path, ray_up: float) -> None:
    for path in sorted(log_dir.glob("*.jsonl")):
        blocks = sorted(json.loads(line) for line in path.read_text().splitlines())
        born, starts, ends = blocks[0][0], [b[1] for b in blocks], [b[2] for b in blocks]
        files, cpu = sum(b[4] for b in blocks), sum(b[3] for b in blocks)
        busy = sum(end - start for start, end in zip(starts, ends, strict=True))
        idle = sum(start - end for start, end in zip(starts[1:], ends, strict=False))
        print(
            f"actor {path.stem:>7}: constructed at {born - ray_up:5.2f} s, first block at "
            f"{starts[0] - ray_up:5.2f} s, last done at {ends[-1] - ray_up:6.2f} s; "
            f"{len(blocks)} blocks, {files} files, busy {busy:.1f} s, "
            f"CPU {1e3 * cpu / files:.2f} ms/file, idle between blocks {idle:.2f} s"
        )


def time_pipeline(
    args: argparse.Namespace, config: FeatureConfig, sets: tuple[str, ...], n: int
) -> float:
    """Featurize args.corpus on Ray into a fresh folder; prints the figures, returns the
    pipeline's files/s once Ray was up."""
    out = Path(tempfile.mkdtemp(prefix="bench-featurize-"))
    if args.timeline:
        TimedBlocks.log_dir = str(out / "timeline")
        os.makedirs(TimedBlocks.log_dir)
        featurize.pipeline.FeaturizeBlocks = TimedBlocks  # looked up when the run starts
    try:
        with PeakMemory() as memory:
            start = time.perf_counter()
            ensure_ray(args.address)
            ray_s = time.perf_counter() - start
            ray_up = time.time()
            summary = run_featurize(
                args.corpus,
                str(out / "features"),
                config,
                progress=lambda _: None,
                functionals=sets,
            )
            total_s = time.perf_counter() - start
        assert summary.featurized + summary.rejected == n
        if args.timeline:
            print_timeline(out / "timeline", ray_up)
        shard_bytes = folder_bytes(out / "features")
        disk_rate = disk_write_rate(out)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    run_s = total_s - ray_s
    started = "joined " + args.address if args.address else "local instance started"
    print(f"ray start    : {ray_s:7.2f} s  ({started})")
    print(f"pipeline     : {run_s:7.2f} s  {n / run_s:8.1f} files/s  (Ray up)")
    print(f"end to end   : {total_s:7.2f} s  {n / total_s:8.1f} files/s")
    print(
        f"peak memory  : PSS {memory.pss / 2**30:.2f} GiB, summed RSS {memory.rss / 2**30:.2f} GiB"
        " (driver + Ray processes below it)"
    )
    cpu = memory.cpu
    print(
        f"CPU          : {sum(cpu.values()):.1f} s of {os.cpu_count()} x {total_s:.1f} s; "
        + ", ".join(f"{name} {seconds:.1f}" for name, seconds in cpu.items() if seconds >= 0.1)
        + f" (the driver's includes {memory.own_cpu:.1f} s of this sampling)"
    )
    print(
        f"shards       : {shard_bytes / 1e9:7.2f} GB; the disk writes {disk_rate / 1e6:.0f} MB/s "
        f"sustained: {shard_bytes / disk_rate:.1f} s of writing for the shards alone"
    )
    return n / run_s


def time_loops(
    args: argparse.Namespace, corpus: Corpus, config: FeatureConfig, sets: tuple[str, ...]
) -> tuple[float, float]:
    """The loop, the writing loop and one process per CPU, with Ray shut down; prints them,
    returns (loop, writing loop) files/s."""
    import ray

    ray.shutdown()
    utts = [{**u.__dict__, "utterance_id": u.utterance_id} for u in corpus.utterances]
    if 0 < args.loop_sample < len(utts):
        utts = random.Random(0).sample(utts, args.loop_sample)
        print(f"loops        : on {len(utts)} files drawn at random; files/s compared")
    m = len(utts)
    featurize_all(utts[:1], config, corpus.labels, sets)  # imports, as the pool's do
    start = time.perf_counter()
    featurize_all(utts, config, corpus.labels, sets)
    loop_rate = m / (time.perf_counter() - start)
    written = Path(tempfile.mkdtemp(prefix="bench-featurize-loop-"))
    try:
        write_all(utts[:1], config, corpus.labels, sets, written / "warm")  # imports, off the clock
        start = time.perf_counter()
        write_all(utts, config, corpus.labels, sets, written / "features")
        write_rate = m / (time.perf_counter() - start)
    finally:
        shutil.rmtree(written, ignore_errors=True)
    pool_rate = m / pool_seconds(utts, config, corpus.labels, sets)
    cpus = os.cpu_count() or 1
    print(f"single loop  : {m / loop_rate:7.2f} s  {loop_rate:8.1f} files/s  (no writes)")
    print(f"loop, writing: {m / write_rate:7.2f} s  {write_rate:8.1f} files/s  (the shards)")
    print(
        f"per-CPU procs: {m / pool_rate:7.2f} s  {pool_rate:8.1f} files/s  "
        f"({cpus} processes, no writes; {pool_rate / loop_rate:.2f}x the loop)"
    )
    return loop_rate, write_rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--skip-loop", action="store_true", help="time only the pipeline")
    parser.add_argument("--loops-only", action="store_true", help="time only the loops")
    parser.add_argument("--address", help="join this running Ray cluster (e.g. auto)")
    parser.add_argument("--timeline", action="store_true", help="per-actor block timings")
    parser.add_argument("--functionals", default="", help="openSMILE sets, e.g. egemaps")
    parser.add_argument(
        "--loop-sample", type=int, default=0, help="time the loops on N random files (0: all)"
    )
    args = parser.parse_args()
    sets = check_sets(tuple(s for s in args.functionals.split(",") if s))
    config = FeatureConfig(image_size=args.image_size)
    corpus = discover(args.corpus)
    n = len(corpus.utterances)
    print(
        f"corpus {args.corpus}: {n} files; {os.cpu_count()} CPUs; load {os.getloadavg()}; "
        f"functionals: {', '.join(sets) or 'none'}"
    )

    pipeline_rate = None if args.loops_only else time_pipeline(args, config, sets, n)
    if args.skip_loop:
        return
    loop_rate, write_rate = time_loops(args, corpus, config, sets)
    if pipeline_rate is not None:
        cpus = os.cpu_count() or 1
        print(
            f"speed-up     : {pipeline_rate / loop_rate:.2f}x the loop once Ray is up; per core "
            f"{pipeline_rate / loop_rate / cpus:.2f}x the loop, "
            f"{pipeline_rate / write_rate / cpus:.2f}x the writing loop"
        )


if __name__ == "__main__":
    main()
