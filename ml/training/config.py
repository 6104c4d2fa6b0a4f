"""Every training knob in one frozen, validated dataclass.

Django web processes import this module to validate configs, so it must not
import TensorFlow, Keras or NumPy.
"""

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

BACKBONES = tuple(f"B{index}" for index in range(8))
SWITCH_VALUES = ("auto", "on", "off")
# Where the random augmentation runs: "device" (a layer in front of the model, so a GPU does it), "input" (in the
# tf.data pipeline, on the CPU), or "auto" (device when a GPU is visible).
AUGMENT_PLACES = ("auto", "device", "input")
# Resolution each EfficientNet variant was designed and pre-trained for.
NATIVE_IMAGE_SIZES = {"B0": 224, "B1": 240, "B2": 260, "B3": 300, "B4": 380, "B5": 456, "B6": 528, "B7": 600}


class ConfigError(ValueError):
    """A preset or override that does not describe a valid training config."""


@dataclass(frozen=True)
class TrainingConfig:
    """The two-stage EfficientNet fine-tuning recipe; the defaults are the seed project's.

    ``batch_size`` is per replica: with several GPUs the global batch is
    ``batch_size`` times the number of GPUs and the learning rates are not scaled.
    """

    backbone: str = "B5"
    image_size: int = 224
    batch_size: int = 32
    stage1_epochs: int = 40  # base frozen, head trained
    stage2_epochs: int = 50  # top layers of the base unfrozen
    stage1_learning_rate: float = 1e-3
    stage2_learning_rate: float = 1e-4
    unfreeze_layers: int = 30  # window of top base layers; BatchNormalization inside it stays frozen
    dense_units: int = 64
    dropout: float = 0.45
    rotation_factor: float = 0.3  # fraction of a full turn, as keras.layers.RandomRotation takes it
    horizontal_flip: bool = True
    early_stopping_patience: int = 8
    reduce_lr_factor: float = 0.2
    reduce_lr_patience: int = 5
    min_learning_rate: float = 1e-7
    class_weights: bool = True  # balanced weights: melanocytic nevi dominate the seed data
    label_smoothing: float = 0.0
    seed: int = 42
    mixed_precision: str = "auto"  # auto = on when a GPU is visible: bfloat16 where it supports it, else float16
    xla: str = "auto"  # auto = on when a GPU is visible
    augment_on: str = "auto"
    # Training steps per call into the compiled function: fewer round trips from Python on a fast GPU.
    # 0 = auto (1 on the CPU, where a step is long anyway; 16 on GPUs).
    steps_per_execution: int = 0
    cache: bool = True  # keep decoded, resized images in memory (uint8) after the first epoch
    # Images held by the per-epoch shuffle of the cache; the cache itself is filled
    # in one random order, so a bounded buffer still mixes well without a second
    # in-memory copy of a large dataset.
    shuffle_buffer: int = 4096

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = _checked_type(field.name, field.type, getattr(self, field.name))
            # Integral floats become floats so that equal configs hash equally.
            object.__setattr__(self, field.name, value)
            accepts, expected = _RULES[field.name]
            if not accepts(value):
                raise ConfigError(f"{field.name}={value!r} is not allowed; expected {expected}.")
        if self.stage1_epochs + self.stage2_epochs < 1:
            raise ConfigError("stage1_epochs + stage2_epochs must be at least 1.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _checked_type(name: str, expected: type, value: Any) -> Any:
    # bool is a subclass of int: True must not pass as a batch size, nor 1 as a switch.
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, expected) and (expected is bool or not isinstance(value, bool)):
        return value
    raise ConfigError(f"{name} must be of type {expected.__name__}; got {type(value).__name__} {value!r}.")


def _between(low: float, high: float, *, low_open: bool = False, high_open: bool = False) -> Callable[[Any], bool]:
    def accepts(value):
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below

    return accepts


def _at_least(low: int) -> Callable[[Any], bool]:
    return lambda value: value >= low


def _always(value: Any) -> bool:
    return True


_RULES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "backbone": (lambda value: value in BACKBONES, f"one of {', '.join(BACKBONES)}"),
    "image_size": (_between(32, 1024), "an integer from 32 (EfficientNet's minimum) to 1024"),
    "batch_size": (_between(1, 4096), "an integer from 1 to 4096"),
    "stage1_epochs": (_at_least(0), "an integer >= 0"),
    "stage2_epochs": (_at_least(0), "an integer >= 0"),
    "stage1_learning_rate": (_between(0, 1, low_open=True), "a number in (0, 1]"),
    "stage2_learning_rate": (_between(0, 1, low_open=True), "a number in (0, 1]"),
    "unfreeze_layers": (_at_least(0), "an integer >= 0"),
    "dense_units": (_between(1, 65536), "an integer from 1 to 65536"),
    "dropout": (_between(0, 1, high_open=True), "a number in [0, 1)"),
    "rotation_factor": (_between(0, 1), "a number in [0, 1]"),
    "horizontal_flip": (_always, "true or false"),
    "early_stopping_patience": (_at_least(0), "an integer >= 0"),
    "reduce_lr_factor": (_between(0, 1, low_open=True, high_open=True), "a number in (0, 1)"),
    "reduce_lr_patience": (_at_least(0), "an integer >= 0"),
    "min_learning_rate": (_between(0, 1), "a number in [0, 1]"),
    "class_weights": (_always, "true or false"),
    "label_smoothing": (_between(0, 1, high_open=True), "a number in [0, 1)"),
    "seed": (_between(0, 2**32 - 1), "an integer from 0 to 2**32 - 1"),
    "mixed_precision": (lambda value: value in SWITCH_VALUES, f"one of {', '.join(SWITCH_VALUES)}"),
    "xla": (lambda value: value in SWITCH_VALUES, f"one of {', '.join(SWITCH_VALUES)}"),
    "augment_on": (lambda value: value in AUGMENT_PLACES, f"one of {', '.join(AUGMENT_PLACES)}"),
    "steps_per_execution": (_between(0, 1000), "an integer from 0 (auto) to 1000"),
    "cache": (_always, "true or false"),
    "shuffle_buffer": (_at_least(1), "an integer >= 1"),
}

CONFIG_KEYS = tuple(field.name for field in dataclasses.fields(TrainingConfig))

_SEED = TrainingConfig()

PRESETS: dict[str, TrainingConfig] = {
    "seed": _SEED,
    "b5": dataclasses.replace(_SEED, image_size=NATIVE_IMAGE_SIZES["B5"]),
    # Tests and CPU demos: the same code path, small enough to train in two or three minutes on two cores, and a
    # recipe that learns from scratch. The seed's rotation (0.3 of a turn, up to ±108°) with flips made a
    # from-scratch network collapse to one class; a mild ±11° keeps the augmentation without drowning the signal.
    # From scratch on a few hundred images a network needs several hundred steps before it learns: with 8 + 2
    # epochs (about 110 steps on the demo's snapshot) it stayed at chance; 35 + 5 epochs (about 650 steps) learn
    # the demo's drawings (bench/demo_train.py). An epoch at 32 px costs about 2 s there, and from scratch stage 2
    # only lowers the rate, without recompiling. Early stopping ends a run that has converged.
    "tiny": TrainingConfig(
        backbone="B0",
        image_size=32,
        batch_size=32,
        stage1_epochs=35,
        stage2_epochs=5,
        stage1_learning_rate=3e-3,
        stage2_learning_rate=3e-4,
        unfreeze_layers=10,
        dense_units=32,
        dropout=0.2,
        rotation_factor=0.03,
        early_stopping_patience=8,
        reduce_lr_patience=4,
        shuffle_buffer=2048,
    ),
}


def config_from_dict(data: Mapping[str, Any]) -> TrainingConfig:
    """A config from stored or submitted JSON; missing keys take the defaults."""
    unknown = sorted(set(data) - set(CONFIG_KEYS))
    if unknown:
        raise ConfigError(
            f"Unknown config key(s) {', '.join(map(repr, unknown))}; allowed keys: {', '.join(CONFIG_KEYS)}."
        )
    return TrainingConfig(**data)


def config_from_preset(preset: str, overrides: Mapping[str, Any] | None = None) -> TrainingConfig:
    if preset not in PRESETS:
        raise ConfigError(f"Unknown preset {preset!r}; allowed presets: {', '.join(sorted(PRESETS))}.")
    return config_from_dict({**PRESETS[preset].to_dict(), **(overrides or {})})


def config_hash(config: TrainingConfig | Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of the effective config (defaults filled in, keys sorted)."""
    if not isinstance(config, TrainingConfig):
        config = config_from_dict(config)
    canonical = json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
