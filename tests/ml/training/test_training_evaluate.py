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


def test_metrics_of_a_hand_worked_example():
    metrics = evaluate_predictions(Y_TRUE, PROBABILITIES, ["a", "b", "c"], loss=0.75)

    # Class a: predicted 3 times, once rightly. b: predicted twice, once rightly. c: predicted once, rightly.
    assert metrics["confusion_matrix"] == [[1, 1, 0], [1, 1, 0], [1, 0, 1]]
    assert metrics["accuracy"] == pytest.approx(3 / 6)
    assert metrics["balanced_accuracy"] == pytest.approx((1 / 2 + 1 / 2 + 1 / 2) / 3)
    assert metrics["top2_accuracy"] == pytest.approx(5 / 6)
    assert metrics["per_class"] == [
        {"code": "a", "precision": pytest.approx(1 / 3), "recall": 0.5, "f1": pytest.approx(0.4), "support": 2},
        {"code": "b", "precision": 0.5, "recall": 0.5, "f1": pytest.approx(0.5), "support": 2},
        {"code": "c", "precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2},
    ]
    assert metrics["macro_f1"] == pytest.approx((0.4 + 0.5 + 2 / 3) / 3)
    assert metrics["loss"] == 0.75
    assert metrics["test_size"] == 6


def test_a_class_without_test_images_keeps_its_row_and_column():
    probabilities = np.hstack([PROBABILITIES, np.zeros((6, 1))])

    metrics = evaluate_predictions(Y_TRUE, probabilities, ["a", "b", "c", "d"], loss=0.0)

    assert metrics["confusion_matrix"][3] == [0, 0, 0, 0]
    assert [row[3] for row in metrics["confusion_matrix"]] == [0, 0, 0, 0]
    assert metrics["per_class"][3] == {"code": "d", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_top2_accuracy_is_perfect_with_two_classes():
    metrics = evaluate_predictions([0, 1], np.array([[0.9, 0.1], [0.8, 0.2]]), ["a", "b"], loss=0.0)

    assert metrics["top2_accuracy"] == 1.0


def test_cross_entropy_is_the_mean_negative_log_probability_of_the_true_class():
    expected = -(math.log(0.7) + math.log(0.3) + math.log(0.8) + math.log(0.4) + math.log(0.6) + math.log(0.1)) / 6

    assert cross_entropy(Y_TRUE, PROBABILITIES) == pytest.approx(expected)
