"""Joining a Ray cluster or starting a local instance, once per process."""

from __future__ import annotations

import os


def ensure_ray(address: str | None = None, num_cpus: int | None = None, verbose: bool = False):
    """Connect to ``address`` (or $RAY_ADDRESS), else start a local instance; reuse one if up.

    A local instance gets the machine's CPUs, no dashboard, and is bound to loopback.
    Returns the imported ``ray`` module.
    """
    import ray

    if ray.is_initialized():
        return ray
    common = {"log_to_driver": verbose, "logging_level": "INFO" if verbose else "WARNING"}
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, **common)
    else:
        ray.init(
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            **common,
        )
    return ray
