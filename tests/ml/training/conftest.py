"""Generated images and one shared tiny training run: training is the expensive part, so it happens once."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from ml.training import TrainingConfig

CLASS_NAMES = ["red_disc", "green_square", "blue_stripes"]
# Enough training batches per epoch that the loss falls reliably, even on stand-in backbone weights.
SPLIT_SIZES_PER_CLASS = {"train": 36, "val": 8, "test": 8}


def draw_class_image(label: int, rng: np.random.Generator, size: tuple[int, int] = (64, 64)) -> Image.Image:
    """Colour and shape both tell the classes apart, so even a tiny network learns them in a few steps."""
    width, height = size
    background = rng.normal(235, 12, (height, width, 3))
    image = Image.fromarray(np.clip(background, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    jitter = rng.integers(-4, 5, size=2)
    left, top = width // 4 + jitter[0], height // 4 + jitter[1]
    right, bottom = left + width // 2, top + height // 2
    if label == 0:
        draw.ellipse((left, top, right, bottom), fill=(210, 40, 40))
    elif label == 1:
        draw.rectangle((left, top, right, bottom), fill=(40, 170, 60))
    else:
        for y in range(0, height, 8):
            draw.rectangle((0, y, width, y + 3), fill=(40, 60, 210))
    return image


def write_class_images(directory: Path, per_class: int, seed: int = 0) -> list[tuple[str, int]]:
    """(path, label) pairs, alternating JPEG and PNG so both decoders are exercised."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    items = []
    for label in range(len(CLASS_NAMES)):
        for number in range(per_class):
            path = directory / f"{CLASS_NAMES[label]}_{number}.{'png' if number % 2 else 'jpg'}"
            draw_class_image(label, rng).save(path)
            items.append((str(path), label))
    return items


def split_items(items: list[tuple[str, int]]) -> dict[str, list[tuple[str, int]]]:
    splits = {name: [] for name in SPLIT_SIZES_PER_CLASS}
    for label in range(len(CLASS_NAMES)):
        of_class = iter(item for item in items if item[1] == label)
        for name, size in SPLIT_SIZES_PER_CLASS.items():
            splits[name] += [next(of_class) for _ in range(size)]
    return splits


def write_calibrated_backbone_weights(path: Path, image_paths: list[str], *, config: TrainingConfig) -> Path:
    """Random EfficientNet weights whose BatchNormalization statistics are measured on the given images.

    ImageNet weights cannot be downloaded here, and a randomly initialised
    EfficientNet in inference mode shrinks its features to about 1e-7, which no
    head can learn from. Measured statistics keep the random features at unit
    scale: a head can fit them, though they generalise far worse than
    pre-trained ones (truly pre-training a stand-in would cost half a minute).
    """
    import keras

    from ml.training.data import augmentation, prepare_image
    from ml.training.model import build_backbone

    model = build_backbone(config.backbone, config.image_size, "none")
    batch_normalization = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in batch_normalization:
        layer.momentum = 0.0  # the moving statistics become this one batch's statistics
    images = np.stack([prepare_image(Path(image_path).read_bytes(), config.image_size) for image_path in image_paths])
    # Measured on augmented copies too, so that training inputs stay inside the measured range.
    augmented = [keras.ops.convert_to_numpy(augmentation(config)(images, training=True)) for _ in range(2)]
    model(np.concatenate([images, *augmented]), training=True)
    for layer in batch_normalization:
        # A channel that hardly varied over a few dozen images must not amplify the next image's noise.
        layer.moving_variance.assign(keras.ops.maximum(layer.moving_variance, 1e-2))
    model.save_weights(path)
    return path


@pytest.fixture(scope="session")
def class_names() -> list[str]:
    return list(CLASS_NAMES)


@pytest.fixture(scope="session")
def image_splits(tmp_path_factory) -> dict[str, list[tuple[str, int]]]:
    return split_items(write_class_images(tmp_path_factory.mktemp("images"), sum(SPLIT_SIZES_PER_CLASS.values())))


@pytest.fixture(scope="session")
def calibrated_weights(tmp_path_factory, image_splits) -> Path:
    from ml.training import PRESETS

    return write_calibrated_backbone_weights(
        tmp_path_factory.mktemp("weights") / "calibrated_b0.weights.h5",
        [path for path, _ in image_splits["train"]],
        config=PRESETS["tiny"],
    )


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, image_splits, calibrated_weights):
    """The tiny preset trained once, with every report it sent."""
    from ml.training import PRESETS, train

    epoch_reports: list[dict] = []
    batch_count = [0]

    def count_batch():
        batch_count[0] += 1

    result = train(
        PRESETS["tiny"],
        train_items=image_splits["train"],
        val_items=image_splits["val"],
        test_items=image_splits["test"],
        class_names=CLASS_NAMES,
        output_dir=tmp_path_factory.mktemp("tiny_run"),
        base_weights=str(calibrated_weights),
        on_epoch_end=epoch_reports.append,
        on_batch_end=count_batch,
        extra_metadata={"snapshot_hash": "abc123", "snapshot_id": 7},
    )
    return {"result": result, "epoch_reports": epoch_reports, "batches": batch_count[0]}
