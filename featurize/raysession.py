"""Joining a Ray cluster or starting a local instance, once per process."""

from __future__ import annotations

import os

from featurize.location import Location


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
            address="local",  # a fresh instance, even if a `ray start` cluster runs here
            num_cpus=num_cpus or os.cpu_count(),
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            **common,
        )
    return ray


class SharedPathError(ValueError):
    """A local path that some node of a multi-node cluster cannot see."""


def require_visible_on_all_nodes(path: str) -> None:
    """Refuse a local folder that not every alive node of the cluster can see.

    URIs (s3://, gs://, ...) pass; so does any path on a single-node cluster. On several
    nodes a marker file is written and one task per node looks for it, so results and
    checkpoints are never written where the driver cannot find them again.
    """
    import uuid

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    location = Location(path)
    if location.is_uri:
        return
    nodes = [n for n in ray.nodes() if n["Alive"]]
    if len(nodes) < 2:
        return
    folder = str(location)
    os.makedirs(folder, exist_ok=True)
    marker = os.path.join(folder, f"_visible-{uuid.uuid4().hex}")
    open(marker, "w").close()
    try:
        probe = ray.remote(num_cpus=0)(os.path.exists)
        seen = ray.get(
            [
                probe.options(
                    scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False)
                ).remote(marker)
                for n in nodes
            ]
        )
    finally:
        os.remove(marker)
    blind = [n["NodeManagerAddress"] for n, ok in zip(nodes, seen, strict=True) if not ok]
    if blind:
        raise SharedPathError(
            f"{folder} is a local folder that cluster node(s) {', '.join(blind)} cannot see; "
            "on a multi-node cluster use a shared filesystem or a URI such as s3://bucket/path"
        )
