"""Are two runs folders' trials the same? Each trial of REFERENCE that CANDIDATE also has is
compared field by field: the same test clips (``test_ids_sha1``), the same confusion matrix
(so the same WA and UA), and, where both were trained by epochs, the same curves.

    python docs/results/same_records.py docs/results/savee/loso WORK/savee/loso [--models A,B]

REFERENCE is a published folder (docs/results/<corpus>/<protocol>) or a RUNS folder; so is
CANDIDATE. Prints one line per model and exits 1 if a compared trial differs or if no
trial could be compared. A published figure of a deterministic model is reproduced when its
every trial is the same here. The same means: the same test clips, the same confusion
matrix (so WA and UA), the same accuracy curves, and loss curves equal to a relative
``LOSS_RTOL`` (another machine's floating point rounds a loss in its last digits without
moving any prediction); the largest loss and probability gaps are printed for every model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

SAME_FIELDS = ("test_ids_sha1", "confusion", "wa", "ua")
LOSS_RTOL = 1e-4  # a loss curve's values, relative; every other field exactly


def trials(folder: Path) -> dict[str, dict]:
    """{trial name: record} of a runs or published folder."""
    return {p.stem: json.loads(p.read_text()) for p in sorted((folder / "trials").glob("*.json"))}


def differences(reference: dict, candidate: dict) -> list[str]:
    """The fields of ``SAME_FIELDS`` in which the two records differ, and "curves" where an
    accuracy curve differs or a loss curve by more than ``LOSS_RTOL``."""
    fields = [k for k in SAME_FIELDS if reference.get(k) != candidate.get(k)]
    ours, theirs = reference.get("curves") or {}, candidate.get("curves") or {}
    if set(ours) != set(theirs) or any(
        not same_curve(name, ours[name], theirs[name]) for name in ours
    ):
        fields.append("curves")
    return fields


def same_curve(name: str, ours: list, theirs: list) -> bool:
    if len(ours) != len(theirs):
        return False
    if not name.endswith("loss"):
        return ours == theirs
    return relative_gap(ours, theirs) <= LOSS_RTOL


def relative_gap(ours: list, theirs: list) -> float:
    """max |a - b| / |a| over two curves of one length (0 for empty ones)."""
    a, b = np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)
    return float((np.abs(a - b) / np.maximum(np.abs(a), 1e-30)).max(initial=0.0))


def largest_loss_gap(reference: dict, candidate: dict) -> float:
    """``relative_gap`` over the loss curves both records have at one length (0 if none)."""
    ours, theirs = reference.get("curves") or {}, candidate.get("curves") or {}
    return max(
        (relative_gap(ours[k], theirs[k]) for k in ours
         if k.endswith("loss") and len(ours[k]) == len(theirs.get(k, ()))),
        default=0.0,
    )  # fmt: skip


def largest_probability_gap(reference: dict, candidate: dict) -> float:
    """max |p - p'| over the test clips' class probabilities: 0 when either has none,
    infinite when their shapes differ."""
    ours, theirs = reference.get("test_probabilities"), candidate.get("test_probabilities")
    if not ours or not theirs:
        return 0.0
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    if ours.shape != theirs.shape:
        return float("inf")
    return float(np.abs(ours - theirs).max())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("reference", type=Path)
    parser.add_argument("candidate", type=Path)
    parser.add_argument("--models", help="comma-separated model names (default: every model)")
    args = parser.parse_args(argv)
    wanted = set(args.models.split(",")) if args.models else None
    reference, candidate = trials(args.reference), trials(args.candidate)

    by_model: dict[str, dict[str, list[str]]] = {}
    gaps: dict[str, float] = {}
    loss_gaps: dict[str, float] = {}
    for name, record in reference.items():
        model = record["model"]
        if wanted is not None and model not in wanted:
            continue
        verdicts = by_model.setdefault(model, {"same": [], "differ": [], "missing": []})
        other = candidate.get(name)
        if other is None:
            verdicts["missing"].append(name)
            continue
        fields = differences(record, other)
        verdicts["differ" if fields else "same"].append(f"{name} ({', '.join(fields)})")
        gaps[model] = max(gaps.get(model, 0.0), largest_probability_gap(record, other))
        loss_gaps[model] = max(loss_gaps.get(model, 0.0), largest_loss_gap(record, other))

    compared = differing = 0
    for model, verdicts in by_model.items():
        same, differ, missing = verdicts["same"], verdicts["differ"], verdicts["missing"]
        compared += len(same) + len(differ)
        differing += len(differ)
        line = f"{model}: {len(same)} of {len(same) + len(differ)} trials the same"
        line += f" (largest probability gap {gaps.get(model, 0.0):.1e}"
        line += f", largest relative loss gap {loss_gaps.get(model, 0.0):.1e})"
        if missing:
            line += f"; {len(missing)} not in {args.candidate}"
        print(line)
        for name in differ:
            print(f"  differs: {name}")
    if not compared:
        print(f"no trial of {args.reference} is in {args.candidate}", file=sys.stderr)
        return 1
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
