"""Decode, validate, sanitize and fingerprint one uploaded or imported image.

Pure Pillow / imagehash / numpy with no Django import, so that an import job can
run it in a process pool without paying for Django in every worker.

The pipeline for one file:

1. sha256 of the original bytes (exact-duplicate key; the original is kept as is).
2. Lazy open restricted to raster formats we accept; the pixel count from the
   header is checked against ``max_pixels`` before anything is decoded.
3. A full decode (not ``verify()``), so a truncated or corrupt file is refused.
4. Colour conversion to 8-bit sRGB, the EXIF orientation applied, the longest
   side capped, then re-encoded as a fresh JPEG that carries no metadata. A
   JPEG that needs none of these changes is served as its own scan data with
   every metadata segment removed (no generation loss, and no encoding work).
5. pHash and dHash of those sanitized pixels, as signed 64-bit integers.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageCms, UnidentifiedImageError

# Raster formats we decode. Anything else Pillow could open (EPS through
# Ghostscript, PSD, ICO, JPEG 2000, ...) is refused: a smaller decoder surface,
# and none of them is a format a camera or dermatoscope writes.
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "WEBP", "TIFF", "BMP", "GIF", "AVIF")

FORMAT_EXTENSIONS: dict[str, str] = {
    "JPEG": "jpg",
    "MPO": "jpg",  # multi-picture JPEG from phone cameras; Pillow opens it through the JPEG plugin
    "PNG": "png",
    "WEBP": "webp",
    "TIFF": "tif",
    "BMP": "bmp",
    "GIF": "gif",
    "AVIF": "avif",
}

# File name suffixes an import picks up, compared lower-case (".JPG" matches).
# GIF is accepted (first frame) because scraped dermatology collections contain
# a few; HEIC is not listed because this Pillow build cannot decode it.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".avif"}
)

_EXIF_ORIENTATION = 0x0112
_TRANSPOSE_FOR_ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_WHITE = (255, 255, 255)
_BOMB_PIXELS = re.compile(r"\((\d+) pixels\)")

FINGERPRINT_SIDE = 64
# A picture whose grey levels vary less than this (standard deviation, at full size) shows nothing: a
# black, white or single-colour frame, JPEG noise and all. Nearly uniform skin varies more (its light,
# texture and sensor noise): the flattest of 120 flat atlas photos (curation.demo_images) lies at 2.75.
BLANK_MAX_STD = 1.0

_SIGN_BIT = 1 << 63
_TWO_TO_64 = 1 << 64


class ImageRejected(Exception):
    """The file cannot become an Image; ``reason`` is a sentence for the curator."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ProcessedImage:
    sha256: str
    original_bytes: bytes
    original_format: str
    original_extension: str
    width: int
    height: int
    sanitized_jpeg: bytes
    sanitized_width: int
    sanitized_height: int
    thumbnail_jpeg: bytes  # empty when processed without_derivatives
    phash: int | None  # None when processed without_derivatives
    dhash: int | None
    fingerprint: bytes = b""  # empty when processed without_derivatives


@dataclass(frozen=True)
class AlreadyPresent:
    sha256: str


def is_image_path(path: str | Path) -> bool:
    """Whether an import should pick the file up, by its suffix, case-insensitively."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def to_signed64(value: int) -> int:
    """Map an unsigned 64-bit hash onto PostgreSQL's signed ``bigint`` range."""
    if not 0 <= value < _TWO_TO_64:
        raise ValueError(f"{value} is not an unsigned 64-bit integer")
    return value - _TWO_TO_64 if value & _SIGN_BIT else value


def to_unsigned64(value: int) -> int:
    if not -_SIGN_BIT <= value < _SIGN_BIT:
        raise ValueError(f"{value} is not a signed 64-bit integer")
    return value + _TWO_TO_64 if value < 0 else value


def process_image_file(
    path: str | Path,
    *,
    known_sha256: frozenset[str] | set[str] = frozenset(),
    max_pixels: int = 50_000_000,
    sanitized_max_side: int = 1024,
    thumbnail_max_side: int = 256,
    jpeg_quality: int = 90,
    min_side: int = 0,
    reject_blank: bool = False,
) -> ProcessedImage | AlreadyPresent:
    """Read and process one file; a file whose sha256 is already known is not decoded at all."""
    try:
        data = Path(path).read_bytes()
    except OSError as error:
        detail = f"[Errno {error.errno}] {error.strerror}" if error.errno is not None else str(error)
        raise ImageRejected(f"unreadable: {detail}") from error
    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 in known_sha256:
        return AlreadyPresent(sha256=sha256)
    return _process(
        data,
        sha256,
        max_pixels=max_pixels,
        sanitized_max_side=sanitized_max_side,
        thumbnail_max_side=thumbnail_max_side,
        jpeg_quality=jpeg_quality,
        min_side=min_side,
        reject_blank=reject_blank,
    )


def process_image_bytes(
    data: bytes,
    *,
    max_pixels: int = 50_000_000,
    sanitized_max_side: int = 1024,
    thumbnail_max_side: int = 256,
    jpeg_quality: int = 90,
    min_side: int = 0,
    reject_blank: bool = False,
    without_derivatives: bool = False,
) -> ProcessedImage:
    """Validate and process an image held in memory; raises ``ImageRejected``.

    ``min_side``: an image whose shorter side is below it is refused as too small (0: no minimum).
    ``without_derivatives``: the same validation and sanitized JPEG, but no thumbnail, fingerprint or perceptual
    hashes (a picture that is only looked at once, such as one sent for a prediction)."""
    return _process(
        data,
        hashlib.sha256(data).hexdigest(),
        max_pixels=max_pixels,
        sanitized_max_side=sanitized_max_side,
        thumbnail_max_side=thumbnail_max_side,
        jpeg_quality=jpeg_quality,
        min_side=min_side,
        reject_blank=reject_blank,
        derivatives=not without_derivatives,
    )


def _process(
    data: bytes,
    sha256: str,
    *,
    max_pixels: int,
    sanitized_max_side: int,
    thumbnail_max_side: int,
    jpeg_quality: int,
    min_side: int = 0,
    reject_blank: bool = False,
    derivatives: bool = True,
) -> ProcessedImage:
    if not data:
        raise ImageRejected("empty file (0 bytes)")
    image, (width, height) = _decode(data, max_pixels=max_pixels, fit_within=sanitized_max_side, min_side=min_side)
    original_format = image.format or "UNKNOWN"
    orientation = _orientation(image)
    # Resize before rotating: the cap is on the longest side either way, and the
    # transpose then only touches the small image.
    upright = _fit(_to_srgb(image), (width, height), sanitized_max_side)
    if orientation in _TRANSPOSE_FOR_ORIENTATION:
        upright = upright.transpose(_TRANSPOSE_FOR_ORIENTATION[orientation])
        if orientation in (5, 6, 7, 8):
            width, height = height, width

    sanitized_jpeg = None
    if upright is image and image.size == (width, height) and original_format in ("JPEG", "MPO"):
        # Decoded at full size and left as it was (sRGB, upright, within the cap):
        # the original's own scan data decodes to exactly these pixels.
        sanitized_jpeg = _jpeg_without_metadata(data, image.size)
    if sanitized_jpeg is None:
        sanitized_jpeg = _encode_jpeg(upright, jpeg_quality)
    gray = upright.convert("L") if derivatives or reject_blank else None
    # Every other pixel of every other row: enough to see texture and sensor noise, a quarter of the work.
    spread = float(np.asarray(gray)[::2, ::2].std()) if reject_blank else BLANK_MAX_STD
    if spread < BLANK_MAX_STD:
        raise ImageRejected(
            f"blank: almost no variation in the picture (a standard deviation of {spread:.1f} grey levels, "
            f"below {BLANK_MAX_STD:g})"
        )
    thumbnail_jpeg, fingerprint, phash, dhash = b"", b"", None, None
    if derivatives:
        thumbnail_jpeg = _encode_jpeg(_shrink_for_thumbnail(upright, thumbnail_max_side), jpeg_quality)
        small = _fingerprint_image(gray)
        fingerprint = small.tobytes()
        phash, dhash = _hashes(small)
    return ProcessedImage(
        sha256=sha256,
        original_bytes=data,
        original_format=original_format,
        original_extension=FORMAT_EXTENSIONS.get(original_format, original_format.lower()),
        width=width,
        height=height,
        sanitized_jpeg=sanitized_jpeg,
        sanitized_width=upright.width,
        sanitized_height=upright.height,
        thumbnail_jpeg=thumbnail_jpeg,
        phash=phash,
        dhash=dhash,
        fingerprint=fingerprint,
    )


def _decode(data: bytes, *, max_pixels: int, fit_within: int, min_side: int = 0) -> tuple[Image.Image, tuple[int, int]]:
    """The loaded first frame and the size its header declared (before a JPEG draft shrank it)."""
    # Pillow's own bomb guard only warns between MAX_IMAGE_PIXELS and twice that;
    # as an error the warning stops the decode instead of scrolling past in a log.
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=ACCEPTED_FORMATS)
        except UnidentifiedImageError as error:
            raise ImageRejected("not an image: cannot identify the file format") from error
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise ImageRejected(_too_many_pixels_from_pillow(error, max_pixels)) from error
        except Exception as error:  # any header parser failure means the file is unusable
            raise ImageRejected(f"truncated or corrupt image: {_describe(error)}") from error

        width, height = image.size
        if min(width, height) < min_side:
            image.close()
            raise ImageRejected(
                f"too small: {width}×{height} px; the shorter side must be at least {min_side} px "
                "(DERMCURATE_MIN_IMAGE_SIDE)"
            )
        if width * height > max_pixels:
            image.close()
            raise ImageRejected(
                f"too many pixels: {width}×{height} = {width * height / 1e6:.1f} MP, "
                f"the limit is {max_pixels / 1e6:.1f} MP"
            )
        if image.format in ("JPEG", "MPO"):
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale, but never below the size
            # we resize to, so the served image keeps every pixel of its cap.
            image.draft(image.mode, _fitted_size((width, height), fit_within))
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            image.close()
            raise ImageRejected(_too_many_pixels_from_pillow(error, max_pixels)) from error
        except Exception as error:  # decoders raise OSError, SyntaxError, ValueError, EOFError, zlib.error, ...
            image.close()
            raise ImageRejected(f"truncated or corrupt image: {_describe(error)}") from error
    return image, (width, height)


def _describe(error: Exception) -> str:
    return str(error) or type(error).__name__


def _too_many_pixels_from_pillow(error: Exception, max_pixels: int) -> str:
    match = _BOMB_PIXELS.search(str(error))
    found = f"{int(match[1]) / 1e6:.1f} MP" if match else "more than Pillow's decompression-bomb limit"
    return f"too many pixels: {found}, the limit is {max_pixels / 1e6:.1f} MP"


def _orientation(image: Image.Image) -> int:
    try:
        orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a broken EXIF block must not cost us an otherwise good photo
        return 1
    return orientation if orientation in _TRANSPOSE_FOR_ORIENTATION else 1


def _fitted_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    width, height = size
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _fit(image: Image.Image, original_size: tuple[int, int], max_side: int) -> Image.Image:
    """Shrink so that the longest side is at most ``max_side``, keeping the original aspect ratio."""
    target = _fitted_size(original_size, max_side)
    if target == image.size:
        return image
    # reducing_gap=2 box-reduces by an integer factor first where the ratio is at
    # least 4 and stays within 50 dB PSNR of a plain LANCZOS pass (bench/
    # RESULTS_dedup.md, "Image processing"). The served copy's pixels feed the
    # hashes, so this stays as it is: new imports hash like the images stored.
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=2.0)


def _shrink_for_thumbnail(image: Image.Image, max_side: int) -> Image.Image:
    target = _fitted_size(image.size, max_side)
    if target == image.size:
        return image
    # reducing_gap=1 box-reduces by the integer part of the ratio before LANCZOS
    # does the rest: 1.2 ms instead of 2.6 ms for 600x450 -> 256x192 (at a ratio
    # under 4, reducing_gap=2 reduces nothing), 51-57 dB PSNR from a LANCZOS-only
    # thumbnail (bench/RESULTS_ingest_review.md).
    return image.resize(target, Image.Resampling.LANCZOS, reducing_gap=1.0)


def _to_srgb(image: Image.Image) -> Image.Image:
    """Any mode Pillow decodes, as 8-bit RGB; transparency over white, ICC profiles converted to sRGB."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        return _scale_to_eight_bit(image).convert("RGB")
    if mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in image.info:
        return _flatten_on_white(image.convert("RGBA"))

    icc_profile = image.info.get("icc_profile")
    if icc_profile and mode in ("RGB", "CMYK", "LAB"):
        transform = _transform_to_srgb(icc_profile, mode)
        if transform is not None:
            return ImageCms.applyTransform(image, transform)
    if mode == "RGB":
        return image
    if mode == "LAB":
        transform = _lab_to_srgb()
        return ImageCms.applyTransform(image, transform)
    try:
        return image.convert("RGB")
    except ValueError as error:
        raise ImageRejected(f"unsupported colour mode: {mode}") from error


def _flatten_on_white(rgba: Image.Image) -> Image.Image:
    flattened = Image.new("RGB", rgba.size, _WHITE)
    flattened.paste(rgba, mask=rgba.getchannel("A"))
    return flattened


def _scale_to_eight_bit(image: Image.Image) -> Image.Image:
    # Pillow's own convert("L") clips 16-bit values at 255, which turns a
    # normal 16-bit photo almost entirely white; scale the range instead.
    pixels = np.asarray(image)
    if pixels.dtype.kind in "ui" and pixels.min() >= 0 and pixels.max() <= 65535:
        eight_bit = (pixels.astype(np.uint32) * 255 + 32767) // 65535
    else:  # float or 32-bit data has no nominal range: stretch what is there
        low, high = float(pixels.min()), float(pixels.max())
        span = high - low if high > low else 1.0
        eight_bit = np.rint((pixels.astype(np.float64) - low) * (255.0 / span))
    return Image.fromarray(eight_bit.astype(np.uint8))


@lru_cache(maxsize=32)
def _transform_to_srgb(icc_profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A cached transform from an embedded profile to sRGB; None when already sRGB or unusable."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        if mode == "RGB" and "srgb" in ImageCms.getProfileDescription(source).lower().replace(" ", ""):
            return None
        return ImageCms.buildTransform(source, _srgb_profile(), mode, "RGB")
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


@lru_cache(maxsize=1)
def _srgb_profile() -> ImageCms.ImageCmsProfile:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@lru_cache(maxsize=1)
def _lab_to_srgb() -> ImageCms.ImageCmsTransform:
    return ImageCms.buildTransform(
        ImageCms.ImageCmsProfile(ImageCms.createProfile("LAB")), _srgb_profile(), "LAB", "RGB"
    )


def _encode_jpeg(image: Image.Image, quality: int) -> bytes:
    # A fresh image object can still carry info copied from its source (a JPEG
    # comment is written back by default); the served copy gets none of it.
    image.info = {}
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=False)
    return buffer.getvalue()


# What a JPEG served as it came keeps: quantization and Huffman tables, the
# restart interval, and the frame header of a baseline, extended or progressive
# Huffman-coded image, which are all that decide its pixels. Any other marker
# (arithmetic coding, lossless, hierarchical, DNL, fill bytes between segments,
# ...) sends the image to a re-encode instead.
_START_OF_IMAGE, _END_OF_IMAGE = b"\xff\xd8", b"\xff\xd9"
_EOI, _SOS, _APP0, _APP14, _COM = 0xD9, 0xDA, 0xE0, 0xEE, 0xFE
_FRAME_MARKERS = frozenset({0xC0, 0xC1, 0xC2})
_TABLE_MARKERS = frozenset({0xC4, 0xDB, 0xDD})
# A JFIF or Adobe segment before the first scan takes part in libjpeg's choice
# of colour transform, so whether there was one is kept: JFIF as nothing but the
# version-1.01 defaults (no density, no embedded thumbnail), Adobe as it is when
# it has the standard 12 bytes of flags. Shorter or longer ones go to a re-encode.
_BARE_JFIF = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
_ADOBE_SEGMENT_SIZE = 2 + 2 + 12
# The end of an entropy-coded segment: 0xFF followed by anything but a stuffed
# zero, a restart marker or another fill byte.
_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def _jpeg_without_metadata(data: bytes, size: tuple[int, int]) -> bytes | None:
    """The JPEG without its APPn and COM segments and anything after its end, or None if unusual.

    What is kept is the original's own bytes, so the result decodes to exactly
    the pixels the original does. None (re-encode instead) for any structure
    this parser does not fully understand.
    """
    if not data.startswith(_START_OF_IMAGE):
        return None
    jfif: bytes | None = None
    adobe: bytes | None = None
    kept: list[bytes] = []
    frame_seen = False
    scans = 0
    position = len(_START_OF_IMAGE)
    while True:
        if position + 2 > len(data) or data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == _EOI:
            break
        end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if position + 4 > len(data) or end < position + 4 or end > len(data):
            return None
        segment = data[position:end]
        if marker == _SOS:
            found = _MARKER_AFTER_SCAN.search(data, end)
            if not frame_seen or found is None:
                return None
            kept.append(data[position : found.start()])
            scans += 1
            position = found.start()
            continue
        if marker in _FRAME_MARKERS:
            if frame_seen or not _is_eight_bit_three_component_frame(segment, size):
                return None
            frame_seen = True
            kept.append(segment)
        elif marker in _TABLE_MARKERS:
            kept.append(segment)
        elif marker == _APP0 and segment[4:9] == b"JFIF\x00":
            if scans or jfif or len(segment) < len(_BARE_JFIF):
                return None
            jfif = _BARE_JFIF
        elif marker == _APP14 and segment[4:9] == b"Adobe":
            if scans or adobe or len(segment) != _ADOBE_SEGMENT_SIZE:
                return None
            adobe = segment
        elif not (0xE0 <= marker <= 0xEF or marker == _COM):
            return None
        position = end
    if not scans:
        return None
    return b"".join([_START_OF_IMAGE, jfif or b"", adobe or b"", *kept, _END_OF_IMAGE])


def _is_eight_bit_three_component_frame(segment: bytes, size: tuple[int, int]) -> bool:
    # FF Cn, length, precision, height, width, number of components, ...
    if len(segment) < 10:
        return False
    height = int.from_bytes(segment[5:7], "big")
    width = int.from_bytes(segment[7:9], "big")
    return segment[4] == 8 and (width, height) == size and segment[9] == 3


def image_fingerprint(gray: Image.Image) -> bytes:
    """The grayscale picture at FINGERPRINT_SIDE × FINGERPRINT_SIDE (area-averaged), one byte a pixel.

    What near-duplicate verification compares (``curation.dedup.fingerprint_similarity``):
    enough detail to tell two flat skin photos apart, small enough to keep in a row.
    """
    return _fingerprint_image(gray if gray.mode == "L" else gray.convert("L")).tobytes()


def _fingerprint_image(gray: Image.Image) -> Image.Image:
    return gray.resize((FINGERPRINT_SIDE, FINGERPRINT_SIDE), Image.Resampling.BOX)


def _hashes(small: Image.Image) -> tuple[int, int]:
    # From the 64 × 64 area average of the served pixels (the fingerprint), not the full image:
    # pHash shrinks to 32 × 32 and dHash to 9 × 8 anyway. Both hashes from the full grey 640 × 480 photo
    # took 3.2–3.6 ms, from the 64 × 64 one 0.5–0.8 ms; pHash moved by 0.8 bits on average, at most 4,
    # over 40 photos (bench/RESULTS.md, "Import"). pHash only adds candidates now; fingerprints decide.
    return _hash_to_signed(imagehash.phash(small)), _hash_to_signed(imagehash.dhash(small))


def _hash_to_signed(image_hash: imagehash.ImageHash) -> int:
    # int(str(image_hash), 16) without the detour through a string of bits.
    return to_signed64(int.from_bytes(np.packbits(image_hash.hash).tobytes(), "big"))
