"""Sample files for import tests, generated with Pillow: the bad inputs the issues name and good ones."""

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from curation.demo_images import KAGGLE_FOLDERS, draw_lesion, write_demo_dataset

EXIF_ORIENTATION = 0x0112
GPS_IFD = 0x8825


def encode(image: Image.Image, format: str = "JPEG", **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **options)
    return buffer.getvalue()


def lesion_jpeg(class_index: int = 1, seed: int = 0, size=(120, 90), quality: int = 90) -> bytes:
    return encode(draw_lesion(class_index, seed=seed, size=size), "JPEG", quality=quality)


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid 1×1 PNG whose header claims another size (CRC recomputed); nothing big is ever allocated."""
    data = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def tall_left_red_image(size=(160, 80)) -> Image.Image:
    """Left half red, right half blue: shows which way an image was turned."""
    image = Image.new("RGB", size, (0, 0, 255))
    ImageDraw.Draw(image).rectangle((0, 0, size[0] // 2 - 1, size[1] - 1), fill=(255, 0, 0))
    return image


def exif_rotated_jpeg_with_gps(orientation: int = 6) -> bytes:
    """A landscape JPEG whose EXIF says "rotate" and which carries GPS coordinates."""
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = orientation
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (52.0, 31.0, 12.0), 3: "E", 4: (13.0, 24.0, 36.0)})
    return encode(tall_left_red_image(), "JPEG", exif=exif.tobytes(), quality=95)


def sixteen_bit_png(size=(96, 72)) -> bytes:
    gradient = np.tile(np.linspace(0, 65535, size[0], dtype=np.uint16), (size[1], 1))
    return encode(Image.fromarray(gradient), "PNG")


def bad_and_good_inputs() -> dict[str, bytes]:
    """Every bad input the import issue names, by relative path, all inside the eczema folder."""
    rgba = Image.new("RGBA", (100, 80), (0, 0, 0, 0))
    ImageDraw.Draw(rgba).ellipse((20, 20, 80, 60), fill=(200, 50, 50, 255))
    cmyk = draw_lesion(2, seed=5, size=(120, 90)).convert("CMYK")
    folder = KAGGLE_FOLDERS[1]
    return {
        f"{folder}/empty.jpg": b"",
        f"{folder}/truncated.jpg": lesion_jpeg(seed=1)[:-400],
        f"{folder}/notes.jpg": b"These are my notes, not a picture.\n" * 10,
        f"{folder}/huge.png": png_claiming_size(60000, 60000),
        f"{folder}/cmyk.jpg": encode(cmyk, "JPEG", quality=90),
        f"{folder}/rgba.png": encode(rgba, "PNG"),
        f"{folder}/rotated_gps.jpg": exif_rotated_jpeg_with_gps(),
        f"{folder}/deep16.png": sixteen_bit_png(),
        f"{folder}/gray.jpg": encode(draw_lesion(1, seed=7, size=(120, 90)).convert("L"), "JPEG"),
        f"{folder}/UPPER.JPG": lesion_jpeg(seed=8),
    }


REJECTED_REASONS = {
    "empty.jpg": "empty file",
    "truncated.jpg": "truncated or corrupt",
    "notes.jpg": "not an image",
    "huge.png": "too many pixels",
}


def write_files(root: Path, files: dict[str, bytes]) -> Path:
    for relative, data in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return root


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def labeled_demo_snapshot(
    root: Path, *, name: str, per_class: int, size: tuple[int, int], classes: list[int], ratios: list[float]
):
    """Draw, import and label pictures (each keeps its folder's class), then freeze them into a snapshot."""
    from django.core.management import call_command

    from curation.models import Image
    from curation.services.images import image_set_label
    from curation.services.snapshots import snapshot_create

    write_demo_dataset(root, per_class=per_class, size=size, classes=classes)
    call_command("import_images", str(root), "--source", "demo", stdout=io.StringIO())
    for image in Image.objects.select_related("source_label"):
        image_set_label(image=image, label=image.source_label, actor=None, action="test")
    return snapshot_create(name=name, ratios=ratios)
