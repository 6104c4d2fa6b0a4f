"""Input pipeline and training-step throughput of ml.training on this machine's CPU.

Compares ml.training.data.training_dataset with the seed project's loader
(keras.utils.image_dataset_from_directory, then RandomRotation and RandomFlip
in a map) on the same generated JPEGs, and times training steps of the tiny
preset and of EfficientNetB5 at 224 px. Prints a markdown table.

    .venv/bin/python bench/train_input.py            # 2,000 images of 600x450, the reported run
    .venv/bin/python bench/train_input.py --quick    # 300 images, fewer steps: a smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ml.training import PRESETS, TrainingConfig

CLASS_COUNT = 4
SOURCE_SIZE = (600, 450)


def write_jpegs(root: Path, count: int, seed: int = 0) -> list[tuple[str, int]]:
    """Photo-like JPEGs (smooth shading, a blob, mild noise) in one folder per class, as the seed's dataset is laid
    out."""
    rng = np.random.default_rng(seed)
    width, height = SOURCE_SIZE
    rows, columns = np.mgrid[0:height, 0:width]
    items = []
    for number in range(count):
        label = number % CLASS_COUNT
        folder = root / f"{label}. class {label}"
        folder.mkdir(parents=True, exist_ok=True)
        base = rng.uniform(90, 200, 3)
        shading = (columns / width)[..., None] * rng.uniform(-60, 60, 3) + (rows / height)[..., None] * 40
        pixels = base + shading + rng.normal(0, 6, (height, width, 3))
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        left, top = rng.integers(50, 300), rng.integers(50, 200)
        ImageDraw.Draw(image).ellipse((left, top, left + 200, top + 150), fill=tuple(rng.integers(40, 120, 3)))
        path = folder / f"{number:05d}.jpg"
        image.save(path, quality=90)
        items.append((str(path), label))
    return items


def images_per_second(batches: Iterable) -> float:
    started = time.perf_counter()
    images = sum(int(images.shape[0]) for images, _ in batches)
    return images / (time.perf_counter() - started)


def seed_loader(root: Path, config: TrainingConfig, *, tuned: bool, cache: bool = False):
    """The seed project's loader; ``tuned`` adds the parallel map and prefetch it did not have, ``cache`` keeps the
    decoded, resized images in memory as ml.training does (uint8, before augmentation), so that both pipelines run
    with the same settings."""
    import keras
    import tensorflow as tf

    augmentation = keras.Sequential(
        [keras.layers.RandomRotation(config.rotation_factor), keras.layers.RandomFlip("horizontal")]
    )
    dataset = keras.utils.image_dataset_from_directory(
        root,
        image_size=(config.image_size, config.image_size),
        batch_size=config.batch_size,
        label_mode="categorical",
        shuffle=True,
        seed=config.seed,
        verbose=False,
    )
    parallel = {"num_parallel_calls": tf.data.AUTOTUNE} if tuned else {}
    if cache:
        dataset = dataset.map(lambda images, labels: (tf.cast(images, tf.uint8), labels), **parallel).cache()
        dataset = dataset.map(lambda images, labels: (tf.cast(images, tf.float32), labels), **parallel)
    dataset = dataset.map(lambda images, labels: (augmentation(images, training=True), labels), **parallel)
    return dataset.prefetch(tf.data.AUTOTUNE) if tuned else dataset


def input_pipelines(root: Path, items: list[tuple[str, int]], config: TrainingConfig) -> dict[str, float]:
    """Images/s of one full epoch of each pipeline, built afresh so that the cache starts empty."""
    from ml.training.data import training_dataset

    rates = {
        "seed loader (as in the seed)": images_per_second(seed_loader(root, config, tuned=False)),
        "seed loader + parallel map + prefetch": images_per_second(seed_loader(root, config, tuned=True)),
    }
    cached_seed = seed_loader(root, config, tuned=True, cache=True)
    rates["seed loader + parallel map + prefetch + cache, epoch 1"] = images_per_second(cached_seed)
    rates["seed loader + parallel map + prefetch + cache, epoch 2"] = images_per_second(cached_seed)
    uncached = training_dataset(
        items, config=dataclasses.replace(config, cache=False), num_classes=CLASS_COUNT, batch_size=config.batch_size
    )
    rates["ml.training, cache off (every epoch)"] = images_per_second(uncached)
    ours = training_dataset(items, config=config, num_classes=CLASS_COUNT, batch_size=config.batch_size)
    rates["ml.training, epoch 1 (decode, fill cache)"] = images_per_second(ours)
    rates["ml.training, epoch 2 (from cache)"] = images_per_second(ours)
    return rates


# Each ml.training row against the seed loader run with the same settings (the fair comparison).
SAME_SETTINGS = {
    "ml.training, cache off (every epoch)": "seed loader + parallel map + prefetch",
    "ml.training, epoch 1 (decode, fill cache)": "seed loader + parallel map + prefetch + cache, epoch 1",
    "ml.training, epoch 2 (from cache)": "seed loader + parallel map + prefetch + cache, epoch 2",
}


def best_of_rounds(rounds: int, measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """The best of interleaved rounds: on a shared machine, the slower rounds measure the neighbours."""
    best: dict[str, float] = {}
    for round_number in range(1, rounds + 1):
        rates = measure()
        print(f"  round {round_number}: " + ", ".join(f"{rate:.0f}" for rate in rates.values()), file=sys.stderr)
        best = {name: max(rate, best.get(name, 0.0)) for name, rate in rates.items()}
    return best


def steps_per_second(config: TrainingConfig, stage_number: int, *, warmup: int, steps: int) -> float:
    """Training steps on one in-memory batch, after warm-up steps that trace the graph."""
    from ml.training.fit import prepare_stage, stages
    from ml.training.model import build_classifier
    from ml.training.runtime import resolve_runtime

    model = build_classifier(config, CLASS_COUNT, base_weights="none")
    stage = next(stage for stage in stages(config) if stage.number == stage_number)
    prepare_stage(model, stage, config=config, runtime=resolve_runtime(config))
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (config.batch_size, config.image_size, config.image_size, 3)).astype(np.float32)
    labels = np.eye(CLASS_COUNT, dtype=np.float32)[rng.integers(0, CLASS_COUNT, config.batch_size)]
    for _ in range(warmup):
        model.train_on_batch(images, labels)
    started = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, labels)
    return steps / (time.perf_counter() - started)


def timed(label: str, action: Callable[[], object]):
    started = time.perf_counter()
    result = action()
    print(f"  {label}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 images and fewer training steps")
    parser.add_argument("--images", type=int, help="number of generated JPEGs (default 2000, or 300 with --quick)")
    parser.add_argument(
        "--steps", type=int, help="timed training steps per model (default 5, or 2 with --quick; 0: none)"
    )
    parser.add_argument("--rounds", type=int, help="input pipeline rounds, best kept (default 3, or 1 with --quick)")
    arguments = parser.parse_args()
    image_count = arguments.images or (300 if arguments.quick else 2000)
    steps = arguments.steps if arguments.steps is not None else (2 if arguments.quick else 5)
    rounds = arguments.rounds or (1 if arguments.quick else 3)
    config = PRESETS["seed"]  # 224 px, batch 32

    with tempfile.TemporaryDirectory(prefix="bench_train_input_") as directory:
        root = Path(directory)
        items = timed(f"writing {image_count} JPEGs", lambda: write_jpegs(root, image_count))
        input_rates = timed(
            f"input pipelines, {rounds} round(s)",
            partial(best_of_rounds, rounds, partial(input_pipelines, root, items, config)),
        )

    models = [
        ("tiny (B0, 32 px, batch 8)", PRESETS["tiny"], steps * 4),
        ("B5, 224 px, batch 8", dataclasses.replace(PRESETS["seed"], batch_size=8), steps),
    ]
    step_rows = []
    for name, model_config, model_steps in models if steps else []:
        for stage_number in (1, 2):
            rate = timed(
                f"{name} stage {stage_number}",
                partial(steps_per_second, model_config, stage_number, warmup=2, steps=model_steps),
            )
            step_rows.append((f"{name}, stage {stage_number}", rate, rate * model_config.batch_size))

    baseline = next(iter(input_rates.values()))
    print(
        f"\n{image_count} JPEGs of {SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} -> 224 px, batch 32, one full epoch each, "
        f"best of {rounds} round(s)\n"
    )
    print("| input pipeline | images/s | vs seed loader as in the seed | vs seed loader, same settings |")
    print("|---|---:|---:|---:|")
    for name, rate in input_rates.items():
        same = f"{rate / input_rates[SAME_SETTINGS[name]]:.2f}x" if name in SAME_SETTINGS else ""
        print(f"| {name} | {rate:,.0f} | {rate / baseline:.2f}x | {same} |")
    if not step_rows:
        return
    print(f"\nTraining steps on the CPU (weights none, {steps} timed steps for B5, {steps * 4} for tiny)\n")
    print("| model | steps/s | images/s |")
    print("|---|---:|---:|")
    for name, rate, image_rate in step_rows:
        print(f"| {name} | {rate:.2f} | {image_rate:.1f} |")


if __name__ == "__main__":
    main()
