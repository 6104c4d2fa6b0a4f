"""Where training runs, decided from the visible devices (no GPU needed to test the decision)."""

import json
import subprocess
import sys

import pytest

from ml.training import config_from_preset
from ml.training.runtime import GpuInfo, plan_runtime
from tests.conftest import REPO_ROOT

HOPPER = GpuInfo(name="NVIDIA H100", compute_capability=(9, 0))
AMPERE = GpuInfo(name="NVIDIA A100", compute_capability=(8, 0))
TURING = GpuInfo(name="Tesla T4", compute_capability=(7, 5))


def test_the_cpu_trains_in_float32_with_the_default_strategy_and_augments_in_the_input_pipeline():
    plan = plan_runtime(config_from_preset("seed"), [])

    assert (plan.strategy, plan.dtype_policy, plan.jit_compile) == ("default", "float32", False)
    assert plan.augment_on_device is False
    assert plan.steps_per_execution == 1


@pytest.mark.parametrize("gpu", [AMPERE, HOPPER])
def test_one_ampere_or_hopper_gpu_gets_one_device_bfloat16_xla_and_device_augmentation(gpu):
    plan = plan_runtime(config_from_preset("seed"), [gpu])

    assert (plan.strategy, plan.dtype_policy, plan.jit_compile) == ("one_device", "mixed_bfloat16", True)
    assert plan.loss_scaling is False, "bfloat16 has float32's range"
    assert plan.augment_on_device is True
    assert plan.steps_per_execution > 1


def test_float16_with_loss_scaling_only_where_bfloat16_is_missing():
    assert plan_runtime(config_from_preset("seed"), [TURING]).dtype_policy == "mixed_float16"
    assert plan_runtime(config_from_preset("seed"), [TURING]).loss_scaling is True
    # One old GPU among new ones: the whole replica set falls back to float16.
    assert plan_runtime(config_from_preset("seed"), [HOPPER, TURING]).dtype_policy == "mixed_float16"


def test_mirrored_strategy_only_for_several_gpus():
    plan = plan_runtime(config_from_preset("seed"), [HOPPER, HOPPER])

    assert plan.strategy == "mirrored" and plan.devices == ("/gpu:0", "/gpu:1")
    assert plan.steps_per_execution == 1, "Keras' multi-step loop fails under MirroredStrategy"


def test_switches_override_what_the_devices_suggest():
    config = config_from_preset("seed", {"mixed_precision": "off", "xla": "off", "augment_on": "input"})
    plan = plan_runtime(config, [HOPPER])

    assert (plan.dtype_policy, plan.jit_compile, plan.augment_on_device) == ("float32", False, False)
    assert plan_runtime(config_from_preset("seed", {"steps_per_execution": 4}), []).steps_per_execution == 4


def test_mirrored_training_on_cpu_devices_avoids_xla_and_trains(tmp_path):
    """MirroredStrategy with XLA over CPU devices fails ("Trying to access resource ... located in device CPU:1
    from device CPU:0"); the plan turns XLA off there, and a real fit over two logical CPUs goes through."""
    plan = plan_runtime(config_from_preset("tiny", {"xla": "on"}), [], cpu_replicas=2)
    assert (plan.strategy, plan.jit_compile, plan.steps_per_execution) == ("mirrored", False, 1)

    code = f"""
import json, sys
sys.path.insert(0, {str(REPO_ROOT)!r})
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tests.ml.training.conftest import write_class_images, split_items, CLASS_NAMES
from ml.training import config_from_preset, train
from ml.training.runtime import resolve_runtime
config = config_from_preset("tiny", {{"xla": "on", "stage1_epochs": 1, "stage2_epochs": 0}})
runtime = resolve_runtime(config, cpu_replicas=2)
splits = split_items(write_class_images(__import__("pathlib").Path({str(tmp_path)!r}) / "images", 52))
result = train(config, train_items=splits["train"], val_items=splits["val"], test_items=splits["test"],
               class_names=CLASS_NAMES, output_dir={str(tmp_path / "out")!r}, base_weights="none", runtime=runtime)
print(json.dumps({{"replicas": runtime.replicas, "xla": runtime.jit_compile, "epochs": len(result.history)}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)

    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"replicas": 2, "xla": False, "epochs": 1}
