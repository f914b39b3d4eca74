"""Classification metrics of the paper and of the SER literature: WA, UA, macro-F1, confusion."""

from __future__ import annotations

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(num_classes, num_classes) counts, rows = true class, columns = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return matrix


def classification_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, num_classes: int
) -> dict[str, float | list[list[int]]]:
    """WA (accuracy), UA (mean per-class recall), macro-F1 and the confusion matrix.

    Classes absent from ``y_true`` are left out of UA and macro-F1, as scikit-learn's
    ``balanced_accuracy_score`` does for recall.
    """
    cm = confusion_matrix(y_true, y_pred, num_classes)
    support, predicted, hits = cm.sum(axis=1), cm.sum(axis=0), np.diag(cm)
    present = support > 0
    recall = hits[present] / support[present]
    precision = np.divide(hits, predicted, out=np.zeros(num_classes), where=predicted > 0)
    rec_all = np.divide(hits, support, out=np.zeros(num_classes), where=present)
    denom = precision + rec_all
    f1 = np.divide(2 * precision * rec_all, denom, out=np.zeros(num_classes), where=denom > 0)
    labels_seen = present | (predicted > 0)
    return {
        "wa": float(hits.sum() / max(cm.sum(), 1)),
        "ua": float(recall.mean()) if recall.size else 0.0,
        "macro_f1": float(f1[labels_seen].mean()) if labels_seen.any() else 0.0,
        "confusion": cm.tolist(),
    }
