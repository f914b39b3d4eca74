"""The paper's SVM baseline on the same spectrograms as the networks.

Reduction (the paper gives none): each (1, H, W) spectrogram is average-pooled to
16x16 (a 128x128 one by 8x8 blocks; sizes that do not divide use overlapping bins,
as ``AdaptiveAvgPool2d`` does), flattened to 256 features per channel, standardised
per feature, and classified by an RBF-kernel SVC (C=10, gamma="scale").
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.pipeline import Pipeline, make_pipeline  # type: ignore[import-untyped]
from sklearn.preprocessing import FunctionTransformer, StandardScaler  # type: ignore[import-untyped]
from sklearn.svm import SVC  # type: ignore[import-untyped]


def _pooling_matrix(size: int, out: int) -> np.ndarray:
    """(out, size) matrix whose row i averages bins [floor(i*size/out), ceil((i+1)*size/out))."""
    matrix = np.zeros((out, size))
    for i in range(out):
        start, stop = (i * size) // out, -((-(i + 1) * size) // out)
        matrix[i, start:stop] = 1.0 / (stop - start)
    return matrix


def average_pool(x: np.ndarray, size: int = 16) -> np.ndarray:
    """(N, C, H, W) -> (N, C * size * size) adaptive average pooling, flattened.

    >>> average_pool(np.ones((2, 1, 64, 48)), size=16).shape
    (2, 256)
    """
    x = np.asarray(x, dtype=np.float64)
    rows, cols = _pooling_matrix(x.shape[2], size), _pooling_matrix(x.shape[3], size)
    pooled = rows @ x @ cols.T  # (N, C, size, size)
    return pooled.reshape(len(x), -1)


class SpectrogramSVM:
    """RBF SVM on pooled, standardised spectrograms; X has shape (N, C, H, W)."""

    def __init__(
        self,
        num_classes: int,
        in_chans: int = 1,
        pool_size: int = 16,
        C: float = 10.0,
        gamma: str | float = "scale",
    ) -> None:
        self.num_classes = num_classes
        self.in_chans = in_chans
        self.pipeline: Pipeline = make_pipeline(
            FunctionTransformer(average_pool, kw_args={"size": pool_size}),
            StandardScaler(),
            SVC(kernel="rbf", C=C, gamma=gamma),
        )

    def _check(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X)
        if X.ndim != 4 or X.shape[1] != self.in_chans:
            raise ValueError(f"expected X of shape (N, {self.in_chans}, H, W), got {X.shape}")
        return X

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> SpectrogramSVM:
        self.pipeline.fit(self._check(X), np.asarray(y))
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Integer class labels, shape (N,)."""
        return np.asarray(self.pipeline.predict(self._check(X)))

    def decision_function(self, X: np.ndarray) -> Any:
        """Per-class scores, shape (N, n_classes) (shape (N,) for two classes)."""
        return self.pipeline.decision_function(self._check(X))
