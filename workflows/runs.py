"""The RUNS folder, read and summarized without Ray: finished trials and their records.

Layout (a local folder, or a URI every node can reach)::

    RUNS/train_config.json          the resolved TrainConfig the trials share
    RUNS/features_used.json         the FEATURES the trials were trained on (fingerprint)
    RUNS/splits/<split>.json        train/test utterance ids of every split used
    RUNS/trials/<trial>.json        one record per finished trial (metrics, curves, provenance)
    RUNS/models/<trial>.*           the finished trial's model, for predict and export
    RUNS/results.parquet            all trial records, one row each (rebuilt at the end)
    STORAGE/checkpoints/<trial>/    an unfinished trial's state (STORAGE defaults to RUNS)
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from featurize.location import Location

FEATURES_USED = "features_used.json"
RESULT_COLUMNS = (
    "trial", "model", "protocol", "seed", "fold", "split", "wa", "ua", "macro_f1",
    "wall_s", "train_s", "samples_per_s", "params", "flops", "epochs", "device",
)  # fmt: skip


def finished_trials(runs: str) -> set[str]:
    """Names of the trials whose record exists."""
    fs, root = Location(runs).filesystem()
    infos = fs.get_file_info(pafs.FileSelector(f"{root}/trials", allow_not_found=True))
    return {i.base_name[: -len(".json")] for i in infos if i.base_name.endswith(".json")}


def load_records(runs: str) -> list[dict[str, Any]]:
    """Every finished trial's record, sorted by trial name."""
    trials = Location(runs).child("trials")
    names = sorted(finished_trials(runs))
    return [json.loads(trials.child(f"{name}.json").read()) for name in names]


def write_results_table(runs: str) -> None:
    """RUNS/results.parquet: one row per finished trial, from the per-trial records."""
    records = load_records(runs)
    if not records:
        return
    columns = {c: [r.get(c) for r in records] for c in RESULT_COLUMNS}
    columns["confusion"] = [json.dumps(r["confusion"]) for r in records]
    columns["git_commit"] = [r["provenance"]["git_commit"] for r in records]
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.table(columns), buffer)
    Location(runs).child("results.parquet").write(buffer.getvalue().to_pybytes())
