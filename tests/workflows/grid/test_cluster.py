"""The submission path on a real two-node Ray cluster started on loopback, and cluster.yaml."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]


def test_cluster_yaml_passes_ray_validation_and_holds_no_secrets():
    from ray.autoscaler._private.util import prepare_config, validate_config

    text = (REPO / "cluster.yaml").read_text()
    config = yaml.safe_load(text)
    validate_config(prepare_config(config))  # Ray's own schema check; no cloud call
    assert config["available_node_types"]["gpu_worker"]["resources"]["GPU"] == 1
    assert any("attres-flow" in c for c in config["setup_commands"])
    assert "--dashboard-host=127.0.0.1" in " ".join(config["head_start_ray_commands"])
    # Token authentication: the head makes the token before it starts, workers get a copy,
    # and every `ray start` runs with the mode set (a token alone does not turn it on).
    head = " ".join(config["head_start_ray_commands"])
    assert -1 < head.find("ray get-auth-token --generate") < head.find("ray start --head")
    assert "~/.ray/auth_token" in config["cluster_synced_files"]
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert any(c.startswith("export RAY_AUTH_MODE=token;") for c in config[key] if "start" in c)
    lowered = text.lower()
    assert "aws_secret" not in lowered and "access_key" not in lowered
    broken = dict(config, available_node_types={"head": {"resources": {}, "bogus": 1}})
    with pytest.raises(Exception, match="bogus"):
        validate_config(prepare_config(broken))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def processes_under(tag: str) -> set[int]:
    """Processes whose command line holds ``tag``, and all their descendants."""
    children: dict[int, list[int]] = {}
    hits = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().decode(errors="ignore")
        except OSError:
            continue
        children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
        if tag in cmdline:
            hits.append(int(entry))
    found: set[int] = set()
    while hits:
        pid = hits.pop()
        if pid not in found:
            found.add(pid)
            hits += children.get(pid, [])
    return found


def stop_cluster(temp_dir: str) -> None:
    """Stop only this cluster's processes (``ray stop`` would also stop the tests' own Ray)."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in processes_under(temp_dir):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        time.sleep(1.0)


def run(cmd: list[str], env: dict, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


def submit(cmd: list[str], env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    """``ray job submit``, retried while the head's job agent is still starting (loaded hosts)."""
    deadline = time.monotonic() + 120
    while True:
        job = run(cmd, env, timeout)
        starting = "No available agent to submit job" in job.stdout + job.stderr
        if not starting or time.monotonic() > deadline:
            return job
        time.sleep(3)


@pytest.fixture
def two_node_cluster():
    """`ray start --head` plus a second node with `ray start --address`, loopback only, with
    token authentication on as the README sets it up on a fresh machine."""
    temp_dir = tempfile.mkdtemp(prefix="rc-", dir="/tmp")  # short: Ray's socket paths
    home = os.path.join(temp_dir, "home")  # fresh: no ~/.ray/auth_token from earlier runs
    os.mkdir(home)
    gcs, dashboard = free_port(), free_port()
    env = dict(os.environ, HOME=home, RAY_AUTH_MODE="token", RAY_USAGE_STATS_ENABLED="0")
    for name in ("RAY_ADDRESS", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(name, None)
    common = ["--node-ip-address", "127.0.0.1", "--disable-usage-stats"]

    def own_temp_dir(name: str) -> list[str]:
        """Each node its own temp dir, as on separate machines: a node's runtime-env agent
        deletes and re-extracts a job's working_dir when it sets it up, and in a shared
        folder that deleted the directory the other node's job driver was running in."""
        return ["--temp-dir", os.path.join(temp_dir, name)]

    def agent_ports() -> list[str]:
        """Each node's agents on free ports: Ray's fixed defaults (52365, ...) would collide
        with the other node, and with any other Ray cluster running on this machine."""
        flags = ("--dashboard-agent-listen-port", "--dashboard-agent-grpc-port",
                 "--runtime-env-agent-port", "--metrics-export-port")  # fmt: skip
        return [arg for flag in flags for arg in (flag, str(free_port()))]

    try:
        token = run(["ray", "get-auth-token", "--generate"], env)
        assert token.returncode == 0 and Path(home, ".ray", "auth_token").is_file(), token.stderr

        def start_head() -> subprocess.CompletedProcess:
            return run(["ray", "start", "--head", "--port", str(gcs), "--num-cpus", "1",
                        "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
                        "--dashboard-port", str(dashboard), *agent_ports(),
                        *own_temp_dir("h"), *common], env)  # fmt: skip

        head = start_head()
        if head.returncode != 0 and "timed out during startup" in head.stderr:
            # Ray gives a raylet a fixed 30 s to register; on a loaded 2-core machine its
            # agents can start slower than that. Start the head once more.
            stop_cluster(temp_dir)
            head = start_head()
        assert head.returncode == 0, head.stderr
        node = run(
            ["ray", "start", "--address", f"127.0.0.1:{gcs}", "--num-cpus", "1",
             *agent_ports(), *own_temp_dir("n"), *common], env,
        )  # fmt: skip
        assert node.returncode == 0, node.stderr
        yield {"gcs": f"127.0.0.1:{gcs}", "jobs": f"http://127.0.0.1:{dashboard}", "env": env}
    finally:
        stop_cluster(temp_dir)
        shutil.rmtree(home, ignore_errors=True)  # the token
        assert not processes_under(temp_dir), "cluster processes left running"


def test_featurize_and_train_all_jobs_on_two_nodes(two_node_cluster, synth_corpus, tmp_path):
    env, jobs = two_node_cluster["env"], two_node_cluster["jobs"]
    deadline = time.monotonic() + 90
    while True:  # the second node shows in the autoscaler's view after a few seconds
        status = run(["ray", "status", "--address", two_node_cluster["gcs"]], env)
        if "2.0 CPU" in status.stdout or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert status.returncode == 0 and "2.0 CPU" in status.stdout, status.stdout + status.stderr
    # Authentication is really on: a client without the token is refused by the cluster.
    stranger = {k: v for k, v in env.items() if k != "RAY_AUTH_MODE"} | {"HOME": str(tmp_path)}
    refused = run(["ray", "status", "--address", two_node_cluster["gcs"]], stranger)
    assert refused.returncode != 0 and "InvalidAuthToken" in refused.stderr, refused.stderr
    with pytest.raises(urllib.error.HTTPError, match="401"):
        urllib.request.urlopen(f"{jobs}/api/jobs/", timeout=30)
    features, runs = tmp_path / "features", tmp_path / "runs"
    job_cmd = ["ray", "job", "submit", "--address", jobs, "--working-dir", str(REPO), "--"]
    job = submit([*job_cmd, "attres-flow", "featurize", str(synth_corpus), "--out", str(features),
               "--image-size", "32"], env)  # fmt: skip
    assert job.returncode == 0 and "succeeded" in job.stdout + job.stderr, job.stdout + job.stderr
    assert "36 featurized" in job.stdout
    job = submit([*job_cmd, "attres-flow", "train-all", str(features), "--out", str(runs),
               "--models", "att-Res0,SVM", "--epochs", "1"], env, timeout=400)  # fmt: skip
    assert job.returncode == 0, job.stdout + job.stderr
    records = [json.loads(p.read_text()) for p in sorted((runs / "trials").glob("*.json"))]
    assert [r["model"] for r in records] == ["att-Res0", "SVM"]
    assert all(r["n_test"] == 8 for r in records)
    # --address joins the running cluster directly, without the jobs server.
    direct = run(["attres-flow", "featurize", str(synth_corpus), "--out", str(features),
                  "--image-size", "32", "--address", two_node_cluster["gcs"]],
                 env, 300)  # fmt: skip
    assert direct.returncode == 0 and "36 skipped" in direct.stdout, direct.stdout + direct.stderr
