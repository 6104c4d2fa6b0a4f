"""Where and how training runs.

One GPU: a one-device strategy; several: MirroredStrategy; none: the default strategy in float32. On GPUs that
compute in bfloat16 (compute capability 8.0 and up: Ampere, Hopper) mixed precision uses bfloat16, which needs no
loss scaling; older GPUs get float16, for which Keras wraps the optimizer in a LossScaleOptimizer. The decision is a
pure function of what is visible (``plan_runtime``), so it is tested without a GPU.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ml.training.config import TrainingConfig

# bfloat16 matrix units arrived with Ampere (compute capability 8.0).
BFLOAT16_MIN_CAPABILITY = (8, 0)
GPU_STEPS_PER_EXECUTION = 16


@dataclass(frozen=True)
class GpuInfo:
    name: str
    compute_capability: tuple[int, int] | None


@dataclass(frozen=True)
class RuntimePlan:
    strategy: str  # "default" | "one_device" | "mirrored"
    devices: tuple[str, ...]  # what a MirroredStrategy mirrors over; empty otherwise
    dtype_policy: str  # "float32" | "mixed_bfloat16" | "mixed_float16"
    jit_compile: bool
    augment_on_device: bool
    steps_per_execution: int
    gpu_names: tuple[str, ...]

    @property
    def mixed_precision(self) -> bool:
        return self.dtype_policy != "float32"

    @property
    def loss_scaling(self) -> bool:
        # Keras wraps the optimizer in a LossScaleOptimizer for mixed_float16 only (bfloat16 has float32's range).
        return self.dtype_policy == "mixed_float16"


def _switch(value: str, *, auto: bool) -> bool:
    return auto if value == "auto" else value == "on"


def plan_runtime(config: TrainingConfig, gpus: Sequence[GpuInfo], *, cpu_replicas: int = 1) -> RuntimePlan:
    """What to train with, given the visible GPUs (none: the CPU).

    ``cpu_replicas`` > 1 mirrors over that many logical CPU devices (they must have been configured before
    TensorFlow started): only tests and experiments do that, to exercise MirroredStrategy without GPUs.
    """
    devices: tuple[str, ...] = ()
    if len(gpus) > 1:
        strategy, devices = "mirrored", tuple(f"/gpu:{index}" for index in range(len(gpus)))
    elif gpus:
        strategy = "one_device"
    elif cpu_replicas > 1:
        strategy, devices = "mirrored", tuple(f"/cpu:{index}" for index in range(cpu_replicas))
    else:
        strategy = "default"
    mixed = _switch(config.mixed_precision, auto=bool(gpus))
    if not mixed:
        policy = "float32"
    elif gpus and not all(gpu.compute_capability and gpu.compute_capability >= BFLOAT16_MIN_CAPABILITY for gpu in gpus):
        policy = "mixed_float16"
    else:
        # The CPU only gets here when asked for it explicitly ("on"): its bfloat16 needs no loss scaling either.
        policy = "mixed_bfloat16"
    augment_on_device = bool(gpus) if config.augment_on == "auto" else config.augment_on == "device"
    # Keras' multi-step loop under MirroredStrategy fails ("You must feed a value for placeholder tensor") on
    # TensorFlow 2.21, so mirrored training runs one step per call.
    steps = 1 if strategy == "mirrored" else config.steps_per_execution or (GPU_STEPS_PER_EXECUTION if gpus else 1)
    jit_compile = _switch(config.xla, auto=bool(gpus))
    if strategy == "mirrored" and not gpus:
        # XLA compiles for one CPU device, but the replicas' variables live on several: "Trying to access
        # resource ... located in device CPU:1 from device CPU:0" (XLA known issue). Replicas on GPUs each
        # compile on their own device.
        jit_compile = False
    return RuntimePlan(
        strategy=strategy,
        devices=devices,
        dtype_policy=policy,
        jit_compile=jit_compile,
        augment_on_device=augment_on_device,
        steps_per_execution=steps,
        gpu_names=tuple(gpu.name for gpu in gpus),
    )


@dataclass(frozen=True)
class Runtime:
    plan: RuntimePlan
    strategy: Any  # tf.distribute.Strategy

    @property
    def replicas(self) -> int:
        return self.strategy.num_replicas_in_sync

    @property
    def gpu_names(self) -> tuple[str, ...]:
        return self.plan.gpu_names

    @property
    def dtype_policy(self) -> str:
        return self.plan.dtype_policy

    @property
    def mixed_precision(self) -> bool:
        return self.plan.mixed_precision

    @property
    def jit_compile(self) -> bool:
        return self.plan.jit_compile

    @property
    def augment_on_device(self) -> bool:
        return self.plan.augment_on_device

    @property
    def steps_per_execution(self) -> int:
        return self.plan.steps_per_execution

    def describe(self) -> dict:
        return {
            "devices": list(self.gpu_names) or ["CPU"],
            "strategy": self.plan.strategy,
            "mirrored_devices": list(self.plan.devices),
            "replicas": self.replicas,
            "dtype_policy": self.dtype_policy,
            "mixed_precision": self.mixed_precision,
            "loss_scaling": self.plan.loss_scaling,
            "xla": self.jit_compile,
            "augment_on_device": self.augment_on_device,
            "steps_per_execution": self.steps_per_execution,
        }


def visible_gpus() -> list[GpuInfo]:
    import tensorflow as tf

    found = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        found.append(
            GpuInfo(name=details.get("device_name", gpu.name), compute_capability=details.get("compute_capability"))
        )
    return found


def make_strategy(plan: RuntimePlan):
    import tensorflow as tf

    if plan.strategy == "one_device":
        return tf.distribute.OneDeviceStrategy("/gpu:0")
    if plan.strategy == "mirrored":
        return tf.distribute.MirroredStrategy(list(plan.devices))
    return tf.distribute.get_strategy()


def resolve_runtime(config: TrainingConfig, *, cpu_replicas: int = 1) -> Runtime:
    plan = plan_runtime(config, visible_gpus(), cpu_replicas=cpu_replicas)
    return Runtime(plan=plan, strategy=make_strategy(plan))


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
