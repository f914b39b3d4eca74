"""Heads over a frozen speech encoder's layers (``featurize --encoder``), the field's probes.

A clip reaches a head as its (layers + 1, dim, 1) embeddings: the mean over the clip's
frames of every hidden state. Each head is a family in the registry, named after the
encoder set it reads (``<set>-LR`` over ``FEATURES/_encoders/<set>``), and, like the models
over functionals, a scikit-learn model the grid fits in the trial's process:

* ``<set>-LR``: a logistic regression over one layer, standardized on the training rows;
  the layer and C chosen on held-out training speakers, every option's validation UA kept
  (``selection_``), then refitted on all training rows;
* ``<set>-MLP``: a small network (one hidden layer of 256, ReLU, dropout) over one layer,
  the layer the linear probe chooses the same way;
* ``<set>-WS``: SUPERB's head: a learned softmax-weighted sum of all the layers, a 256-wide
  linear projection and a linear classifier. SUPERB pools after the projection; both are
  linear, so pooling first, as here, is the same function.

Held-out speakers: at most ``INNER_FOLDS`` folds of whole training speakers (GroupKFold; a
training side of one speaker: stratified 3-fold), scored on the recordings, not on
speed-perturbed copies. No head forces a scaling: the grid's ``--normalize speaker`` scales
each speaker's embeddings by their own statistics (per layer and dimension) for every head.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin  # type: ignore[import-untyped]
from sklearn.model_selection import (  # type: ignore[import-untyped]
    GroupKFold,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.pipeline import Pipeline, make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # type: ignore[import-untyped]
from torch import nn

from attres.models.functionals import linear_pipeline, vectors

SEARCH_C = (1e-3, 1e-2, 1e-1)  # the linear probe's choices of C
INNER_FOLDS = 4  # folds of training speakers the layer is chosen on


def layer_columns(layer: int, dim: int) -> tuple[int, int]:
    """The columns of ``layer`` in a clip's flattened (layers + 1) x dim embeddings.

    >>> layer_columns(2, 768)
    (1536, 2304)
    """
    return layer * dim, (layer + 1) * dim


def held_out_speakers(
    y: np.ndarray, groups: np.ndarray | None, scored: np.ndarray | None
) -> tuple[list[tuple[np.ndarray, np.ndarray]], str]:
    """(fit rows, scored held-out rows) of each inner fold, and what was held out."""
    scored = np.ones(len(y), dtype=bool) if scored is None else np.asarray(scored, bool)
    speakers = 0 if groups is None else len(np.unique(groups))
    if speakers >= 2:
        cv, by = GroupKFold(n_splits=min(INNER_FOLDS, speakers)), "speaker"
    else:
        folds = min(3, int(np.bincount(y).min()))
        if folds < 2:
            raise ValueError(
                "an encoder head chooses its layer on held-out training speakers (or, with "
                "one speaker, 2 clips per class): the training split has neither"
            )
        cv, by = StratifiedKFold(folds, shuffle=True, random_state=0), "3-fold"
    parts = [
        (fit, held[scored[held]])
        for fit, held in cv.split(np.zeros(len(y)), y, groups if speakers >= 2 else None)
    ]
    return parts, by


def choose_layer(
    X: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray | None,
    scored: np.ndarray | None,
    Cs: tuple[float, ...],
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The (layer, C) of the logistic regression that scores best on held-out training
    speakers, and every option tried with its mean validation UA and per-fold UAs."""
    layers, dim = X.shape[1], X.shape[2]
    parts, by = held_out_speakers(y, groups, scored)
    selection: list[dict[str, Any]] = []
    for layer in range(layers):
        for C in Cs:
            pipeline = linear_pipeline("lr", C, layer_columns(layer, dim))
            scores = cross_val_score(pipeline, X, y, cv=parts, scoring="balanced_accuracy")
            selection.append({
                "layer": layer, "C": C, "validation_ua": float(scores.mean()),
                "per_group": [float(s) for s in scores], "validated_by": by,
            })  # fmt: skip
    best = max(range(len(selection)), key=lambda i: selection[i]["validation_ua"])
    for i, row in enumerate(selection):
        row["chosen"] = i == best  # the first of equals: the lowest layer, the smallest C
    return selection[best], selection


class EncoderLinear:
    """``<set>-LR``: a logistic regression on the layer (and C) chosen on held-out training
    speakers; X has shape (N, layers + 1, dim, 1)."""

    def __init__(
        self, num_classes: int, in_chans: int = 1, C: tuple[float, ...] = SEARCH_C, seed: int = 0
    ) -> None:
        self.num_classes, self.in_chans, self.search_C, self.seed = num_classes, in_chans, C, seed
        self.selection_: list[dict[str, Any]] = []
        self.pipeline: Pipeline | None = None

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray | None = None,
        scored: np.ndarray | None = None,
    ) -> Any:
        """``scored``: (N,) bool, the rows a held-out part is scored on (recordings; their
        speed-perturbed copies train only), default all."""
        y = np.asarray(y)
        chosen, self.selection_ = choose_layer(X, y, groups, scored, self.search_C)
        self.pipeline = self.head(chosen, X.shape[2]).fit(X, y)
        return self

    def head(self, chosen: dict[str, Any], dim: int) -> Pipeline:
        return linear_pipeline("lr", chosen["C"], layer_columns(chosen["layer"], dim))

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.pipeline is None:
            raise RuntimeError("fit first")
        return np.asarray(self.pipeline.predict(X))


class EncoderMLP(EncoderLinear):
    """``<set>-MLP``: a small network on the layer the linear probe chooses on held-out
    training speakers; X has shape (N, layers + 1, dim, 1)."""

    def head(self, chosen: dict[str, Any], dim: int) -> Pipeline:
        start, stop = layer_columns(chosen["layer"], dim)
        return make_pipeline(
            FunctionTransformer(vectors, kw_args={"start": start, "stop": stop}),
            StandardScaler(),
            SmallNetwork(layers=1, seed=self.seed),
        )


class EncoderWeightedSum:
    """``<set>-WS``: SUPERB's learned weighted sum of every layer and a linear head; X has
    shape (N, layers + 1, dim, 1). Nothing is chosen on held-out rows: the layer weights
    are trained with the rest."""

    def __init__(self, num_classes: int, in_chans: int = 1, seed: int = 0) -> None:
        self.num_classes, self.in_chans, self.seed = num_classes, in_chans, seed
        self.pipeline: Pipeline = make_pipeline(
            FunctionTransformer(vectors), StandardScaler(), SmallNetwork(in_chans, seed=seed)
        )

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> Any:
        self.pipeline.fit(X, np.asarray(y))
        return self

    @property
    def layer_weights(self) -> np.ndarray:
        """(layers + 1,) the softmax weights it learned."""
        weights = self.pipeline[-1].state_["0.weights"]
        return np.exp(weights) / np.exp(weights).sum()

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.pipeline.predict(X))


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """torch on one thread: matrices this small lose more to threads waiting on each other
    than they gain (on a busy 2-CPU machine, 20 times more)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


class LayerMix(nn.Module):
    """SUPERB's weighted sum: (B, layers * dim) -> (B, dim), softmax weights over layers."""

    def __init__(self, layers: int) -> None:
        super().__init__()
        self.layers = layers
        self.weights = nn.Parameter(torch.zeros(layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stacked = x.view(len(x), self.layers, -1)  # (B, layers, dim)
        return (self.weights.softmax(0)[None, :, None] * stacked).sum(1)


class SmallNetwork(ClassifierMixin, BaseEstimator):
    """A small torch network fitted with Adam, kept as NumPy arrays (skops saves it as data,
    no pickled code): with ``layers`` > 1 the rows are layers x dim and it is SUPERB's
    weighted sum and linear head, else an MLP of one hidden layer."""

    def __init__(
        self,
        layers: int = 1,
        hidden: int = 256,
        dropout: float = 0.2,
        epochs: int = 60,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        seed: int = 0,
    ) -> None:
        self.layers, self.hidden, self.dropout, self.epochs = layers, hidden, dropout, epochs
        self.lr, self.weight_decay, self.batch_size, self.seed = lr, weight_decay, batch_size, seed

    def network(self, width: int, classes: int) -> nn.Module:
        if self.layers > 1:
            dim = width // self.layers
            return nn.Sequential(
                LayerMix(self.layers), nn.Linear(dim, self.hidden), nn.Linear(self.hidden, classes)
            )
        return nn.Sequential(
            nn.Linear(width, self.hidden),
            nn.ReLU(),
            nn.Dropout(self.dropout),
            nn.Linear(self.hidden, classes),
        )

    def fit(self, X: np.ndarray, y: np.ndarray) -> SmallNetwork:
        with one_thread():
            return self._fit(X, y)

    def _fit(self, X: np.ndarray, y: np.ndarray) -> SmallNetwork:
        x = torch.as_tensor(np.asarray(X, dtype=np.float32))
        self.classes_ = np.unique(y)
        target = torch.as_tensor(np.searchsorted(self.classes_, y))
        generator = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        net = self.network(x.shape[1], len(self.classes_))
        optimizer = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        net.train()
        for _ in range(self.epochs):
            for rows in torch.randperm(len(x), generator=generator).split(self.batch_size):
                optimizer.zero_grad()
                nn.functional.cross_entropy(net(x[rows]), target[rows]).backward()
                optimizer.step()
        self.n_features_in_ = x.shape[1]
        self.state_ = {name: v.detach().numpy().copy() for name, v in net.state_dict().items()}
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        net = self.network(self.n_features_in_, len(self.classes_))
        net.load_state_dict({name: torch.from_numpy(v) for name, v in self.state_.items()})
        with torch.no_grad(), one_thread():
            logits = net.eval()(torch.as_tensor(np.asarray(X, dtype=np.float32)))
        return logits.softmax(1).double().numpy()

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(1)]
