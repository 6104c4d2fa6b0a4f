import json
import math
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from ml.training import PRESETS, TrainingCancelled, config_from_preset, config_hash, train
from ml.training.data import prepare_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def reloaded_test_probabilities(tiny_run, image_splits):
    """Predictions of the saved .keras file, loaded afresh, on the test images."""
    import keras

    model = keras.models.load_model(tiny_run["result"].model_path)
    image_size = PRESETS["tiny"].image_size
    images = np.stack([prepare_image(Path(path).read_bytes(), image_size) for path, _ in image_splits["test"]])
    return model.predict(images, verbose=0)


def test_tiny_preset_runs_both_stages_and_its_loss_falls(tiny_run):
    history = tiny_run["result"].history
    tiny = PRESETS["tiny"]

    stage_epochs = [entry["stage"] for entry in history]
    # Early stopping may end a stage before its planned epochs, never skip one.
    assert stage_epochs == sorted(stage_epochs)
    assert 1 <= stage_epochs.count(1) <= tiny.stage1_epochs
    assert 1 <= stage_epochs.count(2) <= tiny.stage2_epochs
    assert [entry["epoch"] for entry in history] == list(range(1, len(history) + 1))
    assert min(entry["loss"] for entry in history) < history[0]["loss"]
    assert all(math.isfinite(entry["val_loss"]) for entry in history)
    # Each stage starts at its own rate (reduce-LR may lower it later in the stage).
    assert history[0]["learning_rate"] == pytest.approx(tiny.stage1_learning_rate)
    first_of_stage_2 = next(entry for entry in history if entry["stage"] == 2)
    assert first_of_stage_2["learning_rate"] == pytest.approx(tiny.stage2_learning_rate)


def _batches(items, batch_size=PRESETS["tiny"].batch_size):
    return math.ceil(len(items) / batch_size)


def test_progress_is_reported_every_epoch_and_batch(tiny_run, image_splits):
    reports = tiny_run["epoch_reports"]
    history = tiny_run["result"].history

    assert [{key: report[key] for key in history[0]} for report in reports] == history
    planned = PRESETS["tiny"].stage1_epochs + PRESETS["tiny"].stage2_epochs
    assert all(report["epoch"] <= report["epochs_total"] <= planned for report in reports)
    # Stage 2 is shorter than the early-stopping patience, so it runs in full and its outlook is exact.
    assert PRESETS["tiny"].stage2_epochs <= PRESETS["tiny"].early_stopping_patience
    assert all(report["epochs_total"] == len(history) for report in reports if report["stage"] == 2)
    assert reports[-1]["eta_seconds"] == 0
    # Every training and validation batch of every epoch, then every batch of the calibration pass over the
    # validation split and of the test prediction.
    epoch_batches = _batches(image_splits["train"]) + _batches(image_splits["val"])
    after_training = _batches(image_splits["val"]) + _batches(image_splits["test"])
    assert tiny_run["batches"] == len(history) * epoch_batches + after_training


def test_saved_model_reloads_and_predicts_the_same_probabilities(tiny_run, reloaded_test_probabilities):
    np.testing.assert_allclose(reloaded_test_probabilities, tiny_run["result"].test_probabilities, atol=1e-5)


def test_metrics_equal_scikit_learn_on_the_saved_models_predictions(
    tiny_run, reloaded_test_probabilities, image_splits, class_names
):
    result = tiny_run["result"]
    probabilities = reloaded_test_probabilities
    y_true = [label for _, label in image_splits["test"]]
    y_pred = probabilities.argmax(axis=1)
    labels = list(range(len(class_names)))
    precision, recall, f1, support = sk_metrics.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )

    metrics = result.metrics
    assert metrics["loss"] == pytest.approx(sk_metrics.log_loss(y_true, probabilities, labels=labels), abs=1e-4)
    assert metrics["accuracy"] == pytest.approx(sk_metrics.accuracy_score(y_true, y_pred))
    assert metrics["balanced_accuracy"] == pytest.approx(sk_metrics.balanced_accuracy_score(y_true, y_pred))
    assert metrics["macro_f1"] == pytest.approx(sk_metrics.f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert metrics["top2_accuracy"] == pytest.approx(
        sk_metrics.top_k_accuracy_score(y_true, probabilities, k=2, labels=labels)
    )
    assert metrics["confusion_matrix"] == sk_metrics.confusion_matrix(y_true, y_pred, labels=labels).tolist()
    assert [entry["code"] for entry in metrics["per_class"]] == class_names
    assert [entry["precision"] for entry in metrics["per_class"]] == pytest.approx(precision)
    assert [entry["recall"] for entry in metrics["per_class"]] == pytest.approx(recall)
    assert [entry["f1"] for entry in metrics["per_class"]] == pytest.approx(f1)
    assert [entry["support"] for entry in metrics["per_class"]] == support.tolist()
    assert metrics["test_size"] == len(y_true)


def test_metadata_beside_the_model_holds_config_class_map_and_extra_metadata(tiny_run, class_names):
    result = tiny_run["result"]
    metadata = json.loads(result.metadata_path.read_text())

    assert result.metadata_path.parent == result.model_path.parent
    assert metadata["config"] == PRESETS["tiny"].to_dict() == result.config
    assert metadata["config_hash"] == config_hash(PRESETS["tiny"])
    assert metadata["class_map"] == {"0": "red_disc", "1": "green_square", "2": "blue_stripes"}
    assert metadata["class_names"] == class_names == result.class_names
    assert metadata["extra_metadata"] == {"snapshot_hash": "abc123", "snapshot_id": 7}
    assert metadata["model_file"] == result.model_path.name
    assert metadata["metrics"] == result.metrics
    assert set(metadata["versions"]) >= {"tensorflow", "keras"}


def test_training_curves_and_confusion_matrix_are_png_files(tiny_run):
    result = tiny_run["result"]

    for path in (result.curves_png, result.confusion_png):
        assert path.parent == result.model_path.parent
        assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_should_stop_cancels_mid_epoch_with_the_completed_epochs(
    tmp_path, image_splits, calibrated_weights, class_names
):
    batches_seen = [0]
    first_epoch_batches = _batches(image_splits["train"]) + _batches(image_splits["val"])

    def stop_in_second_epoch():
        batches_seen[0] += 1
        return batches_seen[0] > first_epoch_batches + 2

    with pytest.raises(TrainingCancelled) as cancelled:
        train(
            PRESETS["tiny"],
            train_items=image_splits["train"],
            val_items=image_splits["val"],
            test_items=image_splits["test"],
            class_names=class_names,
            output_dir=tmp_path,
            base_weights=str(calibrated_weights),
            should_stop=stop_in_second_epoch,
        )

    assert batches_seen[0] == first_epoch_batches + 3
    assert [entry["epoch"] for entry in cancelled.value.history] == [1]
    assert not (tmp_path / "model.keras").exists()
    # Celery's result backend pickles exceptions; this round-trips one we just made.
    assert pickle.loads(pickle.dumps(cancelled.value)).history == cancelled.value.history  # noqa: S301


def test_bad_items_are_refused_before_any_training(tmp_path, image_splits, class_names):
    common = {
        "val_items": image_splits["val"],
        "test_items": image_splits["test"],
        "class_names": class_names,
        "output_dir": tmp_path,
        "base_weights": "none",
    }

    with pytest.raises(ValueError, match="class index 3"):
        train(PRESETS["tiny"], train_items=[(image_splits["train"][0][0], 3)], **common)
    with pytest.raises(FileNotFoundError, match=re.escape("missing.jpg")):
        train(PRESETS["tiny"], train_items=[(str(tmp_path / "missing.jpg"), 0)], **common)
    with pytest.raises(ValueError, match="train_items is empty"):
        train(PRESETS["tiny"], train_items=[], **common)


def test_the_same_config_and_data_give_the_same_weights_after_one_epoch(tmp_path, image_splits, class_names):
    """Augmented from scratch on the CPU: the shuffles, the augmentation and the initial weights are all seeded.
    (The old shared seed and parallel augmentation gave a different model each run.)"""
    import keras

    config = config_from_preset("tiny", {"stage1_epochs": 1, "stage2_epochs": 0, "batch_size": 8})
    train_items = image_splits["train"][::3]  # 36 images: a few augmented batches are enough to tell

    def weights_after_one_epoch(folder):
        result = train(
            config,
            train_items=train_items,
            val_items=image_splits["val"][:6],
            test_items=image_splits["test"][:6],
            class_names=class_names,
            output_dir=tmp_path / folder,
            base_weights="none",
        )
        return keras.models.load_model(result.model_path).get_weights()

    first, second = weights_after_one_epoch("first"), weights_after_one_epoch("second")

    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    keras.utils.set_random_seed(config.seed)
    untrained = _untrained_weights(config, len(class_names))
    assert not all(np.array_equal(a, b) for a, b in zip(first, untrained, strict=True)), "the epoch changed them"


def _untrained_weights(config, num_classes):
    from ml.training.model import build_classifier

    return build_classifier(config, num_classes, "none").get_weights()
