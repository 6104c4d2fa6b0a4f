"""Test-split metrics, computed with scikit-learn from predicted probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Keras clips probabilities the same way in categorical cross-entropy.
_PROBABILITY_EPSILON = 1e-7


def cross_entropy(y_true: Sequence[int], probabilities: np.ndarray) -> float:
    """Mean categorical cross-entropy: no label smoothing, no class weights."""
    import numpy as np

    probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), _PROBABILITY_EPSILON, 1 - _PROBABILITY_EPSILON)
    true_class_probabilities = probabilities[np.arange(len(y_true)), np.asarray(y_true)]
    return float(-np.mean(np.log(true_class_probabilities)))


def evaluate_predictions(
    y_true: Sequence[int], probabilities: np.ndarray, class_names: Sequence[str], loss: float
) -> dict:
    """Metrics for model version pages and scripts; every per-class list and the confusion matrix follow the order
    of class_names, including classes with no test images."""
    import numpy as np
    from sklearn import metrics

    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities)
    labels = list(range(len(class_names)))
    y_pred = probabilities.argmax(axis=1)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "loss": float(loss),
        "accuracy": float(metrics.accuracy_score(y_true, y_pred)),
        "balanced_accuracy": float(metrics.balanced_accuracy_score(y_true, y_pred)),
        "macro_f1": float(metrics.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "top2_accuracy": _top_k_accuracy(y_true, probabilities, k=2),
        "per_class": [
            {
                "code": code,
                "precision": float(precision[index]),
                "recall": float(recall[index]),
                "f1": float(f1[index]),
                "support": int(support[index]),
            }
            for index, code in enumerate(class_names)
        ],
        "confusion_matrix": metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        "test_size": len(y_true),
    }


def _top_k_accuracy(y_true: np.ndarray, probabilities: np.ndarray, *, k: int) -> float:
    from sklearn import metrics

    num_classes = probabilities.shape[1]
    if num_classes <= k:
        return 1.0  # every class is among the top k (scikit-learn warns and says the same)
    return float(metrics.top_k_accuracy_score(y_true, probabilities, k=k, labels=list(range(num_classes))))
