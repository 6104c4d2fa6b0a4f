"""DermCurate's training library: a frozen config in, (image path, class index) lists in, a model with its metrics
and plots out. Pure Keras: nothing here imports Django or the rest of the project, and TensorFlow is imported only
inside the functions that run it, so web processes can validate configs cheaply."""

from ml.training.config import (
    PRESETS,
    ConfigError,
    TrainingConfig,
    config_from_dict,
    config_from_preset,
    config_hash,
)
from ml.training.evaluate import evaluate_predictions
from ml.training.fit import TrainingCancelled, TrainingResult, train
from ml.training.model import WeightsUnavailable

__all__ = [
    "PRESETS",
    "ConfigError",
    "TrainingCancelled",
    "TrainingConfig",
    "TrainingResult",
    "WeightsUnavailable",
    "config_from_dict",
    "config_from_preset",
    "config_hash",
    "evaluate_predictions",
    "train",
]
