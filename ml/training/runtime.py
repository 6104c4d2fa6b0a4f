"""Where and how training runs: GPUs with mixed precision, XLA and MirroredStrategy, or the CPU in float32."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ml.training.config import TrainingConfig


@dataclass(frozen=True)
class Runtime:
    strategy: Any  # tf.distribute.Strategy
    gpu_names: tuple[str, ...]
    mixed_precision: bool
    jit_compile: bool

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def dtype_policy(self) -> str:
        return "mixed_float16" if self.mixed_precision else "float32"

    def describe(self) -> dict:
        return {
            "devices": list(self.gpu_names) or ["CPU"],
            "replicas": self.replicas,
            "mixed_precision": self.mixed_precision,
            "xla": self.jit_compile,
        }


def _switch(value: str, *, auto: bool) -> bool:
    return auto if value == "auto" else value == "on"


def resolve_runtime(config: TrainingConfig) -> Runtime:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    gpu_names = tuple(tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name) for gpu in gpus)
    strategy = tf.distribute.MirroredStrategy() if gpus else tf.distribute.get_strategy()
    return Runtime(
        strategy=strategy,
        gpu_names=gpu_names,
        mixed_precision=_switch(config.mixed_precision, auto=bool(gpus)),
        jit_compile=_switch(config.xla, auto=bool(gpus)),
    )


@contextmanager
def dtype_policy(name: str) -> Iterator[None]:
    """Keras' dtype policy is process-global; restore it so one training run cannot leak into the next."""
    import keras

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)
