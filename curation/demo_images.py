"""Lesion-like pictures drawn per class, for the demo, tests and benchmarks.

No downloads: each class has its own look (colour, shape, texture), so that a
tiny model can learn them and a reader can tell them apart at a glance. They
are drawings, not medical images.
"""

import math
import random
from collections.abc import Callable
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

# Folder names in the layout of the public Kaggle dataset.
KAGGLE_FOLDERS = {
    0: "0. Normal skin",
    1: "1. Eczema 1677",
    2: "2. Melanoma 15.75k",
    3: "3. Atopic Dermatitis - 1.25k",
    4: "4. Basal Cell Carcinoma (BCC) 3323",
    5: "5. Melanocytic Nevi (NV) - 7970",
    6: "6. Benign Keratosis-like Lesions (BKL) 2624",
    7: "7. Psoriasis pictures Lichen Planus and related diseases - 2k",
    8: "8. Seborrheic Keratoses and other Benign Tumors - 1.8k",
    9: "9. Tinea Ringworm Candidiasis and other Fungal Infections - 1.7k",
    10: "10. Warts Molluscum and other Viral Infections - 2103",
}

_SKIN_TONES = [(241, 194, 167), (224, 172, 138), (198, 134, 102), (160, 104, 74), (232, 190, 160)]


def _lighting(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """Uneven light, as in a clinic photo: a random gradient plus soft shadows."""
    angle = rng.random() * math.tau
    strength = rng.uniform(0.25, 0.6)
    small = Image.new("L", (16, 12))
    for y in range(12):
        for x in range(16):
            along = (x / 15 - 0.5) * math.cos(angle) + (y / 11 - 0.5) * math.sin(angle)
            small.putpixel((x, y), int(255 * (1 - strength * (along + 0.5))))
    for _ in range(rng.randint(1, 3)):
        cx, cy, r = rng.uniform(0, 16), rng.uniform(0, 12), rng.uniform(2, 6)
        ImageDraw.Draw(small).ellipse((cx - r, cy - r, cx + r, cy + r), fill=int(255 * (1 - strength)))
    return small.filter(ImageFilter.GaussianBlur(2)).resize(size, Image.Resampling.BICUBIC)


def _skin(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    base = rng.choice(_SKIN_TONES)
    tone = tuple(max(0, min(255, c + rng.randint(-12, 12))) for c in base)
    image = Image.new("RGB", size, tone)
    image = Image.composite(image, Image.new("RGB", size, tuple(int(c * 0.55) for c in tone)), _lighting(rng, size))
    draw = ImageDraw.Draw(image)
    width, height = size
    # Pores and fine texture.
    for _ in range(width * height // 400):
        x, y = rng.randrange(width), rng.randrange(height)
        shade = rng.randint(-18, 8)
        draw.point((x, y), fill=tuple(max(0, min(255, c + shade)) for c in tone))
    return image


def _blob(
    rng: random.Random, center: tuple[float, float], radius: float, irregularity: float
) -> list[tuple[float, float]]:
    points = []
    phase = rng.random() * math.tau
    for step in range(36):
        angle = step / 36 * math.tau
        wobble = 1 + irregularity * (math.sin(3 * angle + phase) * 0.5 + rng.uniform(-0.5, 0.5))
        points.append((center[0] + radius * wobble * math.cos(angle), center[1] + radius * wobble * math.sin(angle)))
    return points


def _center(rng: random.Random, size: tuple[int, int]) -> tuple[float, float]:
    return size[0] * rng.uniform(0.35, 0.65), size[1] * rng.uniform(0.35, 0.65)


def _normal(rng, image, draw, size):
    # Healthy skin: maybe a crease or a few hairs, no lesion.
    for _ in range(rng.randint(0, 6)):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.line([(x, y), (x + rng.randint(-40, 40), y + rng.randint(10, 50))], fill=(90, 60, 45), width=1)


def _eczema(rng, image, draw, size):
    for _ in range(rng.randint(5, 9)):
        cx, cy = rng.uniform(0.15, 0.85) * size[0], rng.uniform(0.15, 0.85) * size[1]
        draw.polygon(_blob(rng, (cx, cy), min(size) * rng.uniform(0.05, 0.12), 0.6), fill=(205, 95, 90))
    for _ in range(120):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.ellipse((x, y, x + 3, y + 3), fill=(180, 70, 70))


def _melanoma(rng, image, draw, size):
    center = _center(rng, size)
    radius = min(size) * rng.uniform(0.18, 0.26)
    draw.polygon(_blob(rng, center, radius, 0.9), fill=(60, 35, 30))
    for colour in ((25, 15, 20), (110, 60, 50), (70, 70, 110)):
        offset = (center[0] + rng.uniform(-0.4, 0.4) * radius, center[1] + rng.uniform(-0.4, 0.4) * radius)
        draw.polygon(_blob(rng, offset, radius * rng.uniform(0.25, 0.45), 0.8), fill=colour)


def _atopic(rng, image, draw, size):
    draw.polygon(_blob(rng, _center(rng, size), min(size) * 0.35, 0.5), fill=(215, 120, 110))
    for _ in range(60):
        x, y = rng.randrange(size[0]), rng.randrange(size[1])
        draw.line([(x, y), (x + rng.randint(-25, 25), y + rng.randint(-25, 25))], fill=(235, 215, 205), width=2)


def _bcc(rng, image, draw, size):
    center = _center(rng, size)
    radius = min(size) * rng.uniform(0.1, 0.16)
    draw.ellipse((center[0] - radius, center[1] - radius, center[0] + radius, center[1] + radius), fill=(238, 200, 205))
    for _ in range(8):
        angle = rng.random() * math.tau
        draw.line(
            [center, (center[0] + radius * math.cos(angle), center[1] + radius * math.sin(angle))],
            fill=(200, 40, 60),
            width=2,
        )


def _nevus(rng, image, draw, size):
    center = _center(rng, size)
    radius = min(size) * rng.uniform(0.07, 0.12)
    draw.ellipse((center[0] - radius, center[1] - radius, center[0] + radius, center[1] + radius), fill=(120, 75, 50))


def _bkl(rng, image, draw, size):
    draw.polygon(_blob(rng, _center(rng, size), min(size) * rng.uniform(0.14, 0.2), 0.3), fill=(170, 130, 85))
    for _ in range(40):
        x, y = rng.randrange(size[0] // 3, 2 * size[0] // 3), rng.randrange(size[1] // 3, 2 * size[1] // 3)
        draw.ellipse((x, y, x + 4, y + 4), fill=(150, 110, 70))


def _psoriasis(rng, image, draw, size):
    for _ in range(rng.randint(2, 4)):
        cx, cy = rng.uniform(0.2, 0.8) * size[0], rng.uniform(0.2, 0.8) * size[1]
        radius = min(size) * rng.uniform(0.1, 0.18)
        draw.polygon(_blob(rng, (cx, cy), radius, 0.4), fill=(200, 80, 85))
        draw.polygon(_blob(rng, (cx, cy), radius * 0.75, 0.5), fill=(232, 228, 225))


def _seborrheic(rng, image, draw, size):
    center = _center(rng, size)
    radius = min(size) * rng.uniform(0.14, 0.2)
    draw.rectangle(
        (center[0] - radius, center[1] - radius * 0.7, center[0] + radius, center[1] + radius * 0.7), fill=(95, 70, 45)
    )
    for _ in range(50):
        x = rng.uniform(center[0] - radius, center[0] + radius)
        y = rng.uniform(center[1] - radius * 0.7, center[1] + radius * 0.7)
        draw.ellipse((x, y, x + 3, y + 3), fill=(200, 180, 120))


def _fungal(rng, image, draw, size):
    center = _center(rng, size)
    radius = min(size) * rng.uniform(0.2, 0.28)
    width = max(4, int(radius * 0.2))
    draw.ellipse(
        (center[0] - radius, center[1] - radius, center[0] + radius, center[1] + radius),
        outline=(190, 60, 60),
        width=width,
    )


def _viral(rng, image, draw, size):
    for _ in range(rng.randint(6, 14)):
        cx, cy = rng.uniform(0.2, 0.8) * size[0], rng.uniform(0.2, 0.8) * size[1]
        radius = min(size) * rng.uniform(0.02, 0.045)
        draw.ellipse(
            (cx - radius, cy - radius, cx + radius, cy + radius), fill=(236, 214, 196), outline=(150, 120, 100)
        )
        draw.point((cx, cy), fill=(90, 60, 50))


_PAINTERS: dict[int, Callable] = {
    0: _normal,
    1: _eczema,
    2: _melanoma,
    3: _atopic,
    4: _bcc,
    5: _nevus,
    6: _bkl,
    7: _psoriasis,
    8: _seborrheic,
    9: _fungal,
    10: _viral,
}


def draw_lesion(class_index: int, *, seed: int, size: tuple[int, int] = (600, 450)) -> Image.Image:
    """A picture of class `class_index`; the same seed always draws the same picture."""
    rng = random.Random(f"{class_index}:{seed}")
    image = _skin(rng, size)
    _PAINTERS[class_index](rng, image, ImageDraw.Draw(image), size)
    return image.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.6, 1.4)))


def write_demo_dataset(
    root: Path,
    *,
    per_class: int,
    size: tuple[int, int] = (600, 450),
    classes: list[int] | None = None,
    seed: int = 0,
    quality: int = 88,
) -> list[Path]:
    """Write JPEGs in the Kaggle layout (`root/<n. Class name count>/*.jpg`); returns their paths."""
    paths = []
    for class_index in classes if classes is not None else sorted(KAGGLE_FOLDERS):
        folder = Path(root) / KAGGLE_FOLDERS[class_index]
        folder.mkdir(parents=True, exist_ok=True)
        for number in range(per_class):
            path = folder / f"demo_{class_index:02d}_{seed}_{number:04d}.jpg"
            draw_lesion(class_index, seed=seed * 100_000 + number, size=size).save(path, "JPEG", quality=quality)
            paths.append(path)
    return paths
