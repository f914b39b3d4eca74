"""CPU training settings that won in ``benchmarks/bench_models.py`` (docs/performance.md).

The training code calls ``configure_threads()`` once per process and
``prepare_for_training(model, device)`` on every model it trains. Measured on the
2-core development machine, att-Res at 128x128, batch 32, 2 threads:

* NCHW, default glibc malloc: 52 samples/s. Each large tensor is a fresh ``mmap``
  whose pages fault in on first touch, every step; on this VM that costs about as
  much as the arithmetic.
* channels_last weights only: 63 (oneDNN convolutions run NHWC without reorders).
* malloc tuned only (``configure_allocator``, freed memory is reused): 70.
* both, as ``prepare_for_training`` does: 81-101 (run-to-run spread on a shared VM).

One thread gives 53 samples/s, so on 2 cores two 1-thread trials side by side
(106 in all) beat one 2-thread trial.

Tried and rejected: ``torch.compile`` (74 samples/s, slower than eager, plus 50-190 s
of compilation per model and per shape); bf16 autocast (10x slower: this CPU has AVX2
but no bf16 instructions); batch 16/64/128 (85/90/90, no gain over 32).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import torch
from torch import nn

# Throughput is flat from 32 to 128 (docs/performance.md); 32 gives twice the updates per
# epoch of 64 on a ~1000-clip corpus.
DEFAULT_BATCH_SIZE = 32

# Environment for processes that train in a thread other than the main one (Ray Train runs
# the training loop in a "TrainingThread"). glibc gives such a thread its own arena, whose
# heaps are unmapped whenever they empty, whatever ``configure_allocator`` says: every step
# then faults its activations' pages in again (measured: 528k page faults and 1.9 s of
# system time per 6 att-Res steps, 29 samples/s, against 12k, 0.2 s and 40 samples/s on the
# main thread). One arena makes every thread use the tuned main heap. Read at process start.
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


def prepare_for_training(model: nn.Module, device: torch.device | str = "cpu") -> nn.Module:
    """Move ``model`` to ``device`` in the fastest memory layout (channels_last for convs)."""
    device = torch.device(device)
    if device.type == "cpu":
        configure_allocator()
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model = model.to(device)
    return model.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
