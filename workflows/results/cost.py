"""What the trials of RUNS cost: trials, resumes, devices, parameters and wall time per model."""

from __future__ import annotations

from typing import Any

import numpy as np

from workflows.record import TrialRecord
from workflows.results.tables import model_order
from workflows.results.text import csv_table, text_table

COST_COLUMNS = (
    "protocol", "model", "n_trials", "n_resumed", "device", "params", "wall_s_mean",
    "wall_s_total",
)  # fmt: skip


def cost_rows(records: list[TrialRecord]) -> list[dict[str, Any]]:
    """What the trials cost, per (protocol, model), then one ``all models`` row per protocol.

    ``wall_s_mean`` and ``wall_s_total`` are over the trials' own wall times (trials that
    ran side by side each count in full, so the total is not the grid's elapsed time).
    ``n_resumed`` counts the trials resumed from a checkpoint; their wall time adds their
    earlier attempts up to the last checkpoint (``earlier_attempts_s``), except in records
    written before it was kept, which count the last attempt only. ``device`` lists the
    devices the trials ran on. A fused trial's row shows what its two trials cost; the
    ``all models`` row counts the trials that ran, each once, so fused trials are not in it.
    """
    rows = []
    for protocol in sorted({r.protocol for r in records}):
        runs = [r for r in records if r.protocol == protocol]
        groups = [(m, [r for r in runs if r.model == m]) for m in model_order(runs)]
        ran = [r for r in runs if r.fusion is None]
        for model, group in [g for g in groups if g[1]] + [("all models", ran)]:
            walls = [r.wall_s for r in group]
            params = {r.params for r in group if r.params is not None}
            params = params if model != "all models" else set()
            rows.append(
                {
                    "protocol": protocol,
                    "model": model,
                    "n_trials": len(group),
                    "n_resumed": sum(bool(r.resumed_from_epoch) for r in group),
                    # cpu, or cuda whatever its index
                    "device": " ".join(sorted({r.device.split(":")[0] for r in group})),
                    "params": params.pop() if len(params) == 1 else None,  # one architecture
                    "wall_s_mean": float(np.mean(walls)),
                    "wall_s_total": float(np.sum(walls)),
                }
            )
    return rows


def render_cost(rows: list[dict[str, Any]], fmt: str = "markdown") -> str:
    """The cost rows as one table per protocol (markdown or LaTeX), or CSV."""
    if fmt == "csv":
        return csv_table(rows, COST_COLUMNS)
    blocks = []
    for protocol in dict.fromkeys(r["protocol"] for r in rows):
        title = f"Cost of the trials, protocol {protocol}"
        header = ["Model", "Trials", "Resumed", "Device", "Parameters", "Wall s per trial",
                  "Wall s in all"]  # fmt: skip
        body = [
            [r["model"], str(r["n_trials"]), str(r["n_resumed"]), r["device"],
             *("" if v is None else f"{v:,.0f}"
               for v in (r["params"], r["wall_s_mean"], r["wall_s_total"]))]
            for r in rows if r["protocol"] == protocol
        ]  # fmt: skip
        blocks.append(text_table(fmt, title, header, body))
    return "\n".join(blocks)
