"""The figures of RUNS: a confusion matrix per model and protocol, the training curves."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from attres.models import slug_of
from featurize.location import Location
from workflows.record import TrialRecord


def write_plots(records: list[TrialRecord], out_dir: Path) -> list[Path]:
    """A row-normalized confusion-matrix PNG per model and protocol, and one PNG of curves."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for model, protocol in sorted({(r.model, r.protocol) for r in records}):
        runs = [r for r in records if r.model == model and r.protocol == protocol]
        cm = np.sum([np.array(r.confusion) for r in runs], axis=0).astype(float)
        cm_norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        names = runs[0].label_names
        fig, ax = plt.subplots(figsize=(4.6, 4))
        ax.imshow(cm_norm, cmap="Blues", vmin=0, vmax=1)
        for i, j in np.ndindex(cm.shape):
            color = "white" if cm_norm[i, j] > 0.6 else "black"
            ax.text(j, i, f"{cm_norm[i, j]:.2f}", ha="center", va="center", fontsize=7, color=color)
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{model} ({protocol}, {len(runs)} runs)", fontsize=9)
        fig.tight_layout()
        path = out_dir / f"confusion-{protocol}-{slug_of(model)}.png"
        _save(fig, path)
        written.append(path)
    curved = [r for r in records if r.curves.get("train_loss")]
    if curved:
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
        for model, protocol in sorted({(r.model, r.protocol) for r in curved}):
            runs = [r for r in curved if r.model == model and r.protocol == protocol]
            n = min(len(r.curves["train_loss"]) for r in runs)
            loss = np.mean([r.curves["train_loss"][:n] for r in runs], axis=0)
            acc = np.mean([r.curves["test_acc"][:n] for r in runs], axis=0)
            label = f"{model} ({protocol})"
            ax_loss.plot(range(1, n + 1), loss, label=label)
            ax_acc.plot(range(1, n + 1), 100 * acc, label=label)
        ax_loss.set(xlabel="epoch", ylabel="training loss", title="Training loss (mean over runs)")
        ax_acc.set(
            xlabel="epoch",
            ylabel="test accuracy %",
            title="Test accuracy per epoch (not used for selection)",
        )
        ax_acc.legend(fontsize=7, loc="lower right")
        fig.tight_layout()
        path = out_dir / "training-curves.png"
        _save(fig, path)
        written.append(path)
    return written


def _save(fig: Any, path: Path) -> None:
    """The figure as a PNG at ``path`` (written whole), then closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    Location(path).write(buffer.getvalue())
