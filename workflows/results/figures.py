"""The results as pictures: the paper's claims as a forest plot, and every run of every model.

Each figure is made in two steps: ``*_points`` turns records (or claim rows) into exactly
the values drawn, and ``draw_*`` draws those values, so what a figure shows can be checked
against the records without reading pixels.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from workflows.record import TrialRecord
from workflows.results.compare import pair_unit
from workflows.results.tables import PAPER_TABLES, is_casia, model_order

DPI = 110


@dataclass(frozen=True)
class ClaimPoint:
    protocol: str
    label: str  # "att-Res - att-Res0: attention helps"
    mean: float | None  # paired mean difference, WA points
    ci: tuple[float, float] | None  # its 95 % interval
    pi: tuple[float, float] | None  # where one more run's difference would fall, 95 %
    paper: float | None  # the paper's difference (one run, CASIA 80/20); None: not its claim
    verdict: str


def claim_points(rows: list[dict[str, Any]]) -> list[ClaimPoint]:
    """One point per claim row (``claims.claim_rows``), in its order."""
    return [
        ClaimPoint(
            protocol=r["protocol"],
            label=f"{r['model']} - {r['reference']}: {r['claim']}",
            mean=r["mean_diff"],
            ci=None if r["ci_low"] is None else (r["ci_low"], r["ci_high"]),
            pi=None if r["pi_low"] is None else (r["pi_low"], r["pi_high"]),
            paper=r["paper_diff"],
            verdict=r["verdict"],
        )
        for r in rows
    ]


def draw_claims(points: list[ClaimPoint]) -> bytes:
    """Forest plot, one panel per protocol: the mean difference with its 95 % interval, the
    one-run interval as a lighter band, the paper's figure as a marker, zero marked, the
    verdict at the right."""
    plt = _pyplot()
    protocols = list(dict.fromkeys(p.protocol for p in points))
    heights = [len([p for p in points if p.protocol == q]) for q in protocols]
    fig, axes = plt.subplots(
        len(protocols), 1, figsize=(13, 0.5 * sum(heights) + 1.3 * len(protocols)),
        squeeze=False, gridspec_kw={"height_ratios": heights},
    )  # fmt: skip
    for ax, protocol in zip(axes[:, 0], protocols, strict=True):
        mine = [p for p in points if p.protocol == protocol]
        for y, p in enumerate(reversed(mine)):
            if p.pi is not None:
                ax.plot(p.pi, [y, y], color="#9ecae1", linewidth=7, solid_capstyle="butt")
            if p.ci is not None:
                ax.plot(p.ci, [y, y], color="#08519c", linewidth=2.2)
            if p.mean is not None:
                ax.plot(p.mean, y, "o", color="#08519c")
            if p.paper is not None:
                ax.plot(p.paper, y, "D", color="#d94801", markersize=6)
            short = p.verdict.split(":")[0]  # the table beside it has the whole verdict
            ax.annotate(short, (1.02, y), xycoords=("axes fraction", "data"), fontsize=8,
                        va="center")  # fmt: skip
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_ylim(-0.6, len(mine) - 0.4)
        ax.set_yticks(range(len(mine)), [p.label for p in reversed(mine)], fontsize=8)
        ax.set_title(f"Claims of the paper, protocol {protocol}", fontsize=10)
    axes[-1, 0].set_xlabel(
        "WA difference, points: ours (blue dot, 95 % interval), one run of ours (light band), "
        "the paper's (orange)"
    )
    fig.subplots_adjust(left=0.36, right=0.68, top=0.95, bottom=0.08, hspace=0.35)
    return _png(fig, plt, tight=False)


@dataclass(frozen=True)
class ModelRuns:
    protocol: str
    table: str  # "Table 1" or "Table 2" (later models follow Table 2)
    model: str
    unit: str  # "seed", or "fold" under loso (a held-out speaker)
    runs: list[tuple[int, float, float]]  # (seed or fold, WA %, UA %), one per run
    mean: float  # WA %, the mean of the runs
    ci: tuple[float, float] | None  # 95 % t-interval of that mean
    paper: float | None  # the paper's accuracy (its protocol on CASIA only)


def run_points(records: list[TrialRecord]) -> list[ModelRuns]:
    """Per (protocol, model): every seed's WA and UA (its folds averaged), or under loso
    every held-out speaker's (its seeds averaged), in the paper's table order."""
    from scipy import stats  # type: ignore[import-untyped]

    paper = {m: acc for rows in PAPER_TABLES.values() for m, acc in rows}
    table1 = {m for m, _ in PAPER_TABLES["Table 1"]}
    casia = is_casia(records)
    out = []
    for protocol in sorted({r.protocol for r in records}):
        unit = pair_unit(protocol)
        for model in model_order(records):
            mine = [r for r in records if r.model == model and r.protocol == protocol]
            if not mine:
                continue
            groups: dict[int, list[TrialRecord]] = {}
            for r in mine:
                groups.setdefault(r.seed if unit == "seed" else r.fold, []).append(r)
            runs = [(key, mean_of(g, "wa"), mean_of(g, "ua")) for key, g in sorted(groups.items())]
            wa = np.array([w for _, w, _ in runs])
            ci = None
            if len(wa) > 1:
                half = stats.t.ppf(0.975, len(wa) - 1) * wa.std(ddof=1) / np.sqrt(len(wa))
                ci = (float(wa.mean() - half), float(wa.mean() + half))
            out.append(
                ModelRuns(
                    protocol=protocol,
                    table="Table 1" if model in table1 else "Table 2",
                    model=model,
                    unit=unit,
                    runs=runs,
                    mean=float(wa.mean()),
                    ci=ci,
                    paper=paper.get(model) if casia and protocol == "paper" else None,
                )
            )
    return out


def mean_of(records: list[TrialRecord], metric: str) -> float:
    """The records' mean ``metric`` ("wa", "ua") in percent."""
    return 100 * float(np.mean([getattr(r, metric) for r in records]))


def draw_runs(points: list[ModelRuns]) -> bytes:
    """Per protocol a panel: every run's WA as a dot (under loso one colour per held-out
    speaker), the mean and its interval, the paper's figure as a marker; Table 1's models,
    then Table 2's."""
    plt = _pyplot()
    protocols = list(dict.fromkeys(p.protocol for p in points))
    most = max(len([p for p in points if p.protocol == q]) for q in protocols)
    fig, axes = plt.subplots(
        len(protocols), 1, figsize=(max(7.0, 0.75 * most + 2), 3.6 * len(protocols)),
        squeeze=False,
    )  # fmt: skip
    colours = plt.get_cmap("tab10")
    for ax, protocol in zip(axes[:, 0], protocols, strict=True):
        mine = sorted((p for p in points if p.protocol == protocol), key=lambda p: p.table)
        for x, p in enumerate(mine):
            for i, (key, wa, _) in enumerate(p.runs):
                colour = colours(key % 10) if p.unit == "fold" else "#636363"
                offset = (i - (len(p.runs) - 1) / 2) * 0.06
                ax.plot(x + offset, wa, "o", color=colour, markersize=4, alpha=0.8)
            if p.ci is not None:
                ax.plot([x + 0.28, x + 0.28], p.ci, color="#08519c", linewidth=2)
            ax.plot([x + 0.18, x + 0.38], [p.mean, p.mean], color="#08519c", linewidth=2)
            if p.paper is not None:
                ax.plot(x - 0.3, p.paper, "D", color="#d94801", markersize=6)
        boundary = sum(p.table == "Table 1" for p in mine) - 0.5
        if 0 < boundary < len(mine) - 1:
            ax.axvline(boundary, color="#bdbdbd", linestyle="--", linewidth=0.8)
        ax.set_xticks(range(len(mine)), [p.model for p in mine], rotation=30, ha="right",
                      fontsize=8)  # fmt: skip
        if mine[0].unit == "fold":
            folds = sorted({key for p in mine for key, _, _ in p.runs})
            handles = [
                plt.Line2D([], [], marker="o", linestyle="", color=colours(k % 10)) for k in folds
            ]
            ax.legend(handles, [f"fold {k}" for k in folds], fontsize=7, loc="upper right",
                      title="held out", title_fontsize=7)  # fmt: skip
        by = "held-out fold (a colour each)" if mine[0].unit == "fold" else "seed"
        ax.set_ylabel("WA %")
        ax.set_title(
            f"Every run, protocol {protocol}: one dot per {by};\nmean and 95 % interval in "
            "blue; the paper's figure in orange",
            fontsize=9,
        )
    return _png(fig, plt)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig: Any, plt: Any, tight: bool = True) -> bytes:
    if tight:
        fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()
