"""The recipe search and its test, read from the published folders (the recipe issue).

    python docs/results/recipe_table.py

Prints two markdown tables. The search: each candidate's UA % on validation speakers
(``docs/results/<corpus>/recipe-search``, ``recipe-search-extra``; no test speaker read),
per corpus and their mean; the candidate with the best mean is the one chosen. The test:
the chosen recipe (registered as ``SER-recipe``) and eGeMAPS-LR, on the same features, on
every corpus's test folds (``<corpus>/recipe-test``), and the issue's targets (the
recipe's mean at least 3 points above eGeMAPS-LR's, no corpus more than 1 point below it).
``docs/results/run_recipe_search.sh`` makes the folders.
"""

from __future__ import annotations

import csv
from pathlib import Path

HERE = Path(__file__).parent
# corpus, its folder, its speaker-independent test protocol
CORPORA = (
    ("CASIA", "casia", "leave one speaker out"),
    ("RAVDESS", "ravdess", "leave one actor out"),
    ("SAVEE", "savee", "leave one speaker out"),
    ("CREMA-D", "crema-d", "5 folds of whole actors"),
    ("TESS", "tess", "leave one speaker out"),
)
RECIPE = "SER-recipe"
MLP_ENSEMBLE = "eGeMAPS-MLP, 3 seeds' probabilities averaged"
EXTRA = "eGeMAPS-LR, other corpora's clips added (weight 0.3)"


def read_ua(table: Path) -> dict[str, float]:
    """{model: mean UA %} of a published results.csv (models with records only)."""
    if not table.is_file():
        return {}
    with table.open() as f:
        return {row["model"]: float(row["ua_mean"]) for row in csv.DictReader(f) if row["ua_mean"]}


def read_ensembles(table: Path) -> dict[str, float]:
    """{model: UA %} of a published ensembles.csv (the seed ensembles)."""
    if not table.is_file():
        return {}
    with table.open() as f:
        return {row["model"]: float(row["ua"]) for row in csv.DictReader(f)}


def search_scores() -> dict[str, dict[str, float]]:
    """{candidate: {corpus: validation UA %}} over the searched corpora."""
    scores: dict[str, dict[str, float]] = {}
    for corpus, folder, _ in CORPORA:
        found = read_ua(HERE / folder / "recipe-search" / "results.csv")
        if not found:
            continue
        mlp = read_ensembles(HERE / folder / "recipe-search" / "ensembles.csv")
        if "eGeMAPS-MLP" in mlp:
            found[MLP_ENSEMBLE] = mlp["eGeMAPS-MLP"]
        extra = read_ua(HERE / folder / "recipe-search-extra" / "results.csv")
        if "eGeMAPS-LR" in extra:
            found[EXTRA] = extra["eGeMAPS-LR"]
        for candidate, ua in found.items():
            scores.setdefault(candidate, {})[corpus] = ua
    return scores


def searched_corpora(scores: dict[str, dict[str, float]]) -> list[str]:
    return [c for c, _, _ in CORPORA if any(c in row for row in scores.values())]


def chosen(scores: dict[str, dict[str, float]]) -> str | None:
    """The candidate with the best mean validation UA over the searched corpora (those
    missing a corpus are not eligible)."""
    corpora = searched_corpora(scores)
    full = {m: row for m, row in scores.items() if all(c in row for c in corpora)}
    if not full:
        return None
    return max(full, key=lambda m: sum(full[m].values()) / len(corpora))


def search_markdown(scores: dict[str, dict[str, float]]) -> str:
    corpora = searched_corpora(scores)
    best = chosen(scores)
    lines = [
        "| candidate | " + " | ".join(corpora) + " | mean |",
        "|---|" + "---|" * (len(corpora) + 1),
    ]
    for model, row in scores.items():
        cells = [f"{row[c]:.1f}" if c in row else "" for c in corpora]
        mean = f"{sum(row.values()) / len(corpora):.1f}" if len(row) == len(corpora) else ""
        name = f"**{model}** (chosen)" if model == best else model
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {mean} |")
    return "\n".join(lines)


def test_markdown() -> str:
    lines = [
        f"| corpus | protocol | eGeMAPS-LR | {RECIPE} | difference |",
        "|---|---|---|---|---|",
    ]
    diffs = []
    for corpus, folder, protocol in CORPORA:
        tested = read_ua(HERE / folder / "recipe-test" / "results.csv")
        baseline, recipe = tested.get("eGeMAPS-LR"), tested.get(RECIPE)
        if baseline is None or recipe is None:
            continue
        diffs.append(recipe - baseline)
        lines.append(
            f"| {corpus} | {protocol} | {baseline:.1f} | {recipe:.1f} | {recipe - baseline:+.1f} |"
        )
    if diffs:
        mean, worst = sum(diffs) / len(diffs), min(diffs)
        met = "met" if mean >= 3 and worst >= -1 else "not met"
        lines.append(
            f"\nOver {len(diffs)} corpora: mean difference {mean:+.1f} points (target +3.0), "
            f"worst corpus {worst:+.1f} (target -1.0 or above): targets {met}."
        )
    return "\n".join(lines)


def main() -> None:
    scores = search_scores()
    print("Search: UA % on validation speakers (no test speaker read)\n")
    print(search_markdown(scores))
    print(f"\nChosen: {chosen(scores)}\n\nTest: UA % on the test folds\n")
    print(test_markdown())


if __name__ == "__main__":
    main()
