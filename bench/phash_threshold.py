"""Which pHash Hamming threshold separates near-duplicates from distinct images? (and does dHash help?)

Run from the repository root:

    .venv/bin/python bench/phash_threshold.py                 # 400 images, 8 variants each
    .venv/bin/python bench/phash_threshold.py --images 100    # a quicker run

Generates distinct lesion-like photos (skin-toned, unevenly lit background with
texture and noise; one to five blotches of varied colour, shape, size and
position with soft irregular borders; sometimes hairs), each from its own seed,
and near-duplicate variants of each: JPEG re-encoding at quality 60-95, resizing
to 50-150 %, brightness or contrast changed by 5-15 %, a crop of up to 5 %, a
watermark, a PNG copy of a JPEG original, and a re-share combining resize,
brightness and JPEG 75. Every file goes through ``process_image_bytes``, as an
import would, and the distances are taken between the stored hashes.

Prints markdown: distance percentiles for duplicate and for distinct pairs,
recall and false-positive rate per pHash threshold 0..16 (with the number of
false pairs that rate means among the 27,153 photos of the Kaggle set), and
the effect of confirming with dHash.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation.dedup import connected_components
from curation.imaging import process_image_bytes

KAGGLE_IMAGES = 27_153
VARIANTS = ("jpeg_q60_95", "resize_50_150", "brightness", "contrast", "crop_5pct", "watermark", "png_copy", "reshare")
SIZES = ((600, 450), (640, 480), (800, 600), (1024, 768), (450, 600), (720, 720))
SKIN_TONES = ((241, 194, 167), (224, 172, 140), (198, 134, 100), (160, 106, 72), (120, 75, 50), (90, 56, 38))
LESION_COLOURS = ((92, 52, 34), (60, 38, 30), (150, 70, 60), (190, 90, 90), (215, 140, 130), (120, 95, 110))


def lesion_photo(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    width, height = SIZES[rng.integers(len(SIZES))]
    tone = np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))], dtype=np.float64) + rng.normal(0, 8, 3)
    # Uneven light: a tilted plane and a vignette, as in a handheld clinical photo.
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    light = 1 + rng.uniform(-0.15, 0.15) * (x - 0.5) + rng.uniform(-0.15, 0.15) * (y - 0.5)
    light -= rng.uniform(0.05, 0.25) * ((x - x.mean()) ** 2 + (y - y.mean()) ** 2)
    texture = np.asarray(
        Image.fromarray(rng.integers(0, 256, (height // 8, width // 8), dtype=np.uint8)).resize(
            (width, height), Image.Resampling.BICUBIC
        ),
        dtype=np.float64,
    )
    base = tone[None, None, :] * light[..., None] + (texture[..., None] - 128) * rng.uniform(0.02, 0.08)
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))

    for _ in range(rng.integers(1, 6)):
        centre = rng.uniform(0.15, 0.85, 2) * (width, height)
        radius = rng.uniform(0.04, 0.3) * min(width, height)
        angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(8, 20)))
        radii = radius * rng.uniform(0.6, 1.3, len(angles)) * rng.uniform(0.5, 1.0)
        polygon = [
            (centre[0] + r * np.cos(a), centre[1] + r * np.sin(a) * rng.uniform(0.6, 1.0))
            for a, r in zip(angles, radii, strict=True)
        ]
        mask = Image.new("L", (width, height), 0)
        ImageDraw.Draw(mask).polygon(polygon, fill=int(rng.uniform(140, 255)))
        mask = mask.filter(ImageFilter.GaussianBlur(rng.uniform(2, radius / 4 + 2)))
        colour = np.clip(np.array(LESION_COLOURS[rng.integers(len(LESION_COLOURS))]) + rng.normal(0, 15, 3), 0, 255)
        image.paste(Image.new("RGB", (width, height), tuple(int(c) for c in colour)), mask=mask)
    if rng.random() < 0.4:
        draw = ImageDraw.Draw(image)
        for _ in range(rng.integers(3, 15)):
            start = rng.uniform(0, 1, 2) * (width, height)
            end = start + rng.normal(0, 0.15, 2) * (width, height)
            draw.line([tuple(start), tuple(end)], fill=(40, 30, 25), width=int(rng.integers(1, 3)))
    pixels = np.asarray(image, dtype=np.float64) + rng.normal(0, rng.uniform(2, 6), (height, width, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def save(image: Image.Image, format: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def away_from_one(rng: np.random.Generator, low: float, high: float) -> float:
    """A factor in [1 - high, 1 - low] or [1 + low, 1 + high]."""
    return 1 + rng.choice((-1, 1)) * rng.uniform(low, high)


def variant(photo: Image.Image, kind: str, rng: np.random.Generator) -> bytes:
    width, height = photo.size
    if kind == "jpeg_q60_95":
        return save(photo, quality=int(rng.integers(60, 96)))
    if kind == "resize_50_150":
        scale = rng.choice((rng.uniform(0.5, 0.9), rng.uniform(1.1, 1.5)))
        return save(photo.resize((round(width * scale), round(height * scale)), Image.Resampling.BILINEAR), quality=90)
    if kind == "brightness":
        return save(ImageEnhance.Brightness(photo).enhance(away_from_one(rng, 0.05, 0.15)), quality=90)
    if kind == "contrast":
        return save(ImageEnhance.Contrast(photo).enhance(away_from_one(rng, 0.05, 0.15)), quality=90)
    if kind == "crop_5pct":
        cut_x, cut_y = (int(rng.uniform(0.01, 0.05) * side) for side in (width, height))
        left, top = int(rng.integers(0, cut_x + 1)), int(rng.integers(0, cut_y + 1))
        return save(photo.crop((left, top, width - (cut_x - left), height - (cut_y - top))), quality=90)
    if kind == "watermark":
        marked = photo.convert("RGBA")
        layer = Image.new("RGBA", marked.size, (0, 0, 0, 0))
        font = ImageFont.load_default(size=max(14, height // 14))
        where = (rng.uniform(0.02, 0.5) * width, rng.choice((rng.uniform(0.02, 0.1), rng.uniform(0.8, 0.9))) * height)
        ImageDraw.Draw(layer).text(where, "© DermAtlas.example 2024", font=font, fill=(255, 255, 255, 170))
        return save(Image.alpha_composite(marked, layer).convert("RGB"), quality=90)
    if kind == "png_copy":
        return save(photo, "PNG")
    if kind == "reshare":
        small = photo.resize((round(width * 0.7), round(height * 0.7)), Image.Resampling.BICUBIC)
        return save(ImageEnhance.Brightness(small).enhance(1.05), quality=75)
    raise ValueError(kind)


def hashes_for(seed: int) -> tuple[tuple[int, int], list[tuple[str, int, int]], list[float]]:
    """The original's (phash, dhash), each variant's (kind, phash, dhash), and seconds per processed file."""
    rng = np.random.default_rng(10_000 + seed)
    photo = lesion_photo(seed)
    # The original as a camera or the Kaggle set would have it: a JPEG at quality 92.
    original_bytes = save(photo, quality=92)
    photo = Image.open(io.BytesIO(original_bytes)).convert("RGB")
    seconds = []
    began = time.perf_counter()
    original = process_image_bytes(original_bytes)
    seconds.append(time.perf_counter() - began)
    variants = []
    for kind in VARIANTS:
        data = variant(photo, kind, rng)
        began = time.perf_counter()
        processed = process_image_bytes(data)
        seconds.append(time.perf_counter() - began)
        variants.append((kind, processed.phash, processed.dhash))
    return (original.phash, original.dhash), variants, seconds


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.bitwise_count(a.view(np.uint64) ^ b.view(np.uint64)).astype(np.int64)


def percentiles(values: np.ndarray, points) -> str:
    return " | ".join(f"{np.percentile(values, p, method='lower'):.0f}" for p in points)


def false_groups(n: int, i: np.ndarray, j: np.ndarray) -> tuple[int, int]:
    """How many distinct images the false pairs pull into groups, and the size of the largest such group."""
    labels = connected_components(n, np.stack([i, j], axis=1))
    sizes = np.bincount(labels)
    grouped = sizes[sizes >= 2]
    return int(grouped.sum()), int(grouped.max()) if len(grouped) else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    arguments = parser.parse_args()

    began = time.perf_counter()
    with ProcessPoolExecutor(max_workers=arguments.workers) as pool:
        results = list(pool.map(hashes_for, range(arguments.images), chunksize=4))
    elapsed = time.perf_counter() - began
    originals = np.array([original for original, _, _ in results], dtype=np.int64)
    seconds = np.concatenate([timing for _, _, timing in results])
    by_kind = {kind: [] for kind in VARIANTS}
    for (phash, dhash), variants, _ in results:
        for kind, variant_phash, variant_dhash in variants:
            by_kind[kind].append((phash, dhash, variant_phash, variant_dhash))

    duplicate_p, duplicate_d, kind_of = [], [], []
    print(f"{arguments.images} distinct images, {len(VARIANTS)} variants each, {len(seconds)} files processed.\n")
    print("## Distances between an image and its near-duplicate variant\n")
    print("| variant | pHash p50 | p90 | p99 | max | dHash p50 | p90 | p99 | max |")
    print("|---|---|---|---|---|---|---|---|---|")
    for kind, rows in by_kind.items():
        array = np.array(rows, dtype=np.int64)
        p, d = distances(array[:, 0], array[:, 2]), distances(array[:, 1], array[:, 3])
        duplicate_p.append(p)
        duplicate_d.append(d)
        kind_of += [kind] * len(p)
        print(f"| {kind} | {percentiles(p, (50, 90, 99, 100))} | {percentiles(d, (50, 90, 99, 100))} |")
    duplicate_p, duplicate_d = np.concatenate(duplicate_p), np.concatenate(duplicate_d)
    print(f"| all | {percentiles(duplicate_p, (50, 90, 99, 100))} | {percentiles(duplicate_d, (50, 90, 99, 100))} |")

    i, j = np.triu_indices(len(originals), k=1)
    distinct_p = distances(originals[i, 0], originals[j, 0])
    distinct_d = distances(originals[i, 1], originals[j, 1])
    print(f"\n## Distances between distinct images ({len(distinct_p):,} pairs)\n")
    print("| hash | min | p0.1 | p1 | p5 | p50 |")
    print("|---|---|---|---|---|---|")
    print(f"| pHash | {percentiles(distinct_p, (0, 0.1, 1, 5, 50))} |")
    print(f"| dHash | {percentiles(distinct_d, (0, 0.1, 1, 5, 50))} |")

    total_pairs = KAGGLE_IMAGES * (KAGGLE_IMAGES - 1) // 2
    print("\n## pHash threshold: recall of duplicates, false positives among distinct pairs\n")
    print(
        "| t | recall | worst variant (recall) | false-positive rate | false pairs | ≈ false pairs in 27,153 images |"
    )
    print("|---|---|---|---|---|---|")
    kinds = np.array(kind_of)
    for threshold in range(17):
        found = duplicate_p <= threshold
        per_kind = {kind: found[kinds == kind].mean() for kind in VARIANTS}
        worst = min(per_kind, key=per_kind.get)
        false = int((distinct_p <= threshold).sum())
        rate = false / len(distinct_p)
        print(
            f"| {threshold} | {found.mean():.1%} | {worst} ({per_kind[worst]:.0%}) | {rate:.2e} | {false} "
            f"| {rate * total_pairs:,.0f} |"
        )

    print("\n## Recall per variant\n")
    print("| pHash t | dHash d | " + " | ".join(VARIANTS) + " |")
    print("|---" * (len(VARIANTS) + 2) + "|")
    for threshold, confirm in ((4, 64), (6, 64), (8, 64), (10, 64), (12, 64), (8, 8), (8, 10), (10, 12)):
        found = (duplicate_p <= threshold) & (duplicate_d <= confirm)
        cells = " | ".join(f"{found[kinds == kind].mean():.1%}" for kind in VARIANTS)
        print(f"| {threshold} | {'none' if confirm == 64 else confirm} | {cells} |")

    print("\n## Confirming with dHash (a pair counts only if pHash <= t and dHash <= d)\n")
    print(
        "| pHash t | dHash d | recall | false pairs | false-positive rate | ≈ false pairs in 27,153 images "
        "| distinct images wrongly grouped | largest wrong group |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for threshold in (8, 10, 12, 64):
        for confirm in (8, 10, 12, 14, 16, 64):
            if threshold == confirm == 64:
                continue
            recall = ((duplicate_p <= threshold) & (duplicate_d <= confirm)).mean()
            false = (distinct_p <= threshold) & (distinct_d <= confirm)
            grouped, largest = false_groups(len(originals), i[false], j[false])
            rate = false.sum() / len(distinct_p)
            print(
                f"| {'none' if threshold == 64 else threshold} | {'none' if confirm == 64 else confirm} "
                f"| {recall:.1%} | {false.sum()} | {rate:.2e} | {rate * total_pairs:,.0f} | {grouped} | {largest} |"
            )

    print(
        f"\nprocess_image_bytes per file: mean {seconds.mean() * 1000:.1f} ms,"
        f" median {np.median(seconds) * 1000:.1f} ms,"
        f" p95 {np.percentile(seconds, 95) * 1000:.1f} ms (images 450-1024 px; one worker each, {arguments.workers}"
        f" workers); wall time {elapsed:.0f} s including generation."
    )


if __name__ == "__main__":
    main()
