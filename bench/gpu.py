"""One GPU training measurement (bench/gpu.sh runs one per configuration, each in a fresh process so that peak
memory and the dtype policy start clean). Prints one JSON line.

    .venv/bin/python bench/gpu.py --image-size 224 --precision bf16 --steps 100
    .venv/bin/python bench/gpu.py --input --images 2000          # the input pipeline's images/s instead
    .venv/bin/python bench/gpu.py --smoke ...                    # B0 at 32 px: proves the path on a CPU
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

NUM_CLASSES = 11


def training_steps(args) -> dict:
    import numpy as np
    import tensorflow as tf

    from ml.training import config_from_preset
    from ml.training.fit import Stage, prepare_stage
    from ml.training.model import build_classifier, with_augmentation
    from ml.training.runtime import dtype_policy, resolve_runtime

    preset = "tiny" if args.smoke else "seed"
    config = config_from_preset(
        preset, {"image_size": args.image_size, "mixed_precision": "on" if args.precision == "bf16" else "off"}
    )
    runtime = resolve_runtime(config)
    batch = config.batch_size * runtime.replicas
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, config.image_size, config.image_size, 3)).astype("float32")
    labels = np.eye(NUM_CLASSES, dtype="float32")[rng.integers(0, NUM_CLASSES, batch)]
    # Device-resident synthetic batches: this measures the model's step, not the input pipeline.
    data = tf.data.Dataset.from_tensors((images, labels)).repeat()
    stage = Stage(number=2, epochs=1, learning_rate=config.stage2_learning_rate)  # the top layers unfrozen
    with dtype_policy(runtime.dtype_policy), runtime.strategy.scope():
        classifier = build_classifier(config, NUM_CLASSES, "none", from_scratch=False)
        model = with_augmentation(classifier, config) if runtime.augment_on_device else classifier
        prepare_stage(model, stage, config=config, runtime=runtime)
    if runtime.gpu_names:
        tf.config.experimental.reset_memory_stats("GPU:0")
    started = time.perf_counter()
    model.fit(data, steps_per_epoch=max(runtime.steps_per_execution, args.warmup_steps), epochs=1, verbose=0)
    compile_seconds = time.perf_counter() - started
    steps = -(-args.steps // runtime.steps_per_execution) * runtime.steps_per_execution
    started = time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - started
    peak = tf.config.experimental.get_memory_info("GPU:0")["peak"] if runtime.gpu_names else None
    return {
        "kind": "train",
        "backbone": config.backbone,
        "image_size": config.image_size,
        "precision": runtime.dtype_policy,
        "batch": batch,
        "steps": steps,
        "images_per_second": steps * batch / seconds,
        "peak_gpu_mib": peak / 2**20 if peak is not None else None,
        "first_epoch_seconds": compile_seconds,
        "runtime": runtime.describe(),
    }


def input_pipeline(args) -> dict:
    from PIL import Image

    from ml.training import config_from_preset
    from ml.training.data import training_dataset
    from ml.training.runtime import resolve_runtime

    config = config_from_preset("tiny" if args.smoke else "seed", {"image_size": args.image_size})
    augment_on_input = not resolve_runtime(config).augment_on_device
    with tempfile.TemporaryDirectory() as folder:
        items = []
        for number in range(args.images):
            path = Path(folder) / f"{number}.jpg"
            Image.effect_noise((600, 450), 40 + number % 50).convert("RGB").save(path, quality=90)
            items.append((str(path), number % NUM_CLASSES))
        dataset = training_dataset(
            items, config=config, num_classes=NUM_CLASSES, batch_size=config.batch_size, augment=augment_on_input
        )
        rates = []
        for _ in range(2):  # the first epoch decodes and fills the cache; the second reads it
            started = time.perf_counter()
            count = sum(int(images.shape[0]) for images, _ in dataset)
            rates.append(count / (time.perf_counter() - started))
    return {
        "kind": "input",
        "image_size": config.image_size,
        "augment_in_pipeline": augment_on_input,
        "first_epoch_images_per_second": rates[0],
        "cached_images_per_second": rates[1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--precision", choices=("bf16", "float32"), default="bf16")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup-steps", type=int, default=5)
    parser.add_argument("--input", action="store_true", help="measure the input pipeline instead")
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--smoke", action="store_true", help="the tiny preset (B0) instead of the seed preset")
    args = parser.parse_args()
    print(json.dumps(input_pipeline(args) if args.input else training_steps(args)))


if __name__ == "__main__":
    main()
