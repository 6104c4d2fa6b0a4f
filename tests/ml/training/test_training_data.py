import io
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.training import config_from_preset
from ml.training.data import evaluation_dataset, prepare_image, training_dataset


def _encoded(image: Image.Image, image_format: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("mode", "image_format"), [("RGB", "JPEG"), ("L", "JPEG"), ("RGBA", "PNG"), ("P", "GIF"), ("RGB", "BMP")]
)
def test_any_common_image_becomes_an_rgb_square_of_the_input_size(mode, image_format):
    image = Image.new("RGB", (600, 450), (200, 100, 50)).convert(mode)

    prepared = prepare_image(_encoded(image, image_format), 64)

    assert prepared.shape == (64, 64, 3)
    assert prepared.dtype == np.float32
    assert 0 <= prepared.min() <= prepared.max() <= 255


def test_large_jpegs_decoded_at_reduced_scale_match_a_full_decode():
    """libjpeg's reduced-scale decode is a shortcut, not a different picture."""
    height, width = 900, 1200
    rows, columns = np.mgrid[0:height, 0:width]
    gradient = np.stack([columns / width * 255, rows / height * 255, np.full((height, width), 128)], axis=-1)
    encoded = _encoded(Image.fromarray(gradient.astype(np.uint8)), "JPEG")

    prepared = prepare_image(encoded, 100)

    reference = np.asarray(Image.open(io.BytesIO(encoded)).resize((100, 100), Image.Resampling.BILINEAR))
    assert np.abs(prepared - reference).mean() < 2


def test_evaluation_data_keeps_every_item_in_order_without_augmentation(image_splits):
    config = config_from_preset("tiny")
    items = image_splits["val"][:11]  # not a multiple of the batch size

    batches = list(evaluation_dataset(items, config=config, num_classes=3, batch_size=4))

    images = np.concatenate([np.asarray(images) for images, _ in batches])
    labels = np.concatenate([np.asarray(labels) for _, labels in batches])
    assert labels.argmax(axis=1).tolist() == [label for _, label in items]
    expected = np.stack([prepare_image(Path(path).read_bytes(), config.image_size) for path, _ in items])
    np.testing.assert_array_equal(images, expected)


def test_training_data_yields_each_item_once_per_epoch_in_a_new_order(image_splits):
    config = config_from_preset("tiny", {"rotation_factor": 0.0, "horizontal_flip": False})
    items = image_splits["train"]
    dataset = training_dataset(items, config=config, num_classes=3, batch_size=8)

    def epoch_images():
        return np.concatenate([np.asarray(images) for images, _ in dataset])

    first, second = epoch_images(), epoch_images()

    expected = {prepare_image(Path(path).read_bytes(), config.image_size).tobytes() for path, _ in items}
    assert Counter(image.tobytes() for image in first) == Counter(expected)
    assert Counter(image.tobytes() for image in second) == Counter(expected)
    assert not np.array_equal(first, second)


def test_training_data_is_augmented(image_splits):
    config = config_from_preset("tiny")
    items = image_splits["train"]
    dataset = training_dataset(items, config=config, num_classes=3, batch_size=len(items))

    images, _ = next(iter(dataset))

    originals = {prepare_image(Path(path).read_bytes(), config.image_size).tobytes() for path, _ in items}
    assert not {image.tobytes() for image in np.asarray(images)} & originals


def _flipped_and_turned(config, batches: int = 6):
    """Run a striped test card (left half bright) through the augmentation; per image, whether it was flipped and
    how far it was turned (from where the top stripe went)."""
    from ml.training.data import augmentation

    card = np.zeros((32, 32, 32, 3), np.float32)
    card[:, :, :16, 0] = 255  # left half red: a flip moves it right
    card[:, :, 15:17, 1] = 255  # a vertical green line: a turn tilts it
    layers = augmentation(config)
    flips, turns = [], []
    for _ in range(batches):
        out = np.asarray(layers(card, training=True))
        flips += list(out[:, 8:24, 20:28, 0].mean(axis=(1, 2)) > out[:, 8:24, 4:12, 0].mean(axis=(1, 2)))
        # Column of the green line at the top row minus at the bottom row: the sign tells the turn's direction.
        top = out[:, 2, :, 1].argmax(axis=1).astype(float)
        bottom = out[:, 29, :, 1].argmax(axis=1).astype(float)
        turns += list(top - bottom)
    return np.array(flips), np.array(turns)


def test_flip_and_rotation_are_independent():
    """Both layers once shared one seed: every flipped image turned one way and every other the other way."""
    config = config_from_preset("tiny", {"rotation_factor": 0.1})

    flips, turns = _flipped_and_turned(config)

    assert 0.3 < flips.mean() < 0.7
    turned = turns != 0
    for flipped in (True, False):
        signs = np.sign(turns[(flips == flipped) & turned])
        assert (signs > 0).any() and (signs < 0).any(), f"flipped={flipped}: images turned both ways"


def test_the_same_seed_gives_the_same_augmented_epochs(image_splits):
    config = config_from_preset("tiny")

    def two_epochs():
        import keras

        keras.utils.set_random_seed(config.seed)
        dataset = training_dataset(image_splits["train"], config=config, num_classes=3, batch_size=8)
        return [np.asarray(images) for _ in range(2) for images, _ in dataset]

    first, second = two_epochs(), two_epochs()

    assert all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))
    assert not np.array_equal(np.concatenate(first[: len(first) // 2]), np.concatenate(first[len(first) // 2 :]))
