import math

import numpy as np
import pytest

from ml.training import evaluate_predictions
from ml.training.evaluate import cross_entropy

# Six test images, two per class. Predicted classes: 0, 1, 1, 0, 2, 0.
Y_TRUE = [0, 0, 1, 1, 2, 2]
PROBABILITIES = np.array(
    [
        [0.70, 0.20, 0.10],  # right
        [0.30, 0.60, 0.10],  # wrong, true class second
        [0.15, 0.80, 0.05],  # right
        [0.50, 0.40, 0.10],  # wrong, true class second
        [0.25, 0.15, 0.60],  # right
        [0.60, 0.30, 0.10],  # wrong, true class last
    ]
)


NO_CI = {"precision_ci": None, "recall_ci": None, "f1_ci": None}


def test_metrics_of_a_hand_worked_example():
    metrics = evaluate_predictions(Y_TRUE, PROBABILITIES, ["a", "b", "c"], loss=0.75, bootstrap_samples=0)

    # Class a: predicted 3 times, once rightly. b: predicted twice, once rightly. c: predicted once, rightly.
    assert metrics["confusion_matrix"] == [[1, 1, 0], [1, 1, 0], [1, 0, 1]]
    assert metrics["accuracy"] == pytest.approx(3 / 6)
    assert metrics["balanced_accuracy"] == pytest.approx((1 / 2 + 1 / 2 + 1 / 2) / 3)
    assert metrics["top2_accuracy"] == pytest.approx(5 / 6)
    assert metrics["per_class"] == [
        {
            "code": "a",
            "precision": pytest.approx(1 / 3),
            "recall": 0.5,
            "f1": pytest.approx(0.4),
            "support": 2,
            **NO_CI,
        },
        {"code": "b", "precision": 0.5, "recall": 0.5, "f1": pytest.approx(0.5), "support": 2, **NO_CI},
        {"code": "c", "precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2, **NO_CI},
    ]
    assert metrics["macro_f1"] == pytest.approx((0.4 + 0.5 + 2 / 3) / 3)
    assert metrics["loss"] == 0.75
    assert metrics["test_size"] == 6


def test_a_class_without_test_images_keeps_its_row_and_column():
    probabilities = np.hstack([PROBABILITIES, np.zeros((6, 1))])

    metrics = evaluate_predictions(Y_TRUE, probabilities, ["a", "b", "c", "d"], loss=0.0)

    assert metrics["confusion_matrix"][3] == [0, 0, 0, 0]
    assert [row[3] for row in metrics["confusion_matrix"]] == [0, 0, 0, 0]
    assert metrics["per_class"][3] == {
        "code": "d",
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
        "precision_ci": [0.0, 0.0],
        "recall_ci": [0.0, 0.0],
        "f1_ci": [0.0, 0.0],
    }


def test_top2_accuracy_is_perfect_with_two_classes():
    metrics = evaluate_predictions([0, 1], np.array([[0.9, 0.1], [0.8, 0.2]]), ["a", "b"], loss=0.0)

    assert metrics["top2_accuracy"] == 1.0


def test_cross_entropy_is_the_mean_negative_log_probability_of_the_true_class():
    expected = -(math.log(0.7) + math.log(0.3) + math.log(0.8) + math.log(0.4) + math.log(0.6) + math.log(0.1)) / 6

    assert cross_entropy(Y_TRUE, PROBABILITIES) == pytest.approx(expected)


def test_each_class_gets_a_bootstrap_interval_around_its_score():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 3, 300)
    y_pred = np.where(rng.random(300) < 0.8, y_true, (y_true + 1) % 3)
    probabilities = np.eye(3)[y_pred] * 0.9 + 0.1 / 3

    metrics = evaluate_predictions(y_true, probabilities, ["a", "b", "c"])

    for row in metrics["per_class"]:
        for name in ("precision", "recall", "f1"):
            low, high = row[f"{name}_ci"]
            assert low <= row[name] <= high
            assert 0.02 < high - low < 0.3, "300 images give an interval neither empty nor the whole range"


def test_bootstrap_intervals_are_reproducible_and_narrow_with_more_images():
    rng = np.random.default_rng(1)

    def f1_width(count):
        y_true = rng.integers(0, 2, count)
        y_pred = np.where(rng.random(count) < 0.75, y_true, 1 - y_true)
        probabilities = np.eye(2)[y_pred]
        first = evaluate_predictions(y_true, probabilities, ["a", "b"])["per_class"][0]["f1_ci"]
        assert evaluate_predictions(y_true, probabilities, ["a", "b"])["per_class"][0]["f1_ci"] == first
        return first[1] - first[0]

    assert f1_width(2000) < f1_width(100) / 2
