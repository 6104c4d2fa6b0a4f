import numpy as np
import pytest

from ml.training.calibrate import apply_temperature, fit_temperature, negative_log_likelihood, reliability


def overconfident(rng, count=600, classes=4, accuracy=0.7):
    """Predictions right `accuracy` of the time but always ~97 % sure: the shape temperature scaling fixes."""
    y_true = rng.integers(0, classes, count)
    predicted = np.where(rng.random(count) < accuracy, y_true, (y_true + rng.integers(1, classes, count)) % classes)
    logits = rng.normal(0, 0.3, (count, classes))
    logits[np.arange(count), predicted] += 4.0
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y_true, probabilities


def test_temperature_fitted_on_validation_lowers_its_nll_and_keeps_the_ranking():
    rng = np.random.default_rng(0)
    y_val, val_probabilities = overconfident(rng)

    temperature = fit_temperature(y_val, val_probabilities)
    calibrated = apply_temperature(val_probabilities, temperature)

    assert temperature > 1, "an overconfident model is cooled down"
    assert negative_log_likelihood(y_val, calibrated) < negative_log_likelihood(y_val, val_probabilities) - 0.1
    assert (calibrated.argmax(axis=1) == val_probabilities.argmax(axis=1)).all()
    np.testing.assert_allclose(calibrated.sum(axis=1), 1.0)


def test_the_fit_also_lowers_ece_on_held_out_images():
    rng = np.random.default_rng(1)
    y_val, val_probabilities = overconfident(rng)
    y_test, test_probabilities = overconfident(rng)

    temperature = fit_temperature(y_val, val_probabilities)

    before = reliability(y_test, test_probabilities)["ece"]
    after = reliability(y_test, apply_temperature(test_probabilities, temperature))["ece"]
    assert before > 0.2 and after < before / 2


def test_temperature_one_changes_nothing():
    rng = np.random.default_rng(2)
    _, probabilities = overconfident(rng, count=20)

    np.testing.assert_allclose(apply_temperature(probabilities, 1.0), probabilities, atol=1e-12)


def test_ece_and_bins_of_a_hand_worked_example():
    # Confidences 0.9 (right), 0.9 (wrong), 0.6 (right), 0.6 (right).
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.4, 0.6]])
    y_true = [0, 1, 0, 1]

    summary = reliability(y_true, probabilities, bins=10)

    # Bin (0.8, 0.9]: accuracy 0.5 at confidence 0.9; bin (0.5, 0.6]: accuracy 1 at 0.6.
    assert summary["ece"] == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    filled = {(round(row["low"], 1), row["count"]) for row in summary["bins"] if row["count"]}
    assert filled == {(0.8, 2), (0.5, 2)}
