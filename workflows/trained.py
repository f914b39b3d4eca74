"""Trained models kept under RUNS/models, and read back for predict, export, explain and report.

Layout (RUNS a local folder or a URI, as elsewhere)::

    RUNS/models/<trial>.pt      torch models: one dict, loadable with weights_only=True
    RUNS/models/<trial>.skops   scikit-learn models (the SVM's pipeline), skops format
    RUNS/models/<trial>.json    the scikit-learn model's metadata (torch keeps it in the .pt)

The metadata is what inference needs besides the weights: the label names, the
standardizer's mean and std, and the feature configuration the trial was trained on.
Files are written under a temporary name and renamed, so a reader never sees half a model.
"""

from __future__ import annotations

import dataclasses
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow.fs as pafs

from attres.inputs import InputSettings
from attres.registry import create_model, model_kind, resolve_name
from featurize.config import FeatureConfig
from featurize.location import Location

MODELS_DIR = "models"


def _sklearn_trusted() -> list[str]:
    """Every type in the SVM's pipeline (attres/models/svm.py); skops refuses anything else."""
    from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import (  # type: ignore[import-untyped]
        FunctionTransformer,
        StandardScaler,
    )
    from sklearn.svm import SVC  # type: ignore[import-untyped]

    from attres.models.svm import average_pool

    types = (average_pool, Pipeline, FunctionTransformer, StandardScaler, SVC)
    return [f"{t.__module__}.{t.__qualname__}" for t in types]


class TrainedModelError(ValueError):
    """A saved model is missing, unreadable, or holds types we do not trust."""


@dataclass
class SavedModel:
    """A trial's final model with what it needs to classify new spectrograms."""

    trial: str
    model_name: str  # canonical registry name
    model: Any  # torch.nn.Module in eval mode, or a scikit-learn pipeline
    mean: float | tuple[float, ...]  # standardizer fitted on the trial's training split;
    std: float | tuple[float, ...]  # one value per channel when there are delta channels
    label_names: list[str]
    feature_config: FeatureConfig
    inputs: InputSettings  # delta channels and per-speaker scaling the trial trained with

    @property
    def kind(self) -> str:
        return model_kind(self.model_name)

    def standardize(self, images: np.ndarray, speakers: np.ndarray | None = None) -> np.ndarray:
        """(N, 1, H, W) log-power images -> the network's (N, C, H, W) input, as in training.

        A model trained with per-speaker scaling scales each speaker's images by their own
        statistics; without ``speakers``, the images given are taken as one speaker's.
        """
        from attres.train import Standardizer

        groups = np.zeros(len(images)) if speakers is None else speakers
        return Standardizer(self.mean, self.std)(self.inputs.apply(images, groups))

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 1, H, W) raw spectrograms -> (N, classes) class probabilities.

        Networks give their softmax. The SVM has no calibrated probabilities: it gives its
        vote, one-hot on the class it predicts, so its argmax is exactly its prediction.
        """
        x = self.standardize(images)
        if self.kind == "sklearn":
            predicted = np.asarray(self.model.predict(x), dtype=np.int64)
            return np.eye(len(self.label_names), dtype=np.float64)[predicted]
        import torch

        with torch.no_grad():
            logits = self.model(torch.from_numpy(x))
        return logits.softmax(dim=1).double().numpy()


def _models_root(runs: str) -> tuple[pafs.FileSystem, str]:
    return Location(runs).child(MODELS_DIR).filesystem()


def _read(fs: pafs.FileSystem, path: str) -> bytes:
    try:
        with fs.open_input_stream(path) as f:
            return f.read()
    except (FileNotFoundError, OSError) as err:
        raise TrainedModelError(f"cannot read {path}: {err}") from err


def save_trained(
    runs: str,
    trial: str,
    model_name: str,
    model: Any,
    standardizer_mean: float | tuple[float, ...],
    standardizer_std: float | tuple[float, ...],
    label_names: list[str],
    feature_config: dict[str, Any],
    inputs: InputSettings | None = None,
) -> str:
    """Save a trial's final model and its inference metadata under RUNS/models; returns the path.

    ``model`` is the trained ``nn.Module`` (any device, any memory layout) or, for the SVM,
    the registry's ``SpectrogramSVM`` (its scikit-learn pipeline is what is saved).
    """
    name = resolve_name(model_name)
    meta = {
        "model": name,
        "trial": trial,
        "num_classes": len(label_names),
        "label_names": list(label_names),
        "mean": _scale_value(standardizer_mean),
        "std": _scale_value(standardizer_std),
        "feature_config": dict(feature_config),
        "inputs": dataclasses.asdict(inputs or InputSettings()),
    }
    models = Location(runs).child(MODELS_DIR)
    if model_kind(name) == "sklearn":
        import skops.io

        pipeline = getattr(model, "pipeline", model)
        models.child(f"{trial}.skops").write(skops.io.dumps(pipeline))
        models.child(f"{trial}.json").write(json.dumps(meta, indent=1))
        return models.child(f"{trial}.skops")
    import torch

    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({**meta, "state_dict": state}, buffer)
    models.child(f"{trial}.pt").write(buffer.getvalue())
    return models.child(f"{trial}.pt")


def has_trained(runs: str, trial: str) -> bool:
    fs, root = _models_root(runs)
    infos = fs.get_file_info([f"{root}/{trial}.pt", f"{root}/{trial}.skops"])
    return any(i.type == pafs.FileType.File for i in infos)


def load_trained(runs: str, trial: str) -> SavedModel:
    """The saved final model of ``trial``; TrainedModelError if missing or untrusted."""
    fs, root = _models_root(runs)
    pt, skops_path = f"{root}/{trial}.pt", f"{root}/{trial}.skops"
    found = {i.path: i.type for i in fs.get_file_info([pt, skops_path])}
    if found[pt] == pafs.FileType.File:
        return _load_torch(trial, _read(fs, pt), pt)
    if found[skops_path] == pafs.FileType.File:
        meta = json.loads(_read(fs, f"{root}/{trial}.json"))
        return _trained(trial, meta, _load_skops(_read(fs, skops_path), skops_path))
    raise TrainedModelError(
        f"no saved model for trial {trial} under {root} (trained before models were kept? "
        "train it again into a new RUNS)"
    )


def _scale_value(value: Any) -> float | tuple[float, ...]:
    """A standardizer's mean or std: one float, or a tuple of one float per channel."""
    if isinstance(value, (list, tuple)):
        return tuple(float(v) for v in value)
    return float(value)


def _trained(trial: str, meta: dict[str, Any], model: Any) -> SavedModel:
    return SavedModel(
        trial=trial,
        model_name=resolve_name(meta["model"]),
        model=model,
        mean=_scale_value(meta["mean"]),
        std=_scale_value(meta["std"]),
        label_names=list(meta["label_names"]),
        feature_config=FeatureConfig.from_dict(meta["feature_config"]),
        inputs=_inputs(meta, trial),
    )


def _inputs(meta: dict[str, Any], trial: str) -> InputSettings:
    """The saved input settings; models saved before there were any get the defaults."""
    try:
        return InputSettings(**meta.get("inputs", {}))
    except (TypeError, ValueError) as err:
        raise TrainedModelError(f"trial {trial}: unreadable input settings: {err}") from err


def _load_torch(trial: str, data: bytes, path: str) -> SavedModel:
    import torch

    try:
        saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise TrainedModelError(f"cannot load {path}: {err}") from err
    inputs = _inputs(saved, trial)
    model = create_model(
        saved["model"], num_classes=int(saved["num_classes"]), in_chans=inputs.channels
    )
    model.load_state_dict(saved["state_dict"])
    return _trained(trial, saved, model.eval())


def _load_skops(data: bytes, path: str) -> Any:
    import skops.io

    trusted = _sklearn_trusted()
    untrusted = sorted(set(skops.io.get_untrusted_types(data=data)) - set(trusted))
    if untrusted:
        raise TrainedModelError(f"{path} holds types we do not trust: {', '.join(untrusted)}")
    return skops.io.loads(data, trusted=trusted)


def model_trials(runs: str, model: str) -> list[dict[str, Any]]:
    """The finished trial records of ``model`` in RUNS (any name the registry resolves)."""
    from workflows.runs import load_records

    name = resolve_name(model)
    return [r for r in load_records(runs) if r["model"] == name]
