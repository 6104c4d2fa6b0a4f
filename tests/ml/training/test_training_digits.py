"""The tiny preset learns real data no one here wrote: scikit-learn's 1,797 digit scans, written as 32×32 images.

Its old recipe (the seed's ±108° rotation) collapsed to one class, test accuracy 0.10, and nothing noticed.
"""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn import metrics as sk_metrics
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from ml.training import PRESETS, train
from ml.training.data import prepare_image

pytestmark = pytest.mark.slow

DIGITS = [str(digit) for digit in range(10)]


def write_digit_images(folder: Path) -> dict[str, list[tuple[str, int]]]:
    """Each 8×8 scan (0..16) scaled to 0..255 and up to 32×32, as an RGB PNG; a stratified 70/15/15 split."""
    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for number, (scan, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        path = folder / f"{number:04d}.png"
        pixels = (scan / 16 * 255).round().astype(np.uint8)
        Image.fromarray(pixels).resize((32, 32), Image.Resampling.BILINEAR).convert("RGB").save(path)
        items.append((str(path), int(label)))
    indices = np.arange(len(items))
    train_indices, rest = train_test_split(indices, test_size=0.3, stratify=digits.target, random_state=0)
    val_indices, test_indices = train_test_split(rest, test_size=0.5, stratify=digits.target[rest], random_state=0)
    return {
        name: [items[index] for index in chosen]
        for name, chosen in (("train", train_indices), ("val", val_indices), ("test", test_indices))
    }


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    splits = write_digit_images(tmp_path_factory.mktemp("digits"))
    result = train(
        PRESETS["tiny"],
        train_items=splits["train"],
        val_items=splits["val"],
        test_items=splits["test"],
        class_names=DIGITS,
        output_dir=tmp_path_factory.mktemp("digits_run"),
        base_weights="none",
    )
    return splits, result


def test_tiny_learns_the_digits(digits_run):
    _, result = digits_run

    assert result.metrics["accuracy"] >= 0.90, result.history
    assert result.metrics["macro_f1"] >= 0.90


def test_library_metrics_equal_scikit_learns_on_the_saved_models_predictions(digits_run):
    import keras

    splits, result = digits_run
    model = keras.models.load_model(result.model_path)
    images = np.stack([prepare_image(Path(path).read_bytes(), 32) for path, _ in splits["test"]])
    probabilities = model.predict(images, verbose=0)
    y_true = [label for _, label in splits["test"]]
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(10))
    precision, recall, f1, support = sk_metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )

    metrics = result.metrics
    assert metrics["accuracy"] == pytest.approx(sk_metrics.accuracy_score(y_true, y_pred))
    assert metrics["balanced_accuracy"] == pytest.approx(sk_metrics.balanced_accuracy_score(y_true, y_pred))
    assert metrics["macro_f1"] == pytest.approx(sk_metrics.f1_score(y_true, y_pred, average="macro"))
    assert metrics["top2_accuracy"] == pytest.approx(sk_metrics.top_k_accuracy_score(y_true, probabilities, k=2))
    assert metrics["loss"] == pytest.approx(sk_metrics.log_loss(y_true, probabilities, labels=labels), abs=1e-4)
    assert metrics["confusion_matrix"] == sk_metrics.confusion_matrix(y_true, y_pred).tolist()
    assert [row["precision"] for row in metrics["per_class"]] == pytest.approx(precision)
    assert [row["recall"] for row in metrics["per_class"]] == pytest.approx(recall)
    assert [row["f1"] for row in metrics["per_class"]] == pytest.approx(f1)
    assert [row["support"] for row in metrics["per_class"]] == support.tolist()


def test_temperature_fitted_after_training_lowers_the_validation_nll(digits_run):
    _, result = digits_run
    calibration = result.calibration

    assert result.temperature == calibration["temperature"] > 0
    assert calibration["val_nll_after"] <= calibration["val_nll_before"]
    assert result.reliability_png.read_bytes().startswith(b"\x89PNG")
