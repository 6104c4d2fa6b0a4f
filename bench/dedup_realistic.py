"""Near-duplicate groups on photo-like data that breaks naive grouping: shared logos, flat skin, altered copies.

Run from the repository root (no database needed):

    .venv/bin/python bench/dedup_realistic.py                   # 3,000 distinct photos
    .venv/bin/python bench/dedup_realistic.py --photos 600      # a quicker run

What it generates (seeded, so every run is the same):

- distinct photo-like images of 480-800 px: skin of varied tone under uneven light, with
  mottling, pores and noise; most carry one to five lesions and sometimes hairs, and a
  share (``--flat``, default 35 %) are nearly uniform skin with no lesion at all;
- the same corner logo on most of them (``--logo``, default 80 %), pasted at a fixed pixel
  size in the bottom-right corner, as a public atlas marks its photos; a caption bar on some;
- true copies of a share of them (``--copied``, default 20 %), one to three each, every copy
  altered by one or more of: re-encoded (JPEG q60-95), resized (50-150 %), recropped (up to
  10 % of each side's length, placed anywhere), recoloured (brightness, contrast, saturation,
  a hue turn), re-shared with the logo or a caption added.

Every file goes through ``curation.imaging.process_image_bytes``, as an import would, and
both methods work on what the import stores. A pair counts as a true copy when both files come
from the same distinct photo. For each method: precision = true copies among the pairs that
share a group; recall = true-copy pairs that share a group, of all of them.

- before: pHash ≤ 10, confirmed by dHash ≤ 12, connected components (the method up to this
  change);
- now: ``curation.dedup.verified_duplicate_groups``, the app's method (see its docstring).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from itertools import combinations
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from curation import dedup
from curation.imaging import process_image_bytes

SIZES = ((640, 480), (600, 450), (800, 600), (480, 640), (720, 540), (512, 512))
SKIN_TONES = ((241, 194, 167), (224, 172, 140), (198, 134, 100), (160, 106, 72), (120, 75, 50), (90, 56, 38))
LESION_COLOURS = ((92, 52, 34), (60, 38, 30), (150, 70, 60), (190, 90, 90), (215, 140, 130), (120, 95, 110))
ALTERATIONS = ("reencode", "resize", "recrop", "recolour", "logo_added")


def _noise_field(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: `cells` random values across the longer side, upsampled bicubically."""
    height, width = shape
    small_w = max(2, cells * width // max(width, height))
    small_h = max(2, cells * height // max(width, height))
    small = Image.fromarray(rng.integers(0, 256, (small_h, small_w), dtype=np.uint8))
    return np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32) / 127.5 - 1


def photo(seed: int, *, flat: bool) -> Image.Image:
    """One distinct photo-like image (a lesion on skin, or nearly uniform skin)."""
    rng = np.random.default_rng(seed)
    width, height = SIZES[rng.integers(len(SIZES))]
    tone = np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))], dtype=np.float32) + rng.normal(0, 10, 3)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32) / max(width, height)
    light = 1 + rng.uniform(-0.2, 0.2) * (x - 0.5) + rng.uniform(-0.2, 0.2) * (y - 0.5)
    light -= rng.uniform(0.05, 0.3) * ((x - x.mean()) ** 2 + (y - y.mean()) ** 2)
    mottling = _noise_field(rng, (height, width), int(rng.integers(6, 14))) * rng.uniform(0.02, 0.06)
    pores = _noise_field(rng, (height, width), int(rng.integers(40, 90))) * rng.uniform(0.01, 0.04)
    base = tone[None, None, :] * (light + mottling + pores)[..., None]
    image = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    if not flat:
        draw = ImageDraw.Draw(image)
        for _ in range(rng.integers(1, 6)):
            centre = rng.uniform(0.15, 0.85, 2) * (width, height)
            radius = rng.uniform(0.04, 0.25) * min(width, height)
            angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(8, 20)))
            radii = radius * rng.uniform(0.6, 1.3, len(angles))
            polygon = [
                (centre[0] + r * np.cos(a), centre[1] + r * np.sin(a)) for a, r in zip(angles, radii, strict=True)
            ]
            colour = np.clip(np.array(LESION_COLOURS[rng.integers(len(LESION_COLOURS))]) + rng.normal(0, 15, 3), 0, 255)
            draw.polygon(polygon, fill=tuple(int(c) for c in colour))
        if rng.random() < 0.4:
            for _ in range(rng.integers(3, 15)):
                start = rng.uniform(0, 1, 2) * (width, height)
                end = start + rng.normal(0, 0.15, 2) * (width, height)
                draw.line([tuple(start), tuple(end)], fill=(40, 30, 25), width=int(rng.integers(1, 3)))
    pixels = np.asarray(image, dtype=np.float32) + rng.normal(0, rng.uniform(1.5, 4), (height, width, 1))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def _logo() -> Image.Image:
    """The atlas's corner logo: a translucent white plate with a mark and a name, 150 × 40 px."""
    logo = Image.new("RGBA", (150, 40), (0, 0, 0, 0))
    draw = ImageDraw.Draw(logo)
    draw.rounded_rectangle((0, 0, 149, 39), radius=8, fill=(255, 255, 255, 200))
    draw.ellipse((6, 6, 34, 34), fill=(0, 90, 160, 255))
    draw.text((42, 8), "DermAtlas", font=ImageFont.load_default(size=20), fill=(0, 60, 120, 255))
    return logo


LOGO = _logo()


def with_logo(image: Image.Image) -> Image.Image:
    marked = image.convert("RGBA")
    marked.alpha_composite(LOGO, (marked.width - LOGO.width - 8, marked.height - LOGO.height - 8))
    return marked.convert("RGB")


def with_caption(image: Image.Image, text: str) -> Image.Image:
    captioned = image.copy()
    bar = max(24, image.height // 12)
    draw = ImageDraw.Draw(captioned)
    draw.rectangle((0, image.height - bar, image.width, image.height), fill=(20, 20, 20))
    draw.text((10, image.height - bar + 4), text, font=ImageFont.load_default(size=bar // 2), fill=(240, 240, 240))
    return captioned


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def altered(image: Image.Image, kinds: list[str], rng: np.random.Generator) -> bytes:
    quality = 90
    for kind in kinds:
        width, height = image.size
        if kind == "reencode":
            quality = int(rng.integers(60, 96))
        elif kind == "resize":
            scale = rng.choice((rng.uniform(0.5, 0.9), rng.uniform(1.1, 1.5)))
            image = image.resize((round(width * scale), round(height * scale)), Image.Resampling.BILINEAR)
        elif kind == "recrop":
            cut_x, cut_y = (int(rng.uniform(0.02, 0.10) * side) for side in (width, height))
            left, top = int(rng.integers(0, cut_x + 1)), int(rng.integers(0, cut_y + 1))
            image = image.crop((left, top, width - (cut_x - left), height - (cut_y - top)))
        elif kind == "recolour":
            image = ImageEnhance.Brightness(image).enhance(rng.uniform(0.85, 1.15))
            image = ImageEnhance.Contrast(image).enhance(rng.uniform(0.85, 1.15))
            image = ImageEnhance.Color(image).enhance(rng.uniform(0.7, 1.3))
            if rng.random() < 0.5:
                hsv = np.asarray(image.convert("HSV")).copy()
                hsv[..., 0] = (hsv[..., 0].astype(np.int16) + int(rng.integers(-12, 13))) % 256
                image = Image.fromarray(hsv, "HSV").convert("RGB")
        elif kind == "logo_added":
            image = with_logo(image) if rng.random() < 0.7 else with_caption(image, "Shared from the clinic's archive")
    return jpeg(image, quality)


def make_photo_set(index: int, options: dict) -> list[tuple[int, dict]]:
    """The files of distinct photo `index`: its own file and its altered copies, as stored hashes."""
    rng = np.random.default_rng(10_000 + index)
    flat = rng.random() < options["flat"]
    original = photo(index, flat=flat)
    if rng.random() < options["caption"]:
        original = with_caption(original, f"Case {index}: {'plaque' if index % 2 else 'patch'}, left forearm")
    published = with_logo(original) if rng.random() < options["logo"] else original
    files = [jpeg(published, int(rng.integers(80, 96)))]
    if rng.random() < options["copied"]:
        for _ in range(int(rng.integers(1, 4))):
            kinds = list(rng.choice(ALTERATIONS, size=int(rng.integers(1, 3)), replace=False))
            # A copy re-shared with a logo starts from the photo before the atlas marked it.
            source = original if "logo_added" in kinds else published
            files.append(altered(source, kinds, rng))
    out = []
    for data in files:
        processed = process_image_bytes(data)
        out.append(
            (
                index,
                {
                    "phash": processed.phash,
                    "dhash": processed.dhash,
                    "fingerprint": processed.fingerprint,
                    "flat": flat,
                },
            )
        )
    return out


def pair_scores(groups: list[np.ndarray], truth: np.ndarray) -> tuple[float, float, int, int, int]:
    """(precision, recall, grouped pairs, true pairs, largest group) over index pairs."""
    grouped = 0
    correct = 0
    for members in groups:
        for i, j in combinations(members.tolist(), 2):
            grouped += 1
            correct += truth[i] == truth[j]
    sizes = Counter(truth.tolist())
    true_pairs = sum(k * (k - 1) // 2 for k in sizes.values())
    precision = correct / grouped if grouped else 1.0
    recall = correct / true_pairs if true_pairs else 1.0
    largest = max((len(g) for g in groups), default=0)
    return precision, recall, grouped, true_pairs, largest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=3000, help="distinct photos")
    parser.add_argument("--logo", type=float, default=0.8, help="share of photos with the corner logo")
    parser.add_argument("--flat", type=float, default=0.35, help="share of nearly uniform skin photos")
    parser.add_argument("--caption", type=float, default=0.1, help="share with a caption bar")
    parser.add_argument("--copied", type=float, default=0.2, help="share of photos with altered copies")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    arguments = parser.parse_args()
    options = {key: getattr(arguments, key) for key in ("logo", "flat", "caption", "copied")}

    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=arguments.workers) as pool:
        sets = list(pool.map(make_photo_set, range(arguments.photos), [options] * arguments.photos, chunksize=16))
    rows = [row for photo_set in sets for row in photo_set]
    truth = np.array([index for index, _ in rows])
    phash = np.array([row["phash"] for _, row in rows], dtype=np.int64)
    dhash = np.array([row["dhash"] for _, row in rows], dtype=np.int64)
    fingerprints = np.stack([np.frombuffer(row["fingerprint"], dtype=np.uint8) for _, row in rows])
    flat = np.array([row["flat"] for _, row in rows])
    copies = len(rows) - arguments.photos
    print(
        f"{arguments.photos} distinct photos ({flat[np.unique(truth, return_index=True)[1]].mean():.0%} flat skin, "
        f"logo on {arguments.logo:.0%}), {copies} altered copies, {len(rows)} files; "
        f"generated and processed in {time.perf_counter() - started:.1f} s"
    )

    results = []
    started = time.perf_counter()
    before = dedup.duplicate_groups(phash, 10, confirm=dhash, confirm_threshold=12)
    results.append(("before: pHash ≤ 10 + dHash ≤ 12, connected components", before, time.perf_counter() - started))
    started = time.perf_counter()
    now = dedup.verified_duplicate_groups(fingerprints)
    results.append(("now: verified fingerprints, complete linkage", now.groups, time.perf_counter() - started))

    print()
    print("| method | precision | recall | pairs grouped | true-copy pairs | groups | largest group | seconds |")
    print("|---|---|---|---|---|---|---|---|")
    for name, groups, seconds in results:
        precision, recall, grouped, true_pairs, largest = pair_scores(groups, truth)
        print(
            f"| {name} | {precision:.1%} | {recall:.1%} | {grouped:,} | {true_pairs:,} | {len(groups):,} | "
            f"{largest} | {seconds:.2f} |"
        )
    print(f"\nnow: {now.candidates:,} candidate pairs checked, {now.verified:,} verified")

    # Where the methods go wrong, by kind of photo.
    print("\n| method | false pairs among flat-skin photos | false pairs with a lesion | missed copies of flat skin |")
    print("|---|---|---|---|")
    for name, groups, _ in results:
        false_flat = false_lesion = 0
        for members in groups:
            for i, j in combinations(members.tolist(), 2):
                if truth[i] != truth[j]:
                    if flat[i] and flat[j]:
                        false_flat += 1
                    else:
                        false_lesion += 1
        together = {}
        for number, members in enumerate(groups):
            together.update(dict.fromkeys(members.tolist(), number))
        by_photo: dict[int, list[int]] = {}
        for index, photo_index in enumerate(truth.tolist()):
            by_photo.setdefault(photo_index, []).append(index)
        missed_flat = sum(
            1
            for members in by_photo.values()
            if flat[members[0]]
            for i, j in combinations(members, 2)
            if together.get(i, -1 - i) != together.get(j, -2 - j)
        )
        print(f"| {name.split(':')[0]} | {false_flat} | {false_lesion} | {missed_flat} |")


if __name__ == "__main__":
    main()
