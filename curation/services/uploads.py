"""One picture sent by a client (not imported into the collection): validated and sanitized exactly as an import
validates and sanitizes its files, with the same limits."""

from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:  # curation.imaging loads Pillow, NumPy and imagehash: only when a picture comes in
    from curation.imaging import ProcessedImage


def image_processing_options() -> dict:
    """The limits an import applies to every file (DERMCURATE_MAX_IMAGE_PIXELS, DERMCURATE_MIN_IMAGE_SIDE, …),
    blank pictures (a lens cap, a flat frame) refused included."""
    return {
        "max_pixels": settings.DERMCURATE_MAX_IMAGE_PIXELS,
        "sanitized_max_side": settings.DERMCURATE_SANITIZED_MAX_SIDE,
        "thumbnail_max_side": settings.DERMCURATE_THUMBNAIL_MAX_SIDE,
        "min_side": settings.DERMCURATE_MIN_IMAGE_SIDE,
        "reject_blank": True,
    }


def image_upload_sanitize(*, data: bytes) -> "ProcessedImage":
    """Decode fully (a truncated or corrupt file is refused), refuse non-images, decompression bombs, blank pictures
    and pictures whose shorter side is under DERMCURATE_MIN_IMAGE_SIDE, convert to upright 8-bit sRGB within the
    served size and re-encode without any metadata (EXIF and GPS gone). Raises ``curation.imaging.ImageRejected``
    with the reason."""
    from curation.imaging import process_image_bytes

    return process_image_bytes(data, **image_processing_options(), without_derivatives=True)
