"""The saved-model format: a trained model and what it needs to classify new spectrograms.

Training writes it, inference (predict, export, explain, report) reads it. Here only the
bytes: where they are stored is the caller's (``workflows.runs`` keeps them under RUNS/models).

* a network: one ``torch.save`` dict, loadable with ``weights_only=True``: the metadata's
  fields and ``state_dict``;
* a scikit-learn model (the SVM): its pipeline in skops' format, read back with an explicit
  list of trusted types, and the metadata as JSON beside it.

The metadata (``ModelMeta``) is what inference needs besides the weights: the label names,
the standardizer's mean and std, the feature settings the trial was trained on and its
input settings; and what made it: the code version and a fingerprint of the architecture
(the network's module tree with every layer's settings), so a model whose code changed
without changing its weight shapes is not loaded silently. Models saved before a field
existed read as its default (no input settings: the paper's; no version: unknown).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from attres.inputs import InputSettings, Standardizer
from attres.models import create_model, model_info, model_kind, resolve_name

Scale = float | tuple[float, ...]  # one value, or one per channel with delta channels


class SavedModelError(ValueError):
    """A saved model is missing, unreadable, or holds types we do not trust."""


def _scale(value: Any) -> Scale:
    if isinstance(value, (list, tuple)):
        return tuple(float(v) for v in value)
    return float(value)


@dataclass(frozen=True)
class ModelMeta:
    """What a saved model carries besides its weights."""

    model: str  # canonical registry name
    trial: str
    label_names: tuple[str, ...]
    mean: Scale  # the standardizer fitted on the trial's training split
    std: Scale
    feature_config: dict[str, Any]  # featurize.config.FeatureConfig.to_dict() of its features
    inputs: InputSettings = InputSettings()  # delta channels and per-speaker scaling
    code_version: str = ""  # what saved it, e.g. "attres-flow 0.1.0, git 1a2b3c4"; "": unknown
    architecture: str = ""  # architecture_of(model) when saved; "": unknown
    # a model of openSMILE functionals: each set's settings as featurized (openSMILE's
    # version, the rate), so a use of it can tell when another openSMILE computes its input
    functionals: dict[str, Any] = dataclasses.field(default_factory=dict)
    # a head over an encoder set: the set's settings as featurized (the model and its
    # revision, layers, pooling), so a use of it embeds new recordings the same way
    encoder: dict[str, Any] = dataclasses.field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "trial": self.trial,
            "num_classes": len(self.label_names),
            "label_names": list(self.label_names),
            "mean": self.mean,
            "std": self.std,
            "feature_config": dict(self.feature_config),
            "inputs": dataclasses.asdict(self.inputs),
            "code_version": self.code_version,
            "architecture": self.architecture,
            "functionals": dict(self.functionals),
            "encoder": dict(self.encoder),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelMeta:
        """From a saved dict; SavedModelError naming the trial if it does not read."""
        trial = data.get("trial", "?")
        try:
            return cls(
                model=resolve_name(data["model"]),
                trial=data["trial"],
                label_names=tuple(data["label_names"]),
                mean=_scale(data["mean"]),
                std=_scale(data["std"]),
                feature_config=dict(data["feature_config"]),
                inputs=InputSettings(**data.get("inputs", {})),  # none before inputs existed
                code_version=data.get("code_version", ""),  # none before versions were kept
                architecture=data.get("architecture", ""),
                functionals=dict(data.get("functionals", {})),  # none before functionals
                encoder=dict(data.get("encoder", {})),  # none before encoders
            )
        except (KeyError, TypeError, ValueError) as err:
            raise SavedModelError(f"trial {trial}: unreadable model metadata: {err}") from err


def architecture_of(model: Any) -> str:
    """A short fingerprint of a network's module tree and each layer's settings."""
    return hashlib.sha1(repr(model).encode()).hexdigest()[:12]


@dataclass
class SavedModel:
    """A trial's final model, ready to classify (N, 1, H, W) log-power images."""

    meta: ModelMeta
    model: Any  # torch.nn.Module in eval mode, or a scikit-learn pipeline
    warnings: list[str] = dataclasses.field(default_factory=list)  # e.g. code changed since

    @property
    def kind(self) -> str:
        return model_kind(self.meta.model)

    @property
    def functionals(self) -> tuple[str, ...]:
        """The openSMILE sets the model reads, side by side; () for a spectrogram model."""
        return model_info(self.meta.model).features

    @property
    def encoder(self) -> dict[str, Any]:
        """The encoder set a head reads (its settings: model, revision, layers, dim); {}
        for a model of spectrograms or functionals."""
        return self.meta.encoder if model_info(self.meta.model).encoder else {}

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """One input's shape: (C, H, W) of an image, (D, 1, 1) of D functionals (a network
        of them keeps one mean and std per functional), or (layers + 1, dim, 1) of a clip's
        encoder embeddings."""
        if self.encoder:
            return (self.encoder["layers"], self.encoder["dim"], 1)
        if self.functionals:
            return (len(np.atleast_1d(self.meta.mean)), 1, 1)
        size = self.meta.feature_config["image_size"]
        return (self.meta.inputs.channels, size, size)

    def standardize(self, images: np.ndarray, speakers: np.ndarray | None = None) -> np.ndarray:
        """(N, 1, H, W) log-power images -> the network's (N, C, H, W) input, as in training.

        A model trained with per-speaker scaling scales each speaker's images by their own
        statistics; without ``speakers``, the images given are taken as one speaker's.
        """
        groups = np.zeros(len(images)) if speakers is None else speakers
        return Standardizer(self.meta.mean, self.meta.std)(self.meta.inputs.apply(images, groups))

    @property
    def per_speaker(self) -> bool:
        """Whether each speaker's inputs are scaled by that speaker's own statistics."""
        return self.meta.inputs.normalize == "speaker"

    def probabilities(
        self, images: np.ndarray, speakers: np.ndarray | None = None, batch_size: int = 64
    ) -> np.ndarray:
        """(N, 1, H, W) raw spectrograms (or (N, D, 1, 1) functionals, for a model of them)
        of ``speakers`` -> (N, classes) class probabilities, the network run ``batch_size``
        inputs at a time.

        Networks give their softmax, a logistic regression its probabilities. The SVMs have
        no calibrated probabilities: each gives its vote, one-hot on the class it predicts,
        so its argmax is exactly its prediction.
        """
        x = self.standardize(images, speakers)
        if hasattr(self.model, "adapted_probabilities"):  # adapts to each speaker, unlabeled
            return self.model.adapted_probabilities(x, speakers)
        if self.kind == "sklearn" and hasattr(self.model, "predict_proba"):
            from attres.models.functionals import class_probabilities  # scikit-learn's

            return class_probabilities(self.model, x, len(self.meta.label_names))
        if self.kind == "sklearn":
            predicted = np.asarray(self.model.predict(x), dtype=np.int64)
            return np.eye(len(self.meta.label_names), dtype=np.float64)[predicted]
        import torch

        out = []
        with torch.no_grad():
            for start in range(0, len(x), batch_size):
                logits = self.model(torch.from_numpy(x[start : start + batch_size]))
                out.append(logits.softmax(dim=1).double().numpy())
        return np.concatenate(out)


def torch_bytes(meta: ModelMeta, model: Any) -> bytes:
    """A network (any device, any memory layout) and its metadata as one torch file; the
    architecture is taken from ``model``."""
    import torch

    module = getattr(model, "module", model)  # a DistributedDataParallel wrapper's network
    meta = dataclasses.replace(meta, architecture=architecture_of(module))
    state = {k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({**meta.to_dict(), "state_dict": state}, buffer)
    return buffer.getvalue()


def sklearn_bytes(meta: ModelMeta, model: Any) -> tuple[bytes, bytes]:
    """(skops bytes of the pipeline, JSON bytes of the metadata) of a scikit-learn model:
    the registry's wrapper (its ``pipeline`` is saved) or a bare pipeline."""
    import skops.io

    pipeline = getattr(model, "pipeline", model)
    return skops.io.dumps(pipeline), json.dumps(meta.to_dict(), indent=1).encode()


def load_torch(data: bytes, source: str) -> SavedModel:
    """A network from ``torch_bytes``; ``source`` names the file in errors."""
    import torch

    try:
        saved = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        raise SavedModelError(f"cannot load {source}: {err}") from err
    if not isinstance(saved, dict) or "state_dict" not in saved:
        raise SavedModelError(f"{source} is not a model saved by attres-flow")
    meta = ModelMeta.from_dict(saved)
    # a network of functionals has one input channel per functional, one mean and std each
    channels = len(np.atleast_1d(meta.mean)) if model_info(meta.model).features else None
    model = create_model(
        meta.model, len(meta.label_names), in_chans=channels or meta.inputs.channels
    )
    try:
        model.load_state_dict(saved["state_dict"])
    except RuntimeError as err:  # missing, unexpected or reshaped weights
        first = str(err).strip().splitlines()[0]
        raise SavedModelError(
            f"{source}: the saved weights do not fit this code's {meta.model} (its architecture "
            f"changed since {meta.code_version or 'it was saved'}): {first}"
        ) from err
    warnings = []
    if meta.architecture and meta.architecture != architecture_of(model):
        warnings.append(
            f"trial {meta.trial} was saved by {meta.code_version or 'older code'} with "
            f"{meta.model} architecture {meta.architecture}; this code builds "
            f"{architecture_of(model)}: same weight shapes, but the network changed"
        )
    return SavedModel(meta, model.eval(), warnings)


def _sklearn_trusted() -> list[str]:
    """Every type in the pipelines of the SVM (attres/models/svm.py), of the models over
    functionals (attres/models/functionals.py) and of the heads over encoder layers
    (attres/models/encoders.py); skops refuses anything else."""
    from sklearn.feature_selection import SelectKBest, f_classif  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.neural_network import MLPClassifier  # type: ignore[import-untyped]
    from sklearn.neural_network._stochastic_optimizers import (  # type: ignore[import-untyped]
        AdamOptimizer,  # an MLP keeps its optimizer's state
    )
    from sklearn.pipeline import Pipeline  # type: ignore[import-untyped]
    from sklearn.preprocessing import (  # type: ignore[import-untyped]
        FunctionTransformer,
        LabelBinarizer,
        StandardScaler,
    )
    from sklearn.svm import SVC, LinearSVC  # type: ignore[import-untyped]

    from attres.models.encoders import SmallNetwork
    from attres.models.functionals import (
        ProbabilityAverage,
        SelfTrained,
        SelfTrainedLinear,
        vectors,
    )
    from attres.models.svm import average_pool

    types = (
        average_pool, vectors, SelfTrained, SelfTrainedLinear, ProbabilityAverage, Pipeline,
        FunctionTransformer, StandardScaler, SVC, LinearSVC, LogisticRegression, SmallNetwork,
        SelectKBest, f_classif, MLPClassifier, LabelBinarizer, AdamOptimizer,
    )  # fmt: skip
    return [f"{t.__module__}.{t.__qualname__}" for t in types]


def load_sklearn(data: bytes, meta: bytes, source: str) -> SavedModel:
    """A scikit-learn model from ``sklearn_bytes``' two parts; only trusted types load."""
    import skops.io

    trusted = _sklearn_trusted()
    untrusted = sorted(set(skops.io.get_untrusted_types(data=data)) - set(trusted))
    if untrusted:
        raise SavedModelError(f"{source} holds types we do not trust: {', '.join(untrusted)}")
    try:
        info = json.loads(meta)
    except ValueError as err:
        raise SavedModelError(f"{source}: its metadata is not JSON: {err}") from err
    return SavedModel(ModelMeta.from_dict(info), skops.io.loads(data, trusted=trusted))
