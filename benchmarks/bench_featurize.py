"""Benchmark: the Ray Data featurize pipeline against a single-process loop over the same files.

    python benchmarks/bench_featurize.py CORPUS [--image-size 128] [--skip-loop]

Times ``run_featurize`` end to end (Ray start included, fresh output folder) and a plain
loop calling the same per-file function (``featurize_file``) in one process; reports
files/s, the ratio, and the peak memory (RSS) of the driver and of all Ray processes.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

from featurize.config import FeatureConfig
from featurize.corpus import discover
from featurize.pipeline import featurize_file, run_featurize


def descendants(root: int) -> list[int]:
    """root and every process below it, from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo += children.get(pid, [])
    return found


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


class PeakMemory:
    """Samples the summed RSS of this process and its descendants (Ray's included)."""

    def __init__(self) -> None:
        self.peak, self._stop = 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, sum(rss_bytes(pid) for pid in descendants(os.getpid())))
            time.sleep(0.1)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--skip-loop", action="store_true", help="time only the pipeline")
    args = parser.parse_args()
    config = FeatureConfig(image_size=args.image_size)
    corpus = discover(args.corpus)
    n = len(corpus.utterances)
    print(f"corpus {args.corpus}: {n} files; {os.cpu_count()} CPUs; load {os.getloadavg()}")

    out = Path(tempfile.mkdtemp(prefix="bench-featurize-"))
    try:
        with PeakMemory() as memory:
            start = time.perf_counter()
            summary = run_featurize(
                args.corpus, str(out / "features"), config, progress=lambda _: None
            )
            pipeline_s = time.perf_counter() - start
        assert summary.featurized + summary.rejected == n
    finally:
        shutil.rmtree(out, ignore_errors=True)
    print(
        f"ray pipeline : {pipeline_s:7.2f} s  {n / pipeline_s:8.1f} files/s  "
        f"peak RSS {memory.peak / 2**30:.2f} GiB (driver + Ray processes, Ray start included)"
    )

    if not args.skip_loop:
        labels = corpus.labels
        start = time.perf_counter()
        for u in corpus.utterances:
            featurize_file({**u.__dict__, "utterance_id": u.utterance_id}, config, labels)
        loop_s = time.perf_counter() - start
        print(
            f"single loop  : {loop_s:7.2f} s  {n / loop_s:8.1f} files/s"
            "  (featurize only, no writes)"
        )
        print(f"speed-up     : {loop_s / pipeline_s:.2f}x")


if __name__ == "__main__":
    main()
