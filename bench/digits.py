"""Does the `tiny` preset learn? scikit-learn's 1,797 digit scans, written as 32x32 images, trained through the library.

    .venv/bin/python bench/digits.py [--recipes tiny,old]

`tiny` is the preset; `old` is the same preset with the augmentation `tiny` had before (the seed's rotation factor
0.3, up to +-108 degrees, with flips), the baseline of the same run. Stratified 70/15/15 split (random_state 0),
as tests/ml/training/test_training_digits.py uses. Prints test accuracy, macro F1 and the wall time of each.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

RECIPES = {"tiny": {}, "old": {"rotation_factor": 0.3}}


def write_digit_images(folder: Path) -> dict[str, list[tuple[str, int]]]:
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    items = []
    for number, (scan, label) in enumerate(zip(digits.images, digits.target, strict=True)):
        path = folder / f"{number:04d}.png"
        pixels = (scan / 16 * 255).round().astype(np.uint8)
        Image.fromarray(pixels).resize((32, 32), Image.Resampling.BILINEAR).convert("RGB").save(path)
        items.append((str(path), int(label)))
    indices = np.arange(len(items))
    train_indices, rest = train_test_split(indices, test_size=0.3, stratify=digits.target, random_state=0)
    val_indices, test_indices = train_test_split(rest, test_size=0.5, stratify=digits.target[rest], random_state=0)
    return {
        name: [items[index] for index in chosen]
        for name, chosen in (("train", train_indices), ("val", val_indices), ("test", test_indices))
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", default="tiny,old", help="comma-separated: tiny, old (default both)")
    args = parser.parse_args()

    from ml.training import config_from_preset, train

    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_digits_") as directory:
        root = Path(directory)
        (root / "images").mkdir()
        splits = write_digit_images(root / "images")
        for recipe in args.recipes.split(","):
            started = time.perf_counter()
            result = train(
                config_from_preset("tiny", RECIPES[recipe]),
                train_items=splits["train"],
                val_items=splits["val"],
                test_items=splits["test"],
                class_names=[str(digit) for digit in range(10)],
                output_dir=root / recipe,
                base_weights="none",
            )
            seconds = time.perf_counter() - started
            rows.append((recipe, result.metrics["accuracy"], result.metrics["macro_f1"], len(result.history), seconds))
            print(rows[-1], file=sys.stderr, flush=True)
    print(f"\n{len(splits['train'])} train / {len(splits['val'])} val / {len(splits['test'])} test images\n")
    print("| recipe | test accuracy | test macro F1 | epochs | wall s |")
    print("|---|---:|---:|---:|---:|")
    for recipe, accuracy, macro_f1, epochs, seconds in rows:
        print(f"| {recipe} | {accuracy:.3f} | {macro_f1:.3f} | {epochs} | {seconds:.0f} |")


if __name__ == "__main__":
    main()
