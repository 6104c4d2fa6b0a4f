"""Temperature scaling (Guo et al., 2017): one scalar T fitted on the validation split after training.

Calibrated probabilities are softmax(logits / T). A model's softmax output p gives back its logits up to a
constant per image (log p), so calibrating needs only the stored probabilities, and T > 0 never changes which class
ranks first: accuracy and F1 stay as they were, only the confidence moves.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

# Probabilities are clipped before the log; float32 softmax outputs can be exactly 0.
_EPSILON = 1e-12
TEMPERATURE_BOUNDS = (0.05, 20.0)
RELIABILITY_BINS = 10


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log(p) / T), row by row."""
    import numpy as np

    logits = np.log(np.clip(np.asarray(probabilities, dtype=np.float64), _EPSILON, 1.0)) / float(temperature)
    logits -= logits.max(axis=1, keepdims=True)
    exponentials = np.exp(logits)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def negative_log_likelihood(y_true: Sequence[int], probabilities: np.ndarray) -> float:
    import numpy as np

    probabilities = np.clip(np.asarray(probabilities, dtype=np.float64), _EPSILON, 1.0)
    return float(-np.mean(np.log(probabilities[np.arange(len(y_true)), np.asarray(y_true)])))


def fit_temperature(y_true: Sequence[int], probabilities: np.ndarray) -> float:
    """The T that minimises the negative log-likelihood of the true classes (bounded 1-D search over log T)."""
    import numpy as np
    from scipy.optimize import minimize_scalar

    low, high = np.log(TEMPERATURE_BOUNDS[0]), np.log(TEMPERATURE_BOUNDS[1])
    found = minimize_scalar(
        lambda log_t: negative_log_likelihood(y_true, apply_temperature(probabilities, np.exp(log_t))),
        bounds=(low, high),
        method="bounded",
        options={"xatol": 1e-4},
    )
    temperature = float(np.exp(found.x))
    # Never worse than leaving the model as it is (the search is bounded and approximate).
    if negative_log_likelihood(y_true, apply_temperature(probabilities, temperature)) > negative_log_likelihood(
        y_true, probabilities
    ):
        return 1.0
    return temperature


def reliability(y_true: Sequence[int], probabilities: np.ndarray, bins: int = RELIABILITY_BINS) -> dict:
    """Expected calibration error and the reliability diagram's bins, over the top-1 confidence.

    ECE = Σ_bins (n_bin / n) · |accuracy_bin − mean confidence_bin|, with equal-width bins on (0, 1].
    """
    import numpy as np

    probabilities = np.asarray(probabilities, dtype=np.float64)
    y_true = np.asarray(y_true)
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == y_true
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds confidences in (edges[i], edges[i + 1]]; a confidence of exactly 0 cannot occur in a softmax.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    rows = []
    ece = 0.0
    for bin_index in range(bins):
        members = index == bin_index
        count = int(members.sum())
        if count:
            accuracy, mean_confidence = float(correct[members].mean()), float(confidence[members].mean())
            ece += count / len(y_true) * abs(accuracy - mean_confidence)
        else:
            accuracy = mean_confidence = None
        rows.append(
            {
                "low": float(edges[bin_index]),
                "high": float(edges[bin_index + 1]),
                "count": count,
                "accuracy": accuracy,
                "confidence": mean_confidence,
            }
        )
    return {"ece": float(ece), "bins": rows}
