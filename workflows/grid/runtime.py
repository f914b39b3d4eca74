"""How a training process is set up on its host: allocator, threads, worker environment.

The trial applies these (``tune_process``) before it trains; ``attres`` itself stays free of
host-specific code. Why each setting, with the measurements: docs/performance.md,
"Settings".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import torch

# Environment for processes that train in a thread other than the main one (Ray Train runs
# the training loop in a "TrainingThread"): glibc gives such a thread an arena of its own
# that ``configure_allocator`` does not reach; one arena makes every thread use the tuned
# main heap. Read at process start.
WORKER_ENV = {"MALLOC_ARENA_MAX": "1"}

_M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
_M_MMAP_MAX = -4
_allocator_configured = False


def configure_allocator() -> bool:
    """Keep large allocations in glibc's heap and freed memory mapped; True if applied.

    Process-wide and idempotent; a no-op off glibc Linux. Memory freed by training stays
    with the process (its peak resident size), which is what a training worker wants.
    """
    global _allocator_configured
    if _allocator_configured:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (e.g. musl)
    _allocator_configured = bool(mallopt(_M_MMAP_MAX, 0)) and bool(
        mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    )
    return _allocator_configured


def configure_threads(num_threads: int | None = None) -> int:
    """Intra-op threads = the cores this process may use (or ``num_threads``); returns it."""
    if num_threads is None:
        num_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    torch.set_num_threads(max(1, num_threads))
    return torch.get_num_threads()


def tune_process(cpus: float, device: torch.device) -> None:
    """Set up this process to train on ``device`` with ``cpus`` cores (a reused Tune actor
    calls it again for every trial, so a trial never inherits the last one's threads)."""
    configure_threads(max(1, int(cpus)))
    if device.type == "cpu":
        configure_allocator()
