"""The host settings a trial applies before it trains."""

from __future__ import annotations

import torch

from workflows.grid import runtime


def test_threads_follow_the_trial_cpus_and_the_allocator_is_tuned_once() -> None:
    before = torch.get_num_threads()
    try:
        assert runtime.configure_threads() >= 1
        runtime.tune_process(1.5, torch.device("cpu"))  # a trial holding 1.5 CPUs: 1 thread
        assert torch.get_num_threads() == 1
        runtime.tune_process(2, torch.device("cpu"))
        assert torch.get_num_threads() == 2
        assert runtime.configure_allocator() is runtime.configure_allocator()  # idempotent
    finally:
        torch.set_num_threads(before)
