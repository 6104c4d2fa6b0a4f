"""EfficientNet backbone plus a small classification head, as in the keras-io fine-tuning example.

Every backbone is built with ``weights=None`` and its weights loaded afterwards,
whatever their source, so that a trained classifier can always be rebuilt with
the same layers (for example as a float32 copy for export).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from ml.training.config import TrainingConfig

if TYPE_CHECKING:
    import keras

IMAGENET_STDDEV_RGB = (0.229, 0.224, 0.225)
BASE_WEIGHTS_URL = "https://storage.googleapis.com/keras-applications/"
FROM_SCRATCH_BATCH_NORM_MOMENTUM = 0.9


class WeightsUnavailable(RuntimeError):
    """The requested base weights could not be obtained or loaded."""


def build_classifier(
    config: TrainingConfig, num_classes: int, base_weights: str = "imagenet", *, from_scratch: bool | None = None
) -> keras.Model:
    """Image (0..255 RGB) -> class probabilities.

    With pretrained weights the backbone runs in inference mode, so BatchNormalization never updates its
    statistics, even once unfrozen (the keras-io recipe). Without them (``base_weights="none"``, or
    ``from_scratch=True``) a frozen random backbone would only pass noise on, so it trains from scratch instead:
    every layer trainable and BatchNormalization learning its statistics.
    """
    import keras

    if from_scratch is None:
        from_scratch = base_weights == "none"
    backbone = build_backbone(config.backbone, config.image_size, base_weights)
    if from_scratch:
        # EfficientNet's BatchNormalization averages its statistics with momentum 0.99, tuned for ImageNet's
        # millions of steps; from scratch on a few thousand images the validation pass would use stale
        # statistics for the first epochs (the network looks at chance, then jumps). 0.9 follows within an epoch.
        for layer in _all_layers(backbone):
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = FROM_SCRATCH_BATCH_NORM_MOMENTUM
    inputs = keras.Input(shape=(config.image_size, config.image_size, 3), name="image")
    features = backbone(inputs, training=None if from_scratch else False)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(features)
    x = keras.layers.Dense(config.dense_units, activation="relu", kernel_initializer="he_normal", name="head_dense")(x)
    x = keras.layers.Dropout(config.dropout, name="head_dropout")(x)
    # float32 so that softmax and the loss stay numerically safe under mixed precision.
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="predictions")(x)
    return keras.Model(inputs, outputs, name=f"dermcurate_efficientnet{config.backbone.lower()}")


def build_backbone(backbone: str, image_size: int, base_weights: str = "imagenet") -> keras.Model:
    """EfficientNet{backbone} without its top. base_weights: "imagenet", "none" or a weights file path."""
    import keras

    constructor = getattr(keras.applications, f"EfficientNet{backbone}")
    model = constructor(include_top=False, weights=None, input_shape=(image_size, image_size, 3))
    if base_weights == "none":
        return model
    if base_weights == "imagenet":
        copy_weights(_downloaded_imagenet_backbone(constructor, backbone, image_size), model)
    else:
        _load_weights_file(model, Path(base_weights).expanduser(), backbone)
    _fold_imagenet_input_scaling(model)
    return model


def _downloaded_imagenet_backbone(constructor, backbone: str, image_size: int) -> keras.Model:
    try:
        return constructor(include_top=False, weights="imagenet", input_shape=(image_size, image_size, 3))
    except Exception as error:  # Keras raises a bare Exception for a failed download
        file_name = f"efficientnet{backbone.lower()}_notop.h5"
        raise WeightsUnavailable(
            f"Could not download the ImageNet weights for EfficientNet{backbone} ({error}). "
            f"Without internet access, fetch {BASE_WEIGHTS_URL}{file_name} on another machine and set "
            f"ML_BASE_WEIGHTS to the path of that local file, or set ML_BASE_WEIGHTS=none to train from "
            f"random initialisation."
        ) from error


def _load_weights_file(model: keras.Model, path: Path, backbone: str) -> None:
    expected = f"efficientnet{backbone.lower()}_notop.h5"
    if not path.is_file():
        raise WeightsUnavailable(
            f"Base weights file {path} does not exist. Set ML_BASE_WEIGHTS to an existing EfficientNet{backbone} "
            f"weights file (e.g. {expected}), to 'imagenet' or to 'none'."
        )
    try:
        model.load_weights(str(path))
    except Exception as error:  # Keras raises ValueError, KeyError or OSError depending on what is wrong
        reason = textwrap.shorten(str(error), width=300, placeholder=" ...")  # Keras may list every layer
        raise WeightsUnavailable(
            f"Could not load base weights from {path} into EfficientNet{backbone}: {reason} The file must hold the "
            f"weights of the EfficientNet{backbone} backbone without its top (e.g. {expected})."
        ) from error


def _fold_imagenet_input_scaling(backbone: keras.Model) -> None:
    """Keras' published EfficientNet weights store the ImageNet standard deviation where the Normalization layer
    expects a variance (tensorflow/tensorflow#49930). Keras compensates with an extra Rescaling layer, but only in a
    backbone built with ``weights="imagenet"``; ours are built with ``weights=None``, so the same correction goes into
    the variance instead. Weights without those statistics are left alone."""
    import keras
    import numpy as np

    normalization = next(layer for layer in backbone.layers if isinstance(layer, keras.layers.Normalization))
    variance = keras.ops.convert_to_numpy(normalization.adapt_variance)
    stddev = np.asarray(IMAGENET_STDDEV_RGB, dtype=variance.dtype)
    if np.allclose(variance, stddev, rtol=0, atol=1e-4):
        normalization.adapt_variance.assign(variance * stddev)
        normalization.finalize_state()


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """All weights of source into target, which has the same layers."""
    target.set_weights(source.get_weights())
    # set_weights bypasses the loading hooks, so Normalization would keep using its old mean and variance.
    for layer in _all_layers(target):
        if hasattr(layer, "finalize_state"):
            layer.finalize_state()


def _all_layers(model: keras.Model) -> list:
    layers = []
    for layer in model.layers:
        layers.append(layer)
        if hasattr(layer, "layers"):
            layers.extend(_all_layers(layer))
    return layers


def with_augmentation(classifier: keras.Model, config: TrainingConfig) -> keras.Model:
    """The classifier behind the random augmentation layers, for training on the device (a GPU augments its own
    batches, so the CPU feeding it is not the bottleneck). The layers are inactive outside training; the classifier
    itself, without them, is what gets exported."""
    import keras

    from ml.training.data import augmentation

    augment = augmentation(config)
    if augment is None:
        return classifier
    inputs = keras.Input(shape=(config.image_size, config.image_size, 3), name="image")
    return keras.Model(inputs, classifier(augment(inputs)), name="augmented_training_model")


def find_backbone(model: keras.Model) -> keras.Model:
    """The EfficientNet inside a classifier (or inside the augmented training model around it)."""
    for layer in _all_layers(model):
        if layer.name.startswith("efficientnet"):
            return layer
    raise ValueError(f"{model.name} holds no EfficientNet backbone.")


def freeze_backbone(backbone: keras.Model) -> None:
    backbone.trainable = False


def unfreeze_top_layers(backbone: keras.Model, count: int) -> None:
    """Make the top ``count`` layers of the backbone trainable, except BatchNormalization layers, which stay frozen
    (keras-io's recipe: their statistics come from far more images than a fine-tuning set holds)."""
    import keras

    backbone.trainable = True  # a frozen parent hides its children's weights from the optimizer
    first_unfrozen = len(backbone.layers) - count
    for index, layer in enumerate(backbone.layers):
        layer.trainable = index >= first_unfrozen and not isinstance(layer, keras.layers.BatchNormalization)
