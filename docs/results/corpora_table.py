"""One table across corpora: speaker-independent UA % per corpus and model, read from the
published folders, beside EmoBox's reported figures for the same corpora with their
protocols stated; and a figure of it.

    python docs/results/corpora_table.py [--figure docs/results/corpora.png]

Prints the markdown that opens docs/results/README.md. A cell is empty where the model was
not run on that corpus; the protocol of each row is in the row.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

HERE = Path(__file__).parent
MODELS = (
    "eGeMAPS-LR", "eGeMAPS-LR-ST", "eGeMAPS-MLP", "ComParE-LR", "SER-recipe", "att-Res",
    "att-Res+",
)  # fmt: skip
# corpus, published folder, the protocol in words
ROWS = (
    ("CASIA", "casia/loso", "leave one speaker out (4 folds)"),
    ("RAVDESS", "ravdess/loso", "leave one actor out (24 folds)"),
    ("RAVDESS", "ravdess/emobox-folds", "EmoBox's folds: 6 folds of 4 held-out actors"),
    ("SAVEE", "savee/loso", "leave one speaker out (4 folds), as EmoBox"),
    ("TESS", "tess/loso", "leave one speaker out (2 folds)"),
    ("TESS", "tess/emobox-folds", "EmoBox's fold: random 75/25, both speakers on both sides"),
    ("CREMA-D", "crema-d/speaker-kfold", "5 folds of whole actors"),
    ("CREMA-D", "crema-d/emobox-folds", "EmoBox's fold: random 75/25, actors on both sides"),
)  # fmt: skip
# EmoBox (Ma et al., Interspeech 2024), intra-corpus UA %, frozen encoder + small head, on
# its own folds; the figures the project's issues quote (CREMA-D and TESS are not among them)
EMOBOX = ("Whisper large v3", "WavLM large", "WavLM base", "HuBERT base", "wav2vec2 base")
EMOBOX_UA = {
    "CASIA": ("4 folds, 1 speaker held out", (59.6, 52.1, 47.3, 47.2, 39.6)),
    "RAVDESS": ("6 folds of 4 held-out actors", (75.3, 72.0, 61.6, 65.4, 54.3)),
    "SAVEE": ("leave one speaker out", (74.1, 66.7, 63.6, 58.9, 44.9)),
}


def published_ua(folder: Path) -> dict[str, str]:
    """{model: 'UA (seeds)'} of a published folder's results.csv (test rows only)."""
    table = folder / "results.csv"
    if not table.is_file():
        return {}
    cells = {}
    with table.open() as f:
        for row in csv.DictReader(f):
            if row["protocol"].endswith("-validation") or not row["ua_mean"]:
                continue
            seeds = int(row["n_seeds"] or 0)
            note = f" ({seeds} seeds)" if seeds > 1 else ""
            if row["partial_seeds"]:  # "seed:folds" of seeds with folds missing
                done = row["partial_seeds"].split()[0].split(":")[1]
                note = f" (partial: {done} of {row['n_folds']} folds)"
            cells[row["model"]] = f"{float(row['ua_mean']):.1f}{note}"
    return cells


def row_ua(folder: str) -> dict[str, str]:
    """The cells of a row: its published folder's models and, on a corpus's own
    speaker-independent protocol, the recipe's test run (``<corpus>/recipe-test``, made by
    run_recipe_search.sh under that protocol)."""
    cells = published_ua(HERE / folder)
    recipe = published_ua(HERE / folder.split("/")[0] / "recipe-test").get("SER-recipe")
    if cells and recipe and "emobox" not in folder:
        cells["SER-recipe"] = recipe
    return cells


def markdown() -> str:
    lines = [
        "| corpus | protocol | " + " | ".join(MODELS) + " |",
        "|---|---|" + "---|" * len(MODELS),
    ]
    for corpus, folder, protocol in ROWS:
        cells = row_ua(folder)
        if cells:
            lines.append(
                f"| {corpus} | {protocol} ([{folder}]({folder}/tables.md)) | "
                + " | ".join(cells.get(m, "") for m in MODELS) + " |"
            )  # fmt: skip
    lines += ["", "EmoBox's reported UA % (frozen encoder, small head) on its own folds:", ""]
    lines += ["| corpus | EmoBox protocol | " + " | ".join(EMOBOX) + " |",
              "|---|---|" + "---|" * len(EMOBOX)]  # fmt: skip
    for corpus, (protocol, figures) in EMOBOX_UA.items():
        lines.append(f"| {corpus} | {protocol} | " + " | ".join(f"{f:.1f}" for f in figures) + " |")
    return "\n".join(lines)


def figure(path: Path) -> None:
    """Bars of UA % per corpus (speaker-independent rows, complete runs only), one per
    model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = [(c, row_ua(f)) for c, f, _ in ROWS if "emobox" not in f]
    rows = [(c, cells) for c, cells in rows if cells]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    width = 0.8 / len(MODELS)
    for i, model in enumerate(MODELS):
        drawn = [cells.get(model, "partial") for _, cells in rows]  # none: not drawn
        values = [np.nan if "partial" in cell else float(cell.split()[0]) for cell in drawn]
        ax.bar(np.arange(len(rows)) + i * width, values, width, label=model)
    ax.set_xticks(np.arange(len(rows)) + 0.4 - width / 2, [c for c, _ in rows])
    ax.set_ylabel("UA %, speaker-independent")
    ax.set_ylim(0, 100)
    ax.legend(ncol=3, fontsize=8, loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--figure", type=Path, help="also draw the figure into this PNG")
    args = parser.parse_args()
    print(markdown())
    if args.figure:
        figure(args.figure)


if __name__ == "__main__":
    main()
