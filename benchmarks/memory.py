"""The memory of a node as the benchmarks report it: PSS summed over a process and every
process below it (a local Ray instance's raylet, object store and workers), so pages two
processes share, the object store's among them, count once.

    from memory import PeakMemory  # (benchmarks/ is the script's folder)
    with PeakMemory() as memory:
        ...
    memory.pss, memory.rss, memory.largest  # peaks, bytes
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


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


def memory_bytes(pid: int) -> tuple[int, int]:
    """(PSS, RSS) of one process, from /proc/PID/smaps_rollup (Linux)."""
    found = {"Pss:": 0, "Rss:": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            key, value, *_ = line.split()
            if key in found:
                found[key] = int(value) * 1024
    except (OSError, ValueError):
        pass
    return found["Pss:"], found["Rss:"]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used, from /proc/PID/stat (Linux); 0 if gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_name(pid: int) -> str:
    """A Ray worker's title (``ray::run_trial``, ``ray::IDLE``), a Python script's name
    (``dashboard.py``, Ray's ``monitor.py``) or the program's name."""
    try:
        words = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return "?"
    if words[0].startswith("ray::"):
        return words[0].split()[0]
    if Path(words[0]).name.startswith("python"):
        script = next((w for w in words[1:] if w.endswith(".py")), None)
        if script:
            return Path(script).name
    return Path(words[0]).name


class PeakMemory:
    """Samples, once a second, the summed PSS and RSS of this process and its descendants,
    and the peak PSS of this process (``driver``) and of the largest other one (``largest``,
    with its name). ``at_peak``: the sample with the highest summed PSS, as {process name
    (``driver`` for this one): PSS summed over the processes of that name}, an idle Ray
    worker named after the last task seen running in it (``ray::IDLE after ray::X``). ``cpu``: CPU
    seconds by process name over the run (a process's last sample: what it used in the
    last second before it exited is missed); ``own_cpu``: the sampler's, in the driver's."""

    def __init__(self, interval_s: float = 1.0) -> None:
        self.pss = self.rss = self.driver = self.largest = 0
        self.largest_name = ""
        self.at_peak: dict[str, int] = {}
        self._cpu: dict[int, tuple[str, float]] = {}  # pid -> (name, CPU seconds so far)
        self._ran: dict[int, str] = {}  # pid -> the last name other than ray::IDLE it had
        self.own_cpu = 0.0  # CPU seconds of the sampling itself, part of the driver's
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._stop.is_set():
            usage = {pid: memory_bytes(pid) for pid in descendants(me)}
            names = {}
            for pid in usage:  # named each time: a Ray worker's title changes with its task
                names[pid] = name = "driver" if pid == me else process_name(pid)
                self._cpu[pid] = (name, cpu_seconds(pid))
                if name != "ray::IDLE":
                    self._ran[pid] = name
                elif pid in self._ran:
                    names[pid] = f"ray::IDLE after {self._ran[pid]}"
            node = sum(pss for pss, _ in usage.values())
            if node > self.pss:
                self.pss, self.at_peak = node, {}
                for pid, (pss, _) in usage.items():
                    self.at_peak[names[pid]] = self.at_peak.get(names[pid], 0) + pss
            self.rss = max(self.rss, sum(rss for _, rss in usage.values()))
            self.driver = max(self.driver, usage.get(me, (0, 0))[0])
            others = [(pss, pid) for pid, (pss, _) in usage.items() if pid != me]
            if others and max(others)[0] > self.largest:
                self.largest, pid = max(others)
                self.largest_name = process_name(pid)
            self.own_cpu = time.thread_time()
            time.sleep(self.interval_s)  # a pass reads ~10 smaps_rollup files: ~50 ms of a core

    @property
    def cpu(self) -> dict[str, float]:
        by_name: dict[str, float] = {}
        for name, seconds in self._cpu.values():
            by_name[name] = by_name.get(name, 0.0) + seconds
        return dict(sorted(by_name.items(), key=lambda item: -item[1]))

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
