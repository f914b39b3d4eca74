"""CPU training settings that won in ``benchmarks/bench_models.py`` (docs/performance.md).

The training code calls ``configure_threads()`` once per process and
``prepare_for_training(model, device)`` on every model it trains:

* channels_last weights: oneDNN convolutions run in NHWC without reorders.
* glibc malloc tuned (``configure_allocator``): without it every large tensor is a fresh
  ``mmap`` whose pages fault in on first touch, which on this VM costs more than the
  arithmetic; keeping freed memory in the heap reuses pages already mapped.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

import torch
from torch import nn

DEFAULT_BATCH_SIZE = 64  # samples per step; see docs/performance.md for the sweep

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
    return model.to(device=device, memory_format=torch.channels_last)
