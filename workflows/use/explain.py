"""explain: where an att-Res network looks, as its spatial attention maps over the spectrogram.

Forward hooks on every ``SpatialAttention`` module record its map (B, 1, h, w) for one
spectrogram; each map is upsampled to the spectrogram's size and drawn over it, one panel
per attention module, in one PNG per recording.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from attres.saved import SavedModel
from featurize.location import Location
from workflows.use.load import (
    NOBODY,
    Speakers,
    UseError,
    audio_files,
    feature_config,
    featurize_files,
    load_model_trials,
    speakers_for,
    thin_speakers,
)

PANEL_INCHES = (3.2, 3.4)  # width, height of one panel
DPI = 100


class ExplainError(UseError):
    """The model has no attention to show."""


@dataclass(frozen=True)
class AttentionMap:
    stage: str  # "stage 2", or "before pooling" for att-Res0+att's final attention
    weights: np.ndarray  # (h, w) relative weights: 1 is the uniform map's weight


@dataclass(frozen=True)
class Explanation:
    path: str
    png: str | None  # the image written, None when the recording failed
    predicted: str | None
    true: str | None  # from the <speaker>/<emotion>/file layout, when the folder is a label
    error: str | None = None


def stage_name(module_name: str) -> str:
    """'stages.1.2.attention' -> 'stage 2'; the model's own 'attention' -> 'before pooling'."""
    parts = module_name.split(".")
    if parts[0] == "stages" and len(parts) > 1 and parts[1].isdigit():
        return f"stage {int(parts[1]) + 1}"
    return "before pooling" if module_name == "attention" else module_name


def attention_modules(model: Any) -> list[tuple[str, Any]]:
    """(name, module) of every SpatialAttention in ``model``, in forward order."""
    from attres.layers import SpatialAttention

    return [(n, m) for n, m in model.named_modules() if isinstance(m, SpatialAttention)]


def require_attention(trained: SavedModel) -> None:
    if trained.kind != "torch" or not attention_modules(trained.model):
        raise ExplainError(
            f"{trained.meta.model} has no spatial attention to show; explain works for the "
            "att-Res models with attention (att-Res, att-Res1, att-Res2, att-Res3, att-Res0+att)"
        )


def attention_maps(trained: SavedModel, x: np.ndarray) -> tuple[np.ndarray, list[AttentionMap]]:
    """(class probabilities, [AttentionMap]) of one network input, (1, C, H, W) from
    ``SavedModel.standardize``."""
    import torch

    require_attention(trained)
    captured: list[AttentionMap] = []

    def hook(name: str):
        def record(module, inputs, output) -> None:
            weights = module.attention_map(inputs[0])[0, 0]  # (h, w)
            if module.gate == "softmax":
                weights = weights * weights.numel()
            captured.append(AttentionMap(stage_name(name), weights.double().numpy()))

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in attention_modules(trained.model)]
    try:
        with torch.no_grad():
            probs = trained.model(torch.from_numpy(x)).softmax(dim=1)[0].double().numpy()
    finally:
        for handle in handles:
            handle.remove()
    return probs, captured


def upsample(weights: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) map -> (H, W), bilinear (a 1x1 map stays flat)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(weights))[None, None]
    return torch.nn.functional.interpolate(t, size=shape, mode="bilinear")[0, 0].numpy()


def attention_png(image: np.ndarray, maps: list[AttentionMap], title: str) -> bytes:
    """PNG bytes: the spectrogram with each map overlaid, one panel per map."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(maps)
    fig, axes = plt.subplots(
        1, n, figsize=(PANEL_INCHES[0] * n, PANEL_INCHES[1]), dpi=DPI, squeeze=False
    )
    for ax, att in zip(axes[0], maps, strict=True):
        h, w = att.weights.shape
        ax.imshow(image, origin="lower", cmap="gray", aspect="auto")  # rows = frequency
        weights = upsample(att.weights, image.shape)
        overlay = ax.imshow(weights, origin="lower", cmap="jet", alpha=0.45, aspect="auto")
        fig.colorbar(overlay, ax=ax, fraction=0.046, pad=0.04)
        ax.set_title(f"{att.stage} ({h}x{w})", fontsize=9)
        ax.set_xlabel("time")
        ax.set_ylabel("frequency")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    plt.close(fig)
    return buffer.getvalue()


def figure_title(name: str, predicted: str, true: str | None, trial: str) -> str:
    """The title of a figure; "$" escaped, which matplotlib would read as maths."""
    title = f"{name}: predicted {predicted}, true {true or 'unknown'} ({trial})"
    return title.replace("$", r"\$")


def _output_name(path: Path, taken: set[str]) -> str:
    """<speaker>_<emotion>_<file>.png from the last three parts of the path; unique."""
    parts = path.resolve().with_suffix("").parts[1:][-3:]
    name = "_".join(parts)
    candidate, k = f"{name}.png", 2
    while candidate in taken:
        candidate, k = f"{name}-{k}.png", k + 1
    taken.add(candidate)
    return candidate


@dataclass(frozen=True)
class Explained:
    trial: str  # the trial whose attention is shown
    files: list[Explanation]
    notes: list[str]  # warnings, e.g. thin speaker statistics


def explain_files(
    runs: str,
    model: str,
    paths: list[Path],
    out: Path,
    seed: int | None = None,
    speakers: Speakers = NOBODY,
) -> Explained:
    """One attention PNG per recording under ``out``, each file on its own: one that fails
    gets its reason and the others go on.

    The maps are those of one trial: the first of ``seed`` (or of all trials) in name order.
    """
    (trained,) = load_model_trials(runs, model, seed, first_only=True)
    require_attention(trained)
    files = audio_files(paths)
    if not files:
        raise UseError(f"no audio files in {[str(p) for p in paths]}")
    speakers_for([trained], files, speakers)  # refused before any work when one is needed
    done = featurize_files(files, feature_config(trained))
    good = [path for path in files if path in done.images]
    inputs: dict[Path, np.ndarray] = {}
    notes = list(trained.warnings)
    if good:
        who = speakers_for([trained], good, speakers)
        notes += [] if who is None else thin_speakers(who, [done.seconds[p] for p in good])
        scaled = trained.standardize(np.stack([done.images[p] for p in good])[:, None], who)
        inputs = dict(zip(good, scaled, strict=True))
    results: list[Explanation] = []
    taken: set[str] = set()
    for path in files:
        if path in done.errors:
            results.append(Explanation(str(path), None, None, None, done.errors[path]))
            continue
        try:
            results.append(explain_one(trained, path, done.images[path], inputs[path], out, taken))
        except Exception as err:  # a drawing that fails must not stop the other files
            results.append(Explanation(str(path), None, None, None, f"{type(err).__name__}: {err}"))
    return Explained(trained.meta.trial, results, notes)


def explain_one(
    trained: SavedModel, path: Path, image: np.ndarray, x: np.ndarray, out: Path, taken: set[str]
) -> Explanation:
    """The attention PNG of one recording: ``image`` (H, W), ``x`` its (C, H, W) input."""
    probs, maps = attention_maps(trained, x[None])
    labels = trained.meta.label_names
    predicted = labels[int(np.argmax(probs))]
    true = path.parent.name if path.parent.name in labels else None
    title = figure_title(path.name, predicted, true, trained.meta.trial)
    png = out / _output_name(path, taken)
    Location(png).write(attention_png(image, maps, title))
    return Explanation(str(path), str(png), predicted, true)
