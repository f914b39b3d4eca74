"""The paper's claims, each a difference of two rows of its tables, checked on RUNS.

Each claim is compared paired (``compare.compare``: by seed, or by held-out speaker under
loso) and given a verdict. The paper measured CASIA under its random 80/20 split, so only
there is the size of its difference tested; elsewhere (loso, another corpus) only its sign.
Its figure is one run: its size is set against where one run of ours falls (the prediction
interval), its sign against our mean's interval.
"""

from __future__ import annotations

from typing import Any

from workflows.record import TrialRecord
from workflows.results.compare import VERDICT_PAIRS, compare, difference_cells, unit_title
from workflows.results.tables import PAPER_TABLES, is_casia
from workflows.results.text import csv_table, text_table

# (what the paper claims, model, reference): the claim is that model - reference has the
# sign, and under the paper's protocol on CASIA the size, of the paper's tables.
PAPER_CLAIMS = (
    ("attention helps", "att-Res", "att-Res0"),
    ("the Res-A block beats attention after the backbone", "att-Res1", "att-Res0+att"),
    ("attention where att-Res puts it beats att-Res2's placement", "att-Res", "att-Res2"),
    ("too much attention hurts", "att-Res3", "att-Res"),
    ("att-Res far above ResNet-18", "att-Res", "ResNet-18"),
    ("att-Res above AlexNet", "att-Res", "AlexNet"),
    ("att-Res above CNN", "att-Res", "CNN"),
    ("att-Res above LSTM+CNN", "att-Res", "LSTM+CNN"),
    ("att-Res above SVM", "att-Res", "SVM"),
)
# Beyond the paper: claims it does not make, each that model - reference is above 0, tested
# for its sign only. The reference is the field's first baseline: openSMILE functionals,
# each speaker z-scored by their own statistics, and a linear classifier chosen on
# validation speakers (attres/models/functionals.py).
BEYOND_CLAIMS = (("att-Res above a standard-feature linear model", "att-Res", "openSMILE-linear"),)
CLAIM_COLUMNS = (
    "protocol", "claim", "model", "reference", "paper_diff", "size_tested", "paired_by",
    "mean_diff", "ci_low", "ci_high", "pi_low", "pi_high", "n_pairs", "verdict",
)  # fmt: skip


def paper_difference(model: str, reference: str) -> float:
    """``model - reference`` in the paper's tables, in points."""
    accuracy = {m: acc for rows in PAPER_TABLES.values() for m, acc in rows}
    return round(accuracy[model] - accuracy[reference], 1)


def claim_verdict(row: dict[str, Any], paper_diff: float, size_tested: bool) -> str:
    """The verdict on one claim from its paired comparison ``row``.

    The sign holds when the mean's 95 % interval excludes 0 on the paper's side, and is
    reversed when it excludes 0 on the other. Sign only: "holds", "reversed" or "not
    resolved at this spread". With the size tested: "not reproduced: reversed"; else, when
    the prediction interval (one run of ours) holds the paper's difference, "reproduced" if
    the sign holds and "not resolved at this spread" if not; else "not reproduced", saying
    whether the sign held. Fewer than ``VERDICT_PAIRS`` pairs: "not resolved yet".
    """
    n, low, high = row["n_pairs"], row["ci_low"], row["ci_high"]
    if n < VERDICT_PAIRS or low is None or high is None:
        return f"not resolved yet: {n} {row['paired_by']}{'' if n == 1 else 's'}"
    if paper_diff == 0:
        raise ValueError("a claim needs a paper difference other than 0")
    positive = paper_diff > 0
    holds = low > 0 if positive else high < 0
    reverses = high < 0 if positive else low > 0
    if not size_tested:
        return "holds" if holds else "reversed" if reverses else "not resolved at this spread"
    if reverses:
        return "not reproduced: reversed"
    if row["pi_low"] <= paper_diff <= row["pi_high"]:
        return "reproduced" if holds else "not resolved at this spread"
    if holds:
        smaller = paper_diff > row["pi_high"] if positive else paper_diff < row["pi_low"]
        return f"not reproduced: same sign, {'smaller' if smaller else 'larger'} than the paper's"
    return "not reproduced: the paper's difference lies outside where one run of ours falls"


def claim_rows(records: list[TrialRecord]) -> list[dict[str, Any]]:
    """One row per (protocol, claim) whose two models both have runs under that protocol:
    the paper's claims, then those beyond it (``paper_diff`` None)."""
    casia = is_casia(records)
    claims = [(*claim, True) for claim in PAPER_CLAIMS] + [(*c, False) for c in BEYOND_CLAIMS]
    rows = []
    for protocol in sorted({r.protocol for r in records}):
        trained = {r.model for r in records if r.protocol == protocol}
        for claim, model, reference, papers in claims:
            if not {model, reference} <= trained:
                continue
            row = compare(records, model, reference, protocol)
            paper_diff = paper_difference(model, reference) if papers else None
            size_tested = papers and casia and protocol == "paper"
            row.update(
                claim=claim,
                paper_diff=paper_diff,
                size_tested=size_tested,
                # a claim beyond the paper says "above": only its sign is tested
                verdict=claim_verdict(row, 1.0 if paper_diff is None else paper_diff, size_tested),
            )
            rows.append(row)
    return rows


def render_claims(rows: list[dict[str, Any]], fmt: str = "markdown") -> str:
    """The claims as markdown, LaTeX or CSV, one table per protocol."""
    if fmt == "csv":
        return csv_table(rows, CLAIM_COLUMNS)
    blocks = []
    for protocol in dict.fromkeys(r["protocol"] for r in rows):
        group = [r for r in rows if r["protocol"] == protocol]
        unit = group[0]["paired_by"]
        title = f"Claims of the paper, protocol {protocol}, paired by {unit_title(unit)}"
        header = ["Claim", "Difference", "Paper, points", "Ours, points", "95 % interval"]
        header += ["One run, 95 %", f"{unit.title()}s", "Verdict"]
        body = [
            [
                r["claim"],
                f"{r['model']} - {r['reference']}",
                "beyond the paper"
                if r["paper_diff"] is None
                else f"{r['paper_diff']:+.1f}" + ("" if r["size_tested"] else " (CASIA, 80/20)"),
                *difference_cells(r),
            ]
            for r in group
        ]
        blocks.append(text_table(fmt, title, header, body))
    return "\n".join(blocks)
