import urllib.error
from pathlib import Path

import numpy as np
import pytest

from ml.training import PRESETS, WeightsUnavailable, config_from_preset
from ml.training.data import prepare_image
from ml.training.fit import _float32_copy, prepare_stage, stages
from ml.training.model import (
    IMAGENET_STDDEV_RGB,
    build_backbone,
    build_classifier,
    find_backbone,
    freeze_backbone,
    unfreeze_top_layers,
)
from ml.training.runtime import dtype_policy, resolve_runtime

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)


def _normalization(backbone):
    import keras

    return next(layer for layer in backbone.layers if isinstance(layer, keras.layers.Normalization))


def _assert_same_weights(expected, actual):
    assert len(expected) == len(actual)
    for expected_array, actual_array in zip(expected, actual, strict=True):
        np.testing.assert_array_equal(expected_array, actual_array)


def test_unfreezing_makes_the_top_n_layers_trainable_except_batch_normalization():
    import keras

    backbone = build_backbone("B0", 32, "none")
    freeze_backbone(backbone)
    assert backbone.trainable_weights == []

    unfreeze_top_layers(backbone, 30)

    top = backbone.layers[-30:]
    batch_normalization = [layer for layer in top if isinstance(layer, keras.layers.BatchNormalization)]
    trainable = [layer for layer in backbone.layers if layer.trainable]
    assert batch_normalization, "the window should contain BatchNormalization layers for this test to mean anything"
    assert trainable == [layer for layer in top if layer not in batch_normalization]
    assert len(trainable) == 30 - len(batch_normalization)
    assert not any(layer.trainable for layer in backbone.layers if isinstance(layer, keras.layers.BatchNormalization))
    trainable_weight_ids = {id(weight) for weight in backbone.trainable_weights}
    assert trainable_weight_ids == {id(weight) for layer in trainable for weight in layer.trainable_weights}


@pytest.mark.parametrize("file_name", ["backbone.weights.h5", "efficientnetb0_notop.h5"])
def test_backbone_weights_load_from_a_local_file(tmp_path, file_name):
    """Both the Keras 3 weights format and the legacy HDF5 format of Keras' published weight files."""
    source = build_backbone("B0", 32, "none")
    path = tmp_path / file_name
    if file_name.endswith(".weights.h5"):
        source.save_weights(path)
    else:
        source.save(path)  # legacy HDF5, the format of the published *_notop.h5 files

    model = build_classifier(PRESETS["tiny"], num_classes=3, base_weights=str(path))

    _assert_same_weights(source.get_weights(), find_backbone(model).get_weights())


def test_published_imagenet_statistics_are_corrected_as_keras_does(tmp_path):
    """The published files store the ImageNet standard deviation as the variance; the loaded backbone must still
    normalise by the standard deviation, as a Keras-downloaded one does."""
    source = build_backbone("B0", 32, "none")
    normalization = _normalization(source)
    normalization.adapt_mean.assign(IMAGENET_MEAN_RGB)
    normalization.adapt_variance.assign(IMAGENET_STDDEV_RGB)
    path = tmp_path / "efficientnetb0_notop.weights.h5"
    source.save_weights(path)

    loaded = _normalization(build_backbone("B0", 32, str(path)))

    pixel = np.array([[[[0.8, 0.5, 0.2]]]], dtype="float32")
    expected = (pixel - np.array(IMAGENET_MEAN_RGB)) / np.array(IMAGENET_STDDEV_RGB)
    np.testing.assert_allclose(np.asarray(loaded(pixel)), expected, rtol=1e-5)


def test_a_missing_weights_file_is_named_in_the_error(tmp_path):
    path = tmp_path / "nowhere" / "efficientnetb0_notop.h5"

    with pytest.raises(WeightsUnavailable, match=str(path)):
        build_backbone("B0", 32, str(path))


@pytest.mark.filterwarnings("ignore:Skipping nested container:UserWarning")
def test_a_weights_file_of_another_backbone_is_refused_clearly(tmp_path):
    path = tmp_path / "b1.weights.h5"
    build_backbone("B1", 32, "none").save_weights(path)

    with pytest.raises(WeightsUnavailable, match="into EfficientNetB0"):
        build_backbone("B0", 32, str(path))


def test_imagenet_weights_offline_say_how_to_use_a_local_file(tmp_path, monkeypatch):
    import keras.src.backend.config
    import keras.src.utils.file_utils

    def unreachable(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    # An empty cache and a network that fails the way this offline machine's does, wherever the suite runs.
    monkeypatch.setattr(keras.src.backend.config, "_KERAS_DIR", str(tmp_path))
    monkeypatch.setattr(keras.src.utils.file_utils, "urlretrieve", unreachable)

    with pytest.raises(WeightsUnavailable) as unavailable:
        build_backbone("B0", 32, "imagenet")

    message = str(unavailable.value)
    assert "ML_BASE_WEIGHTS" in message
    assert "efficientnetb0_notop.h5" in message
    assert "none" in message


def test_mixed_precision_model_is_exported_as_an_equivalent_float32_model(calibrated_weights, image_splits):
    import keras

    tiny = PRESETS["tiny"]
    policy_before = keras.config.dtype_policy().name
    with dtype_policy("mixed_float16"):
        mixed = build_classifier(tiny, num_classes=3, base_weights=str(calibrated_weights))
    assert keras.config.dtype_policy().name == policy_before
    assert find_backbone(mixed).compute_dtype == "float16"
    assert mixed.get_layer("predictions").compute_dtype == "float32"

    exported = _float32_copy(mixed, tiny, num_classes=3)

    assert {layer.compute_dtype for layer in find_backbone(exported).layers} == {"float32"}
    # Mixed precision keeps its variables in float32: the copy holds them bit for bit.
    for original, copied in zip(mixed.get_weights(), exported.get_weights(), strict=True):
        np.testing.assert_array_equal(copied, original)
    images = np.stack([prepare_image(Path(path).read_bytes(), tiny.image_size) for path, _ in image_splits["test"]])
    exported_probabilities = exported.predict(images, verbose=0)
    mixed_probabilities = mixed.predict(images, verbose=0)
    # float16 keeps about 3 significant digits of every activation; through the 16 blocks of a random backbone
    # (ImageNet weights cannot be downloaded here) that moves a few probabilities by up to about 0.1, so the
    # comparison is on the mean difference and the predicted classes, with a bound on the largest difference.
    difference = np.abs(exported_probabilities - mixed_probabilities)
    assert difference.mean() < 1e-2, difference
    assert difference.max() < 0.25, difference
    assert (exported_probabilities.argmax(1) == mixed_probabilities.argmax(1)).mean() >= 0.9


@pytest.mark.slow
def test_efficientnet_b5_fine_tuning_step_changes_only_the_unfrozen_weights():
    import keras

    config = config_from_preset("seed", {"image_size": 64, "batch_size": 2})
    model = build_classifier(config, num_classes=3, base_weights="none")
    prepare_stage(model, stages(config)[1], config=config, runtime=resolve_runtime(config))
    model.run_eagerly = True  # one step: tracing B5's graph would cost several times the step itself
    trainable = {id(weight) for weight in model.trainable_weights}
    before = [keras.ops.convert_to_numpy(weight) for weight in model.weights]
    images = np.random.default_rng(0).uniform(0, 255, (2, 64, 64, 3)).astype("float32")

    loss, _ = model.train_on_batch(images, np.eye(3, dtype="float32")[[0, 2]])

    assert find_backbone(model).name == "efficientnetb5"
    assert np.isfinite(loss)
    changed = {
        id(weight)
        for weight, old in zip(model.weights, before, strict=True)
        if not np.array_equal(keras.ops.convert_to_numpy(weight), old)
    }
    assert changed
    assert changed <= trainable


def test_from_scratch_stage_2_lowers_the_rate_in_place_without_recompiling():
    """From scratch every layer trains in both stages, so stage 2 keeps the compiled step (and Adam's state) and
    only sets its own rate: recompiling would retrace the same graph, about as long as 15 tiny epochs."""
    tiny = PRESETS["tiny"]
    runtime = resolve_runtime(tiny)
    first, second = stages(tiny)
    model = build_classifier(tiny, num_classes=3, base_weights="none")
    prepare_stage(model, first, config=tiny, runtime=runtime, from_scratch=True)
    optimizer = model.optimizer
    model.run_eagerly = True  # one step: tracing the graph would cost far more than the step
    images = np.random.default_rng(0).uniform(0, 255, (4, tiny.image_size, tiny.image_size, 3)).astype("float32")
    model.train_on_batch(images, np.eye(3, dtype="float32")[[0, 1, 2, 0]])
    step = model.train_function
    assert step is not None

    prepare_stage(model, second, config=tiny, runtime=runtime, from_scratch=True)

    assert model.optimizer is optimizer
    assert model.train_function is step  # a recompile resets it
    assert float(np.asarray(model.optimizer.learning_rate)) == pytest.approx(second.learning_rate)
    assert all(layer.trainable for layer in find_backbone(model).layers)


def test_with_pretrained_weights_stage_2_recompiles_with_the_top_layers_unfrozen(calibrated_weights):
    tiny = PRESETS["tiny"]
    runtime = resolve_runtime(tiny)
    first, second = stages(tiny)
    model = build_classifier(tiny, num_classes=3, base_weights=str(calibrated_weights))
    prepare_stage(model, first, config=tiny, runtime=runtime)
    optimizer = model.optimizer

    prepare_stage(model, second, config=tiny, runtime=runtime)

    assert model.optimizer is not optimizer
    assert float(np.asarray(model.optimizer.learning_rate)) == pytest.approx(second.learning_rate)
    backbone = find_backbone(model)
    assert sum(layer.trainable for layer in backbone.layers) <= tiny.unfreeze_layers
    assert any(layer.trainable for layer in backbone.layers)
