"""Test-split metrics, computed with scikit-learn from predicted probabilities."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Keras clips probabilities the same way in categorical cross-entropy.
_PROBABILITY_EPSILON = 1e-7
BOOTSTRAP_SAMPLES = 1000
BOOTSTRAP_SEED = 0


def cross_entropy(y_true: Sequence[int], probabilities: np.ndarray) -> float:
    """Mean categorical cross-entropy: no label smoothing, no class weights."""
    import numpy as np

    probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), _PROBABILITY_EPSILON, 1 - _PROBABILITY_EPSILON)
    true_class_probabilities = probabilities[np.arange(len(y_true)), np.asarray(y_true)]
    return float(-np.mean(np.log(true_class_probabilities)))


def evaluate_predictions(
    y_true: Sequence[int],
    probabilities: np.ndarray,
    class_names: Sequence[str],
    loss: float | None = None,
    *,
    bootstrap_samples: int = BOOTSTRAP_SAMPLES,
) -> dict:
    """Metrics for model version pages and scripts; every per-class list and the confusion matrix follow the order
    of class_names, including classes with no test images. Each class's precision, recall and F1 come with a 95 %
    bootstrap interval (``*_ci``: resampling the test images, ``bootstrap_samples`` times; 0 = none).

    ``loss`` defaults to the plain cross-entropy of the probabilities."""
    import numpy as np
    from sklearn import metrics

    y_true = np.asarray(y_true)
    probabilities = np.asarray(probabilities)
    labels = list(range(len(class_names)))
    y_pred = probabilities.argmax(axis=1)
    precision, recall, f1, support = metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    intervals = bootstrap_intervals(y_true, y_pred, len(class_names), samples=bootstrap_samples)
    return {
        "loss": float(cross_entropy(y_true, probabilities) if loss is None else loss),
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
                **{f"{name}_ci": intervals[name][index] for name in intervals},
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


def bootstrap_intervals(
    y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, *, samples: int, seed: int = BOOTSTRAP_SEED
) -> dict[str, list[list[float] | None]]:
    """Percentile 95 % intervals of each class's precision, recall and F1 over bootstrap resamples of the images.

    Resamples where a class has no true (recall) or no predicted (precision) image count as 0, as scikit-learn's
    ``zero_division=0`` does; with no resamples (``samples=0``) or no images every interval is None."""
    import numpy as np

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if samples <= 0 or len(y_true) == 0:
        return {name: [None] * num_classes for name in ("precision", "recall", "f1")}
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(y_true), size=(samples, len(y_true)))
    true_drawn, pred_drawn = y_true[drawn], y_pred[drawn]
    result: dict[str, list] = {"precision": [], "recall": [], "f1": []}
    for label in range(num_classes):
        is_true, is_pred = true_drawn == label, pred_drawn == label
        hits = np.sum(is_true & is_pred, axis=1)
        predicted, actual = is_pred.sum(axis=1), is_true.sum(axis=1)
        precision = np.divide(hits, predicted, out=np.zeros(samples), where=predicted > 0)
        recall = np.divide(hits, actual, out=np.zeros(samples), where=actual > 0)
        total = precision + recall
        f1 = np.divide(2 * precision * recall, total, out=np.zeros(samples), where=total > 0)
        for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
            low, high = np.percentile(values, [2.5, 97.5])
            result[name].append([float(low), float(high)])
    return result
