"""Serving a trained model: encoded image bytes in, uncalibrated class probabilities out.

The same ``prepare_image`` as training's input pipeline (decode, squash to the square input size, 0..255 RGB), and
one compiled function per model, so that a long-lived worker pays for tracing once.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ml.training.data import prepare_image

if TYPE_CHECKING:
    import numpy as np


class Predictor:
    """A loaded ``.keras`` classifier. ``image_size`` is read from the model's input."""

    def __init__(self, model_path: str | Path):
        import keras
        import tensorflow as tf

        self.model = keras.models.load_model(model_path, compile=False)
        self.image_size = int(self.model.input_shape[1])
        signature = tf.TensorSpec((None, self.image_size, self.image_size, 3), tf.float32)
        self._call = tf.function(lambda images: self.model(images, training=False), input_signature=[signature])

    def prepare(self, images: Sequence[bytes]) -> np.ndarray:
        import numpy as np

        return np.stack([prepare_image(data, self.image_size) for data in images])

    def probabilities_of_arrays(self, arrays: np.ndarray) -> np.ndarray:
        """The bare model call on prepared arrays (what the latency benchmark compares against)."""
        return self._call(arrays).numpy()

    def probabilities(self, images: Sequence[bytes]) -> np.ndarray:
        return self.probabilities_of_arrays(self.prepare(images))
