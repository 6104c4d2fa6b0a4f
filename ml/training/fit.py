"""Two-stage fine-tuning: train the head on a frozen backbone, then unfreeze the backbone's top layers at a lower
learning rate (keras-io ``image_classification_efficientnet_fine_tuning``)."""

from __future__ import annotations

import json
import logging
import numbers
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.training.calibrate import apply_temperature, fit_temperature, negative_log_likelihood, reliability
from ml.training.config import TrainingConfig, config_hash
from ml.training.data import evaluation_dataset, training_dataset
from ml.training.evaluate import cross_entropy, evaluate_predictions
from ml.training.model import (
    WeightsUnavailable,
    build_classifier,
    copy_weights,
    find_backbone,
    freeze_backbone,
    unfreeze_top_layers,
    with_augmentation,
)
from ml.training.plots import plot_confusion_matrix, plot_reliability, plot_training_curves
from ml.training.runtime import Runtime, dtype_policy, resolve_runtime

if TYPE_CHECKING:
    import keras
    import numpy as np
    import tensorflow as tf

__all__ = ["Stage", "TrainingCancelled", "TrainingResult", "WeightsUnavailable", "prepare_stage", "stages", "train"]

logger = logging.getLogger(__name__)

MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
CURVES_FILE = "training_curves.png"
CONFUSION_FILE = "confusion_matrix.png"
RELIABILITY_FILE = "reliability.png"

Items = Sequence[tuple[str, int]]


class TrainingCancelled(Exception):
    """should_stop() returned True; ``history`` holds the epochs completed before that."""

    def __init__(self, history: Sequence[dict]):
        self.history = list(history)
        super().__init__(f"Training cancelled after {len(self.history)} completed epoch(s).")

    def __reduce__(self):
        return type(self), (self.history,)


@dataclass
class TrainingResult:
    model_path: Path
    history: list[dict]
    metrics: dict
    class_names: list[str]
    curves_png: Path
    confusion_png: Path
    config: dict
    metadata_path: Path
    test_probabilities: np.ndarray | None = None  # uncalibrated; rows follow test_items, columns class_names
    val_probabilities: np.ndarray | None = None  # uncalibrated; rows follow val_items
    temperature: float = 1.0  # fitted on the validation split: serve apply_temperature(p, temperature)
    calibration: dict | None = None  # NLL and ECE before and after, and the reliability bins
    reliability_png: Path | None = None


@dataclass(frozen=True)
class Stage:
    number: int
    epochs: int
    learning_rate: float


def stages(config: TrainingConfig) -> list[Stage]:
    planned = [
        Stage(number=1, epochs=config.stage1_epochs, learning_rate=config.stage1_learning_rate),
        Stage(number=2, epochs=config.stage2_epochs, learning_rate=config.stage2_learning_rate),
    ]
    return [stage for stage in planned if stage.epochs > 0]


def prepare_stage(
    model: keras.Model, stage: Stage, *, config: TrainingConfig, runtime: Runtime, from_scratch: bool = False
) -> None:
    """Set which layers train in this stage and recompile, which Keras needs for a trainability change to count.

    From scratch (no pretrained weights) every layer trains in both stages; stage 2 only lowers the rate, in place:
    recompiling would only retrace the same step (about 30 s for B0 on two CPU cores, as long as 15 tiny epochs)."""
    import keras

    backbone = find_backbone(model)
    if from_scratch and stage.number > 1 and getattr(model, "optimizer", None) is not None:
        model.optimizer.learning_rate.assign(stage.learning_rate)
        return
    if from_scratch:
        backbone.trainable = True
    elif stage.number == 1:
        freeze_backbone(backbone)
    else:
        unfreeze_top_layers(backbone, config.unfreeze_layers)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=stage.learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
        jit_compile=runtime.jit_compile,
        steps_per_execution=runtime.steps_per_execution,
    )


class _Progress:
    """Epoch history, progress reports and cancellation, shared by both stages and the final test prediction."""

    def __init__(
        self,
        planned_stages: Sequence[Stage],
        *,
        on_epoch_end: Callable[[dict], None] | None,
        on_batch_end: Callable[[], None] | None,
        should_stop: Callable[[], bool] | None,
    ):
        self.planned_stages = list(planned_stages)
        self.on_epoch_end = on_epoch_end
        self.on_batch_end = on_batch_end
        self.should_stop = should_stop
        self.history: list[dict] = []
        self.stage = self.planned_stages[0]
        self.stage_first_epoch = 1
        self.epoch_started = 0.0
        self.learning_rate = 0.0

    def start_stage(self, stage: Stage) -> None:
        self.stage = stage
        self.stage_first_epoch = len(self.history) + 1

    def start_epoch(self, learning_rate: float) -> None:
        self.learning_rate = learning_rate
        self.epoch_started = time.monotonic()

    def finish_epoch(self, epoch: int, logs: dict) -> None:
        entry = {
            "stage": self.stage.number,
            "epoch": epoch,
            "loss": float(logs["loss"]),
            "accuracy": float(logs["accuracy"]),
            "val_loss": float(logs["val_loss"]),
            "val_accuracy": float(logs["val_accuracy"]),
            "learning_rate": self.learning_rate,
            "seconds": time.monotonic() - self.epoch_started,
        }
        self.history.append(entry)
        report = {**entry, **self._outlook(epoch)}
        logger.info(
            "epoch %(epoch)d/%(epochs_total)d (stage %(stage)d): loss %(loss).4f accuracy %(accuracy).4f "
            "val_loss %(val_loss).4f val_accuracy %(val_accuracy).4f lr %(learning_rate).2g",
            report,
        )
        if self.on_epoch_end is not None:
            self.on_epoch_end(report)

    def _outlook(self, epoch: int) -> dict:
        later_stages = self.planned_stages[self.planned_stages.index(self.stage) + 1 :]
        epochs_total = self.stage_first_epoch - 1 + self.stage.epochs + sum(stage.epochs for stage in later_stages)
        stage_durations = [entry["seconds"] for entry in self.history if entry["stage"] == self.stage.number]
        return {
            "epochs_total": epochs_total,
            "stage_epochs": self.stage.epochs,
            "stage_epoch": epoch - self.stage_first_epoch + 1,
            # An upper bound: it assumes no early stopping, and stage 2 epochs cost more than stage 1's.
            "eta_seconds": sum(stage_durations) / len(stage_durations) * (epochs_total - epoch),
        }

    def after_batch(self) -> None:
        if self.on_batch_end is not None:
            self.on_batch_end()
        if self.should_stop is not None and self.should_stop():
            # Raised here rather than via model.stop_training, which would still validate the whole epoch first.
            raise TrainingCancelled(self.history)


def _progress_callback(progress: _Progress) -> keras.callbacks.Callback:
    import keras

    class ProgressCallback(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            progress.start_epoch(float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))

        def on_epoch_end(self, epoch, logs=None):
            progress.finish_epoch(epoch + 1, logs)

        def on_train_batch_end(self, batch, logs=None):
            progress.after_batch()

        def on_test_batch_end(self, batch, logs=None):
            progress.after_batch()

        def on_predict_batch_end(self, batch, logs=None):
            progress.after_batch()

    return ProgressCallback()


def _check_inputs(class_names: Sequence[str], splits: dict[str, Items]) -> None:
    if len(class_names) < 2:
        raise ValueError(f"At least two classes are needed to train a classifier; got {list(class_names)}.")
    if len(set(class_names)) != len(class_names):
        raise ValueError(f"class_names must be unique; got {list(class_names)}.")
    for name, items in splits.items():
        if not items:
            raise ValueError(f"{name} is empty; every split needs at least one image.")
        for path, label in items:
            if not isinstance(label, numbers.Integral) or not 0 <= label < len(class_names):
                raise ValueError(f"{name}: class index {label!r} of {path} is outside 0..{len(class_names) - 1}.")
        missing = [path for path, _ in items if not os.path.isfile(path)]
        if missing:
            raise FileNotFoundError(f"{name}: {len(missing)} image file(s) missing, e.g. {missing[0]}.")


def balanced_class_weights(labels: Sequence[int], num_classes: int) -> dict[int, float]:
    """scikit-learn's "balanced" weights for the classes present; 1.0 for absent ones, which Keras still wants."""
    import numpy as np
    from sklearn.utils.class_weight import compute_class_weight

    present = np.unique(labels)
    weights = compute_class_weight("balanced", classes=present, y=np.asarray(labels))
    return dict.fromkeys(range(num_classes), 1.0) | {
        int(index): float(weight) for index, weight in zip(present, weights, strict=True)
    }


def _fit_stage(
    model: keras.Model,
    stage: Stage,
    *,
    config: TrainingConfig,
    runtime: Runtime,
    train_data: tf.data.Dataset,
    val_data: tf.data.Dataset,
    class_weight: dict[int, float] | None,
    progress: _Progress,
    from_scratch: bool,
) -> None:
    import keras

    prepare_stage(model, stage, config=config, runtime=runtime, from_scratch=from_scratch)
    progress.start_stage(stage)
    epochs_done = len(progress.history)
    model.fit(
        train_data,
        validation_data=val_data,
        initial_epoch=epochs_done,
        epochs=epochs_done + stage.epochs,
        class_weight=class_weight,
        shuffle=False,  # the dataset shuffles itself; Keras cannot shuffle a tf.data.Dataset anyway
        verbose=0,
        callbacks=[
            _progress_callback(progress),
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=config.early_stopping_patience, restore_best_weights=True
            ),
            keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss",
                factor=config.reduce_lr_factor,
                patience=config.reduce_lr_patience,
                min_lr=config.min_learning_rate,
            ),
        ],
    )


def _float32_copy(
    model: keras.Model, config: TrainingConfig, num_classes: int, *, from_scratch: bool = False
) -> keras.Model:
    """The trained model rebuilt in float32 without optimizer state: smaller, and fast on the CPUs that serve
    predictions even when it was trained in mixed precision."""
    with dtype_policy("float32"):
        copy = build_classifier(config, num_classes, base_weights="none", from_scratch=from_scratch)
    copy_weights(model, copy)
    return copy


def train(
    config: TrainingConfig,
    *,
    train_items: Items,
    val_items: Items,
    test_items: Items,
    class_names: Sequence[str],
    output_dir: Path,
    base_weights: str = "imagenet",
    on_epoch_end: Callable[[dict], None] | None = None,
    on_batch_end: Callable[[], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    extra_metadata: dict | None = None,
    runtime: Runtime | None = None,
) -> TrainingResult:
    """Fine-tune, evaluate on the test split and write the model, its metadata and plots into output_dir.

    Items are (image path, index into class_names); model output i is class_names[i].
    ``runtime`` defaults to what the visible devices suggest (``resolve_runtime``).
    Raises TrainingCancelled, WeightsUnavailable, or ValueError/FileNotFoundError for bad inputs.
    """
    import keras

    class_names = list(class_names)
    _check_inputs(class_names, {"train_items": train_items, "val_items": val_items, "test_items": test_items})
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    keras.utils.set_random_seed(config.seed)
    runtime = runtime or resolve_runtime(config)
    logger.info("training on %s", runtime.describe())
    num_classes = len(class_names)
    batch_size = config.batch_size * runtime.replicas
    planned_stages = stages(config)
    progress = _Progress(planned_stages, on_epoch_end=on_epoch_end, on_batch_end=on_batch_end, should_stop=should_stop)

    from_scratch = base_weights == "none"
    with dtype_policy(runtime.dtype_policy), runtime.strategy.scope():
        classifier = build_classifier(config, num_classes, base_weights)
        # On a GPU the model augments its own batches; on the CPU the input pipeline does, ahead of the step.
        model = with_augmentation(classifier, config) if runtime.augment_on_device else classifier
        train_data = training_dataset(
            train_items,
            config=config,
            num_classes=num_classes,
            batch_size=batch_size,
            augment=not runtime.augment_on_device,
        )
        val_data = evaluation_dataset(
            val_items, config=config, num_classes=num_classes, batch_size=batch_size, cache=config.cache
        )
        train_labels = [label for _, label in train_items]
        class_weight = balanced_class_weights(train_labels, num_classes) if config.class_weights else None
        for stage in planned_stages:
            _fit_stage(
                model,
                stage,
                config=config,
                runtime=runtime,
                train_data=train_data,
                val_data=val_data,
                class_weight=class_weight,
                progress=progress,
                from_scratch=from_scratch,
            )

    exported = _float32_copy(classifier, config, num_classes, from_scratch=from_scratch)
    callbacks = [_progress_callback(progress)]
    # The exported float32 model is the one served: calibrate and test exactly that.
    val_probabilities = exported.predict(
        evaluation_dataset(val_items, config=config, num_classes=num_classes, batch_size=batch_size),
        verbose=0,
        callbacks=callbacks,
    )
    test_data = evaluation_dataset(test_items, config=config, num_classes=num_classes, batch_size=batch_size)
    probabilities = exported.predict(test_data, verbose=0, callbacks=callbacks)
    y_val = [label for _, label in val_items]
    y_true = [label for _, label in test_items]
    metrics = evaluate_predictions(y_true, probabilities, class_names, loss=cross_entropy(y_true, probabilities))
    temperature = fit_temperature(y_val, val_probabilities)
    calibration = calibration_report(
        temperature=temperature,
        y_val=y_val,
        val_probabilities=val_probabilities,
        y_test=y_true,
        test_probabilities=probabilities,
    )

    model_path = output_dir / MODEL_FILE
    exported.save(model_path)
    curves_png = plot_training_curves(progress.history, output_dir / CURVES_FILE)
    confusion_png = plot_confusion_matrix(metrics["confusion_matrix"], class_names, output_dir / CONFUSION_FILE)
    reliability_png = plot_reliability(
        calibration["test_reliability_before"], calibration["test_reliability_after"], output_dir / RELIABILITY_FILE
    )
    metadata_path = _write_metadata(
        output_dir / METADATA_FILE,
        config=config,
        class_names=class_names,
        base_weights=base_weights,
        runtime=runtime,
        metrics=metrics,
        temperature=temperature,
        calibration=calibration,
        history=progress.history,
        split_sizes={"train": len(train_items), "val": len(val_items), "test": len(test_items)},
        seconds=time.monotonic() - started,
        extra_metadata=extra_metadata or {},
    )
    return TrainingResult(
        model_path=model_path,
        history=list(progress.history),
        metrics=metrics,
        class_names=class_names,
        curves_png=curves_png,
        confusion_png=confusion_png,
        config=config.to_dict(),
        metadata_path=metadata_path,
        test_probabilities=probabilities,
        val_probabilities=val_probabilities,
        temperature=temperature,
        calibration=calibration,
        reliability_png=reliability_png,
    )


def calibration_report(
    *,
    temperature: float,
    y_val: Sequence[int],
    val_probabilities: np.ndarray,
    y_test: Sequence[int],
    test_probabilities: np.ndarray,
) -> dict:
    """How much the temperature helped: NLL on validation (where it was fitted), ECE on both splits."""
    calibrated_val = apply_temperature(val_probabilities, temperature)
    calibrated_test = apply_temperature(test_probabilities, temperature)
    test_before, test_after = reliability(y_test, test_probabilities), reliability(y_test, calibrated_test)
    return {
        "temperature": temperature,
        "val_nll_before": negative_log_likelihood(y_val, val_probabilities),
        "val_nll_after": negative_log_likelihood(y_val, calibrated_val),
        "val_ece_before": reliability(y_val, val_probabilities)["ece"],
        "val_ece_after": reliability(y_val, calibrated_val)["ece"],
        "test_ece_before": test_before["ece"],
        "test_ece_after": test_after["ece"],
        "test_reliability_before": test_before,
        "test_reliability_after": test_after,
    }


def _write_metadata(path: Path, *, config: TrainingConfig, class_names: list[str], runtime: Runtime, **facts: Any):
    import keras
    import numpy as np
    import tensorflow as tf

    metadata = {
        "model_file": MODEL_FILE,
        "created_at": datetime.now(UTC).isoformat(),
        "config": config.to_dict(),
        "config_hash": config_hash(config),
        "class_names": class_names,
        "class_map": {str(index): code for index, code in enumerate(class_names)},
        "input": {
            "image_size": config.image_size,
            "channels": "RGB",
            "value_range": [0, 255],
            "preprocessing": "ml.training.data.prepare_image (squashed to a square, no crop)",
        },
        "runtime": runtime.describe(),
        "versions": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
        },
        **facts,
    }
    # default=str: extra_metadata may carry ids, dates or paths from the caller.
    path.write_text(json.dumps(metadata, indent=2, default=str))
    return path
