"""The full-resolution copy of an image: the original's pixels, upright and in sRGB, with no metadata.

Made on first request (the served image is capped at DERMCURATE_SANITIZED_MAX_SIDE
for speed) and kept beside the other content-addressed files (curation.services.storage). The original file
itself is never served: it may carry EXIF and GPS metadata.
"""

from django.conf import settings
from django.core.files.storage import default_storage

from curation.models import Image
from curation.services.storage import content_file_write, full_resolution_name, stored_file_open


def image_full_resolution(*, image: Image) -> str:
    """The storage name of the image's largest served copy, made now if it does not exist yet."""
    if image.sanitized_width >= image.width and image.sanitized_height >= image.height:
        return image.sanitized.name  # the served copy already has every pixel
    name = full_resolution_name(image.sha256)
    if default_storage.exists(name):
        return name
    from curation.imaging import process_image_bytes  # imagehash and numpy: not loaded by every web process

    handle, _size = stored_file_open(image.original.name)
    with handle:
        data = handle.read()
    processed = process_image_bytes(
        data,
        max_pixels=settings.DERMCURATE_MAX_IMAGE_PIXELS,
        sanitized_max_side=max(image.width, image.height),
        thumbnail_max_side=8,
    )
    if not default_storage.exists(name):  # another request may have made it meanwhile
        content_file_write(name=name, data=processed.sanitized_jpeg)
    return name
