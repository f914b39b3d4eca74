"""predict: classify recordings with every trained trial of one model in RUNS.

Each recording is featurized exactly as the trials' features were (the saved feature
configuration, the featurize pipeline's own functions), standardized with each trial's
saved mean and std, and the trials' class probabilities are averaged (all seeds and folds).
A model trained with per-speaker scaling (``--normalize speaker``) needs to know who speaks
(``Speakers``: ``--speaker`` or ``--manifest``) and is refused without.
A recording that cannot be read gets its reason; the others are still predicted.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from attres.saved import SavedModel
from featurize.audio import AUDIO_EXTENSIONS
from featurize.config import FeatureConfig
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

FORMATS = ("table", "csv", "json")


@dataclass(frozen=True)
class FilePrediction:
    path: str
    emotion: str | None  # None when the file failed
    probabilities: dict[str, float] | None  # label -> mean probability over the trials
    error: str | None = None  # one-line reason the file could not be predicted


@dataclass(frozen=True)
class Predictions:
    model: str
    trials: list[str]  # the trials whose probabilities were averaged
    label_names: list[str]
    files: list[FilePrediction]
    scores: str = "probabilities"  # "votes" for the SVM, which has no probabilities
    notes: list[str] = field(default_factory=list)  # warnings, e.g. thin speaker statistics

    @property
    def failed(self) -> list[FilePrediction]:
        return [f for f in self.files if f.error is not None]


def predict_files(
    runs: str, model: str, paths: list[Path], speakers: Speakers = NOBODY
) -> Predictions:
    """Mean class probabilities of every trial of ``model`` for each recording."""
    trained = load_model_trials(runs, model)
    files = audio_files(paths)
    if not files:
        raise UseError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) in {paths}")
    speakers_for(trained, files, speakers)  # refused before any work when a speaker is needed
    labels = list(trained[0].meta.label_names)
    total = {f: np.zeros(len(labels)) for f in files}
    errors: dict[Path, str] = {}
    notes = [warning for t in trained for warning in t.warnings]
    by_input: dict[tuple[FeatureConfig, tuple[str, ...], str], list[SavedModel]] = {}
    for t in trained:
        encoder = json.dumps(t.encoder, sort_keys=True)  # the encoder and its revision
        by_input.setdefault((feature_config(t), t.functionals, encoder), []).append(t)
    for (config, functionals, encoder), group in by_input.items():
        todo = [f for f in files if f not in errors]
        done = featurize_files(todo, config, functionals, json.loads(encoder))
        errors.update(done.errors)
        notes += done.notes
        good = [f for f in files if f in done.images]
        if not good:
            continue
        batch = done.batch(good)
        who = speakers_for(group, good, speakers)
        if who is not None:
            notes += thin_speakers(who, [done.seconds[f] for f in good])
        for t in group:
            for f, p in zip(good, t.probabilities(batch, who), strict=True):
                total[f] += p
    results = []
    for f in files:
        if f in errors:
            results.append(FilePrediction(str(f), None, None, errors[f]))
            continue
        mean = total[f] / len(trained)
        probs = {name: float(p) for name, p in zip(labels, mean, strict=True)}
        results.append(FilePrediction(str(f), labels[int(np.argmax(mean))], probs))
    scores = "votes" if trained[0].kind == "sklearn" else "probabilities"
    trials = [t.meta.trial for t in trained]
    notes = list(dict.fromkeys(notes))
    return Predictions(trained[0].meta.model, trials, labels, results, scores, notes)


def render_predictions(predictions: Predictions, fmt: str = "table") -> str:
    """The predictions as an aligned table, CSV or JSON."""
    labels = predictions.label_names
    if fmt == "json":
        data = {
            "model": predictions.model,
            "trials": predictions.trials,
            "labels": labels,
            "scores": predictions.scores,
            "files": [
                {
                    "file": f.path,
                    "emotion": f.emotion,
                    "probabilities": f.probabilities,
                    "error": f.error,
                }
                for f in predictions.files
            ],
        }
        return json.dumps(data, indent=2) + "\n"
    header = ["file", "emotion", *labels, "error"]
    rows = [
        [f.path, f.emotion or "", *_probability_cells(f, labels), f.error or ""]
        for f in predictions.files
    ]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return out.getvalue()
    if fmt != "table":
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    if not any(f.error for f in predictions.files):
        header, rows = header[:-1], [r[:-1] for r in rows]
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows, strict=True)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
             for r in [header, *rows]]  # fmt: skip
    return "\n".join(lines) + "\n"


def _probability_cells(f: FilePrediction, labels: list[str]) -> list[str]:
    if f.probabilities is None:
        return [""] * len(labels)
    return [f"{f.probabilities[name]:.3f}" for name in labels]
