"""Models over openSMILE functionals (eGeMAPS, ComParE): the field's standard baselines.

A clip's functionals reach a model as a (D, 1, 1) tensor, D channels of one pixel, so the
training loop, its per-channel standardizer and per-speaker scaling (``attres.inputs``)
serve them unchanged. Per-speaker scaling is these models' recipe, as it is the field's:
each speaker's functionals are z-scored by that speaker's own statistics, which for a
held-out speaker come from their own unlabeled recordings.

* ``<set>-LR`` and ``<set>-SVM``: a logistic regression or a linear SVM (C = 0.01), features
  standardized on the training rows;
* ``<set>-MLP``: a small network trained by the one training loop;
* ``openSMILE-linear``: the set, the classifier and C chosen inside the training split by
  leave-one-training-speaker-out, every option's validation UA kept (``selection_``);
* ``eGeMAPS-LR-ST``: the logistic regression adapted to each new speaker by class-balanced
  self-training on that speaker's own unlabeled clips (``SelfTrainedLinear``);
* the recipe issue's candidates: ``eGeMAPS-MLP-ST`` (scikit-learn's MLP, self-trained),
  ``ComParE-LR-FS`` (the ANOVA F-test's best ``SELECT_K`` ComParE functionals, chosen on
  the training rows), ``Sets-LR`` (eGeMAPS-LR's and ComParE-LR's probabilities averaged,
  ``ProbabilityAverage``) and ``Sets-LR-ST`` (that average, self-trained).
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone  # type: ignore[import-untyped]
from sklearn.feature_selection import SelectKBest, f_classif  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
from sklearn.model_selection import (  # type: ignore[import-untyped]
    LeaveOneGroupOut,
    StratifiedKFold,
    cross_val_score,
)
from sklearn.neural_network import MLPClassifier  # type: ignore[import-untyped]
from sklearn.pipeline import Pipeline, make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # type: ignore[import-untyped]
from sklearn.svm import LinearSVC  # type: ignore[import-untyped]
from torch import nn

from attres.models._catalog import CLASSIFIERS

SEARCH_C = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # openSMILE-linear's choices of C
SELECT_K = 1000  # ComParE-LR-FS: the functionals kept of ComParE's 6,373


def vectors(x: np.ndarray, start: int = 0, stop: int | None = None) -> np.ndarray:
    """(N, D, 1, 1) functionals -> (N, D) columns ``start:stop`` (one set of several).

    >>> vectors(np.arange(12.0).reshape(2, 6, 1, 1), 1, 3)
    array([[1., 2.],
           [7., 8.]])
    """
    return np.asarray(x).reshape(len(x), -1)[:, start:stop]


def class_probabilities(estimator: Any, X: np.ndarray, num_classes: int) -> np.ndarray:
    """(N, num_classes) probabilities of a fitted scikit-learn classifier: its
    ``predict_proba`` has a column per class seen in training (``classes_``), scattered here
    to the class indices, a class the training rows lacked getting 0.

    >>> lr = LogisticRegression().fit([[0.0], [1.0], [2.0]], [0, 2, 2])
    >>> class_probabilities(lr, [[0.0]], 3).round(2).shape
    (1, 3)
    """
    out = np.zeros((len(X), num_classes))
    out[:, np.asarray(estimator.classes_, dtype=np.int64)] = estimator.predict_proba(X)
    return out


def linear_pipeline(
    classifier: str, C: float, columns: tuple[int, int | None] = (0, None), select: int = 0
) -> Pipeline:
    """Columns of the input -> standardized on the training rows -> (``select``: the best
    ``select`` columns by the ANOVA F-test on the training rows) -> a linear classifier."""
    if classifier not in CLASSIFIERS:
        raise ValueError(f"classifier must be one of {CLASSIFIERS}, got {classifier!r}")
    model = (
        LogisticRegression(C=C, max_iter=5000)
        if classifier == "lr"
        else LinearSVC(C=C, max_iter=20000, random_state=0)
    )
    start, stop = columns
    return make_pipeline(
        FunctionTransformer(vectors, kw_args={"start": start, "stop": stop}),
        StandardScaler(),
        *([SelectKBest(f_classif, k=select)] if select else []),
        model,
    )


def mlp_pipeline(seed: int = 0) -> Pipeline:
    """The input standardized on the training rows -> scikit-learn's MLP of eGeMAPS-MLP's
    sizes (256, 128), L2-regularized, stopped early on 10 % of the training rows."""
    return make_pipeline(
        FunctionTransformer(vectors),
        StandardScaler(),
        MLPClassifier((256, 128), alpha=1e-2, early_stopping=True, random_state=seed),
    )


def fit_weighted(
    model: Any, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
) -> Any:
    """``model.fit``, each row weighed by ``sample_weight``: in a pipeline, by each step
    that takes weights (the scaler, the classifier; not the column selection)."""
    if sample_weight is None:
        return model.fit(X, y)
    if not isinstance(model, Pipeline):
        return model.fit(X, y, sample_weight=sample_weight)
    weights = {
        f"{name}__sample_weight": sample_weight
        for name, step in model.steps[1:]
        if "sample_weight" in inspect.signature(step.fit).parameters
    }
    return model.fit(X, y, **weights)


def warm_copy(model: Any) -> Any:
    """A copy of a fitted model whose next ``fit`` starts from its fitted weights (every
    estimator in it with ``warm_start``), so a refit on a few more rows converges fast."""
    model = copy.deepcopy(model)
    for key in model.get_params(deep=True):
        if key == "warm_start" or key.endswith("__warm_start"):
            model.set_params(**{key: True})
    for member in getattr(model, "members_", ()):
        for key in member.get_params(deep=True):
            if key.endswith("__warm_start"):
                member.set_params(**{key: True})
    return model


class ProbabilityAverage(ClassifierMixin, BaseEstimator):
    """Classifiers of one input (each its own columns: a feature set), their class
    probabilities averaged. With ``warm_start`` a refit starts from the fitted members."""

    def __init__(self, members: tuple[Any, ...] = (), warm_start: bool = False) -> None:
        self.members, self.warm_start = members, warm_start

    def fit(
        self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> ProbabilityAverage:
        again = self.warm_start and hasattr(self, "members_")
        members = self.members_ if again else [clone(m) for m in self.members]
        self.members_ = [fit_weighted(m, X, y, sample_weight) for m in members]
        self.classes_ = self.members_[0].classes_
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.mean([m.predict_proba(X) for m in self.members_], axis=0)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class FunctionalsLinear:
    """A linear classifier on functionals; X has shape (N, D, 1, 1). ``select``: keep the
    best ``select`` functionals by the F-test on the training rows (0: all)."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 1,
        classifier: str = "lr",
        C: float = 0.01,
        select: int = 0,
    ) -> None:
        self.num_classes, self.in_chans = num_classes, in_chans
        self.pipeline: Pipeline = linear_pipeline(classifier, C, select=min(select, in_chans))

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> Any:
        fit_weighted(self.pipeline, X, np.asarray(y), sample_weight)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.pipeline.predict(X))


class SetsAverage(FunctionalsLinear):
    """A logistic regression per feature set (``parts``: (name, length) of each set's
    columns, in order), their probabilities averaged: ``Sets-LR``."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 1,
        parts: tuple[tuple[str, int], ...] | None = None,
        C: float = 0.01,
    ) -> None:
        self.num_classes, self.in_chans = num_classes, in_chans
        self.pipeline: Any = sets_average(parts or (("functionals", in_chans),), C)


def sets_average(parts: tuple[tuple[str, int], ...], C: float = 0.01) -> ProbabilityAverage:
    """One logistic regression per set of ``parts``' columns, probabilities averaged."""
    ends = np.cumsum([0, *(length for _, length in parts)]).tolist()
    return ProbabilityAverage(
        tuple(linear_pipeline("lr", C, (ends[i], ends[i + 1])) for i in range(len(parts)))
    )


class OpenSmileLinear:
    """The set, classifier and C that score best by leave-one-speaker-out on the training
    rows (``groups``: their speakers; fewer than two: stratified 3-fold), refitted on them.

    ``parts``: (set name, length) of the sets in X's columns, in order (default: one set of
    all of them). ``selection_`` lists every option tried with its mean validation UA and
    the UA on each held-out group.
    """

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 1,
        parts: tuple[tuple[str, int], ...] | None = None,
        C: tuple[float, ...] = SEARCH_C,
    ) -> None:
        parts = (("functionals", in_chans),) if parts is None else parts
        if sum(length for _, length in parts) != in_chans:
            raise ValueError(f"parts {parts} do not add up to the {in_chans} input columns")
        self.num_classes, self.in_chans, self.parts, self.search_C = num_classes, in_chans, parts, C
        self.selection_: list[dict[str, Any]] = []
        self.pipeline: Pipeline | None = None

    def options(self) -> list[dict[str, Any]]:
        ends = np.cumsum([0, *(length for _, length in self.parts)])
        return [
            {"set": name, "classifier": clf, "C": c, "columns": (int(ends[i]), int(ends[i + 1]))}
            for i, (name, _) in enumerate(self.parts)
            for clf in CLASSIFIERS
            for c in self.search_C
        ]

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray | None = None,
        scored: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> Any:
        """``scored``: (N,) bool, the rows a held-out part is scored on (recordings; their
        speed-perturbed copies and other corpora's clips train only), default all; a part
        that holds none is not scored. ``sample_weight``: each row's weight in fitting."""
        y = np.asarray(y)
        scored = np.ones(len(y), dtype=bool) if scored is None else np.asarray(scored, bool)
        by_speaker = groups is not None and len(np.unique(groups)) >= 2
        folds = min(3, int(np.bincount(y).min()))
        if not by_speaker and folds < 2:
            raise ValueError(
                "openSMILE-linear chooses its settings on held-out training speakers (or, "
                "with one speaker, 2 clips per class): the training split has neither"
            )
        cv = (
            LeaveOneGroupOut()
            if by_speaker
            else StratifiedKFold(folds, shuffle=True, random_state=0)
        )
        parts = [
            (fit, held_out[scored[held_out]])
            for fit, held_out in cv.split(X, y, groups=groups if by_speaker else None)
            if scored[held_out].any()
        ]
        self.selection_ = []
        for option in self.options():
            pipeline = linear_pipeline(option["classifier"], option["C"], option["columns"])
            weighted = {}
            if sample_weight is not None:  # cut to each part's training rows
                steps = [name for name, _ in pipeline.steps[1:]]
                weighted = {"params": {f"{n}__sample_weight": sample_weight for n in steps}}
            scores = cross_val_score(
                pipeline, X, y, cv=parts, scoring="balanced_accuracy", **weighted
            )
            self.selection_.append({
                "set": option["set"], "classifier": option["classifier"], "C": option["C"],
                "validation_ua": float(scores.mean()), "per_group": [float(s) for s in scores],
                "validated_by": "speaker" if by_speaker else "3-fold",
            })  # fmt: skip
        best = max(range(len(self.selection_)), key=lambda i: self.selection_[i]["validation_ua"])
        for i, row in enumerate(self.selection_):
            row["chosen"] = i == best  # the first of equals: the grid runs from small C up
        chosen = self.options()[best]
        self.pipeline = linear_pipeline(chosen["classifier"], chosen["C"], chosen["columns"])
        fit_weighted(self.pipeline, X, y, sample_weight)
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if self.pipeline is None:
            raise RuntimeError("fit first")
        return np.asarray(self.pipeline.predict(X))


class SelfTrained:
    """A classifier adapted to each speaker it classifies, using no label of theirs.

    Class-balanced self-training (Zou et al., ECCV 2018): ``base`` (a scikit-learn
    classifier with probabilities), fitted on the training rows, labels a speaker's clips,
    adds the most confident of them to its training rows (at most ``fraction * round /
    rounds`` of the speaker's clips per predicted class over the classes' count, so no
    emotion floods the rest) and refits; ``rounds`` times, from the training rows each time
    (``warm``: each refit starts from the weights of the one before, not from scratch). The
    cap per class assumes each emotion is present in a speaker's recordings. It keeps the
    training rows to adapt to speakers it has not met, so ``predict`` on new recordings
    adapts too.
    """

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 1,
        base: Any = None,
        rounds: int = 5,
        fraction: float = 1.0,
        warm: bool = False,
    ) -> None:
        self.num_classes, self.in_chans = num_classes, in_chans
        self.rounds, self.fraction, self.warm = rounds, fraction, warm
        self.base: Any = linear_pipeline("lr", 0.01) if base is None else base

    def fit(
        self,
        X: np.ndarray,
        y: np.ndarray,
        groups: np.ndarray | None = None,
        sample_weight: np.ndarray | None = None,
    ) -> Any:
        self.x_train_, self.y_train_ = vectors(X).astype(np.float32), np.asarray(y)
        self.w_train_ = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight)
        fit_weighted(self.base, X, self.y_train_, sample_weight)
        return self

    def adapted_probabilities(self, X: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        """(N, classes) probabilities, each speaker of ``groups`` (all one, if None) by the
        model adapted to their clips."""
        x = vectors(X)
        groups = np.zeros(len(x)) if groups is None else np.asarray(groups)
        out = np.zeros((len(x), self.num_classes))
        for group in np.unique(groups):
            rows = groups == group
            out[rows] = class_probabilities(self._adapted(x[rows]), x[rows], self.num_classes)
        return out

    def _adapted(self, x: np.ndarray) -> Pipeline:
        model = self.base
        for round_ in range(1, self.rounds + 1):
            probabilities = class_probabilities(model, x, self.num_classes)
            predicted, confidence = probabilities.argmax(axis=1), probabilities.max(axis=1)
            k = int(self.fraction * round_ / self.rounds * len(x) / self.num_classes)
            picked = np.concatenate([
                np.flatnonzero(predicted == c)[np.argsort(-confidence[predicted == c])[:k]]
                for c in range(self.num_classes)
            ])  # fmt: skip
            refit = warm_copy(model) if getattr(self, "warm", False) else clone(self.base)
            model = fit_weighted(
                refit,
                np.concatenate([self.x_train_, x[picked]]),
                np.concatenate([self.y_train_, predicted[picked]]),
                np.concatenate([getattr(self, "w_train_", np.ones(len(self.y_train_))),
                                np.ones(len(picked))]),
            )  # fmt: skip
        return model

    def predict(self, X: np.ndarray, groups: np.ndarray | None = None) -> np.ndarray:
        return self.adapted_probabilities(X, groups).argmax(axis=1)


class SelfTrainedLinear(SelfTrained):
    """``eGeMAPS-LR-ST``: the logistic regression (C) self-trained on each speaker."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 1,
        C: float = 0.01,
        rounds: int = 5,
        fraction: float = 1.0,
    ) -> None:
        super().__init__(num_classes, in_chans, linear_pipeline("lr", C), rounds, fraction)
        self.C = C


class FunctionalsMLP(nn.Module):
    """A small network on functionals: (B, D, 1, 1) -> two ReLU layers with dropout -> logits."""

    def __init__(
        self, num_classes: int, in_chans: int = 1, hidden: int = 256, dropout: float = 0.5
    ) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),  # (B, D)
            nn.Dropout(0.2),
            nn.Linear(in_chans, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden // 2),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden // 2, num_classes),
        )

    def forward(self, x: Any) -> Any:
        return self.net(x)


def mlp_self_trained(num_classes: int, in_chans: int = 1, seed: int = 0) -> SelfTrained:
    """eGeMAPS-MLP-ST: scikit-learn's MLP self-trained on each tested speaker (warm refits)."""
    return SelfTrained(num_classes, in_chans, mlp_pipeline(seed), warm=True)


def compare_selected(num_classes: int, in_chans: int = 1) -> FunctionalsLinear:
    """ComParE-LR-FS: the logistic regression on the ``SELECT_K`` best functionals."""
    return FunctionalsLinear(num_classes, in_chans, select=SELECT_K)


def sets_self_trained(
    num_classes: int, in_chans: int = 1, parts: tuple[tuple[str, int], ...] | None = None
) -> SelfTrained:
    """Sets-LR self-trained on each tested speaker (the refits warm-started)."""
    average = sets_average(parts or (("functionals", in_chans),))
    return SelfTrained(num_classes, in_chans, average, warm=True)
