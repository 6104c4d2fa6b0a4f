"""Lesion-like pictures drawn per class, for the demo, tests and benchmarks.

No downloads: each class has its own look (colour, shape, texture), so that a
tiny model can learn them and a reader can tell them apart at a glance. They
are drawings, not medical images.
"""

import io
import math
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

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
    strength = rng.uniform(0.1, 0.3)
    small = Image.new("L", (16, 12))
    for y in range(12):
        for x in range(16):
            along = (x / 15 - 0.5) * math.cos(angle) + (y / 11 - 0.5) * math.sin(angle)
            small.putpixel((x, y), int(255 * (1 - strength * (along + 0.5))))
    for _ in range(rng.randint(0, 2)):
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
    # One ill-defined patch of merging red papules, with scattered papules around it.
    center = _center(rng, size)
    spread = min(size) * 0.22
    for _ in range(rng.randint(10, 16)):
        cx, cy = center[0] + rng.uniform(-1, 1) * spread, center[1] + rng.uniform(-1, 1) * spread
        draw.polygon(_blob(rng, (cx, cy), min(size) * rng.uniform(0.05, 0.1), 0.6), fill=(205, 95, 90))
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
    # A flexural band (the crease of an elbow or knee) of pink, lichenified skin with pale scratch lines.
    width, height = size
    middle, half = height * rng.uniform(0.4, 0.6), height * rng.uniform(0.14, 0.2)
    tilt = height * rng.uniform(-0.15, 0.15)
    top = [
        (x, middle - half + tilt * (x / width - 0.5) + rng.uniform(-0.3, 0.3) * half) for x in range(0, width + 1, 40)
    ]
    bottom = [(x, middle + half + tilt * (x / width - 0.5) + rng.uniform(-0.3, 0.3) * half) for x, _ in top]
    draw.polygon(top + bottom[::-1], fill=(220, 135, 125))
    for _ in range(70):
        x, y = rng.uniform(0, width), middle + rng.uniform(-half, half)
        draw.line([(x, y), (x + rng.randint(-25, 25), y + rng.randint(-8, 8))], fill=(240, 222, 212), width=3)


def _bcc(rng, image, draw, size):
    center = _center(rng, size)
    radius = min(size) * rng.uniform(0.14, 0.2)
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
    radius = min(size) * rng.uniform(0.08, 0.13)
    draw.ellipse((center[0] - radius, center[1] - radius, center[0] + radius, center[1] + radius), fill=(95, 58, 38))


def _bkl(rng, image, draw, size):
    draw.polygon(
        _blob(rng, _center(rng, size), min(size) * rng.uniform(0.16, 0.22), 0.3),
        fill=(165, 122, 72),
        outline=(110, 78, 48),
        width=max(3, min(size) // 40),
    )
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
    # A large stuck-on plaque, far bigger than a nevus, speckled with yellow keratin plugs.
    radius = min(size) * rng.uniform(0.22, 0.28)
    draw.rectangle(
        (center[0] - radius, center[1] - radius * 0.7, center[0] + radius, center[1] + radius * 0.7), fill=(80, 58, 38)
    )
    dot = max(3, min(size) // 50)
    for _ in range(90):
        x = rng.uniform(center[0] - radius, center[0] + radius - dot)
        y = rng.uniform(center[1] - radius * 0.7, center[1] + radius * 0.7 - dot)
        draw.ellipse((x, y, x + dot, y + dot), fill=(215, 190, 110))


def _fungal(rng, image, draw, size):
    center = _center(rng, size)
    # An annular lesion: a thick, sharp red ring around clear skin.
    radius = min(size) * rng.uniform(0.24, 0.3)
    width = max(4, int(radius * 0.3))
    draw.ellipse(
        (center[0] - radius, center[1] - radius, center[0] + radius, center[1] + radius),
        outline=(195, 45, 50),
        width=width,
    )


def _viral(rng, image, draw, size):
    for _ in range(rng.randint(6, 10)):
        cx, cy = rng.uniform(0.2, 0.8) * size[0], rng.uniform(0.2, 0.8) * size[1]
        radius = min(size) * rng.uniform(0.06, 0.085)
        draw.ellipse(
            (cx - radius, cy - radius, cx + radius, cy + radius),
            fill=(240, 222, 206),
            outline=(130, 100, 85),
            width=max(1, min(size) // 100),
        )
        dimple = radius * 0.25  # molluscum's central dimple
        draw.ellipse((cx - dimple, cy - dimple, cx + dimple, cy + dimple), fill=(150, 115, 95))


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


# --- Photo-like images of a public atlas: shared corner logo, flat skin, altered copies ------------------
# What broke naive near-duplicate grouping (issue 10); bench/dedup_realistic.py and the dedup tests use them.

PHOTO_SIZES = ((640, 480), (600, 450), (800, 600), (480, 640), (720, 540), (512, 512))
PHOTO_SKIN_TONES = ((241, 194, 167), (224, 172, 140), (198, 134, 100), (160, 106, 72), (120, 75, 50), (90, 56, 38))
PHOTO_LESION_COLOURS = ((92, 52, 34), (60, 38, 30), (150, 70, 60), (190, 90, 90), (215, 140, 130), (120, 95, 110))
ALTERATIONS = ("reencode", "resize", "recrop", "recolour", "logo_added")


def _noise_field(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth noise in [-1, 1]: `cells` random values across the longer side, upsampled bicubically."""
    height, width = shape
    small_w = max(2, cells * width // max(width, height))
    small_h = max(2, cells * height // max(width, height))
    small = Image.fromarray(rng.integers(0, 256, (small_h, small_w), dtype=np.uint8))
    return np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32) / 127.5 - 1


def atlas_photo(seed: int, *, flat: bool) -> Image.Image:
    """One distinct photo-like image (a lesion on skin, or nearly uniform skin)."""
    rng = np.random.default_rng(seed)
    width, height = PHOTO_SIZES[rng.integers(len(PHOTO_SIZES))]
    tone = np.array(PHOTO_SKIN_TONES[rng.integers(len(PHOTO_SKIN_TONES))], dtype=np.float32) + rng.normal(0, 10, 3)
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
            colour = np.clip(
                np.array(PHOTO_LESION_COLOURS[rng.integers(len(PHOTO_LESION_COLOURS))]) + rng.normal(0, 15, 3), 0, 255
            )
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
