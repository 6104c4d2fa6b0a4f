"""tf.data input pipelines built from plain (image path, class index) lists.

Images are decoded in parallel, resized to the square input size (squashed, as
the seed's ``image_dataset_from_directory`` loader did) and cached as uint8, so
the first epoch pays for decoding and later ones only for augmentation. The
model sees RGB values in 0..255: Keras' EfficientNet rescales inside itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ml.training.config import TrainingConfig

if TYPE_CHECKING:
    import numpy as np
    import tensorflow as tf

Items = Sequence[tuple[str, int]]

# libjpeg can decode straight to 1/2, 1/4 or 1/8 scale, much faster than a full decode.
_JPEG_SCALE_DENOMINATORS = (1, 2, 4, 8)


def decode_and_resize(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
    """Encoded JPEG/PNG/GIF/BMP bytes to an (image_size, image_size, 3) uint8 RGB tensor."""
    import tensorflow as tf

    size = (image_size, image_size)

    def decode_jpeg_scaled():
        shortest_side = tf.reduce_min(tf.io.extract_jpeg_shape(image_bytes)[:2])
        # The largest libjpeg scale that still leaves both sides at least image_size.
        scale_index = tf.add_n(
            [
                tf.cast(shortest_side >= image_size * denominator, tf.int32)
                for denominator in _JPEG_SCALE_DENOMINATORS[1:]
            ]
        )
        branches = [
            lambda denominator=denominator: tf.io.decode_jpeg(image_bytes, channels=3, ratio=denominator)
            for denominator in _JPEG_SCALE_DENOMINATORS
        ]
        image = tf.switch_case(scale_index, branches)
        # Area averaging antialiases a shrink at the cost of a plain bilinear resize (an antialiased bilinear
        # resize halves the pipeline's throughput), but blocks up an enlargement, where bilinear is right.
        return tf.cond(
            shortest_side >= image_size,
            lambda: tf.image.resize(image, size, method="area"),
            lambda: tf.image.resize(image, size),
        )

    def decode_other():
        image = tf.io.decode_image(image_bytes, channels=3, expand_animations=False)
        return tf.image.resize(image, size, antialias=True)

    image = tf.cond(tf.io.is_jpeg(image_bytes), decode_jpeg_scaled, decode_other)
    # uint8 keeps the in-memory cache a quarter the size of float32.
    return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)


def prepare_image(image_bytes: bytes, image_size: int) -> np.ndarray:
    """One encoded image as the model's float32 input, preprocessed exactly as in training."""
    import tensorflow as tf

    return tf.cast(decode_and_resize(tf.constant(image_bytes), image_size), tf.float32).numpy()


def _decoded(items: Items, image_size: int, *, shuffle_seed: int | None = None, reshuffle: bool = False):
    import tensorflow as tf

    paths = [path for path, _ in items]
    labels = [label for _, label in items]
    dataset = tf.data.Dataset.from_tensor_slices((paths, tf.constant(labels, tf.int32)))
    if shuffle_seed is not None:
        # Paths are cheap to shuffle in full, before the expensive decode.
        dataset = dataset.shuffle(len(items), seed=shuffle_seed, reshuffle_each_iteration=reshuffle)
    return dataset.map(
        lambda path, label: (decode_and_resize(tf.io.read_file(path), image_size), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def _one_hot_batches(dataset: tf.data.Dataset, *, num_classes: int, batch_size: int) -> tf.data.Dataset:
    import tensorflow as tf

    return dataset.batch(batch_size).map(
        lambda images, labels: (tf.cast(images, tf.float32), tf.one_hot(labels, num_classes)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


# Each random layer draws from its own seed: one shared seed coupled them (every flipped image turned one way).
FLIP_SEED_OFFSET = 1
ROTATION_SEED_OFFSET = 2


def augmentation(config: TrainingConfig):
    """The seed's augmentation, rotation and horizontal flip only (no crop, zoom or shift); None when off.

    float32 whatever the global dtype policy, so that the same pixels come out under mixed precision."""
    import keras

    layers = []
    if config.horizontal_flip:
        layers.append(
            keras.layers.RandomFlip("horizontal", seed=config.seed + FLIP_SEED_OFFSET, dtype="float32", name="flip")
        )
    if config.rotation_factor > 0:
        layers.append(
            keras.layers.RandomRotation(
                config.rotation_factor, seed=config.seed + ROTATION_SEED_OFFSET, dtype="float32", name="rotation"
            )
        )
    return keras.Sequential(layers, name="augmentation") if layers else None


def training_dataset(
    items: Items, *, config: TrainingConfig, num_classes: int, batch_size: int, augment: bool = True
) -> tf.data.Dataset:
    """Shuffled every epoch; augmented on the fly after the cache unless ``augment`` is off (when the model
    augments on the device instead)."""
    import tensorflow as tf

    if config.cache:
        # The cache replays the order it was filled in, so the decoded images are
        # shuffled again each epoch; the fill order is already random, so a bounded
        # buffer mixes well without holding a second copy of a large dataset.
        dataset = _decoded(items, config.image_size, shuffle_seed=config.seed).cache()
        dataset = dataset.shuffle(min(len(items), config.shuffle_buffer), seed=config.seed)
    else:
        dataset = _decoded(items, config.image_size, shuffle_seed=config.seed, reshuffle=True)
    dataset = _one_hot_batches(dataset, num_classes=num_classes, batch_size=batch_size)
    augment_layers = augmentation(config) if augment else None
    if augment_layers is not None:
        # One batch at a time: the layers' random state advances once per call, and calls made in parallel race
        # on it, so the same seed gave different runs. A whole batch is transformed in one call anyway.
        dataset = dataset.map(lambda images, labels: (augment_layers(images, training=True), labels))
    return dataset.prefetch(tf.data.AUTOTUNE)


def evaluation_dataset(
    items: Items, *, config: TrainingConfig, num_classes: int, batch_size: int, cache: bool = False
) -> tf.data.Dataset:
    """In item order, never shuffled or augmented, every item included."""
    import tensorflow as tf

    dataset = _decoded(items, config.image_size)
    if cache:
        dataset = dataset.cache()
    return _one_hot_batches(dataset, num_classes=num_classes, batch_size=batch_size).prefetch(tf.data.AUTOTUNE)
