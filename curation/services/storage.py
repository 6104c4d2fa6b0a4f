"""Content-addressed files in Django's default storage (a disk today, S3 tomorrow).

Every file an image owns is named by the sha256 of the original bytes, so a
name says what it holds and writing the same image twice writes the same names.
"""

import logging
from collections.abc import Iterator

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

logger = logging.getLogger(__name__)

ORIGINALS = "originals"
SANITIZED = "images"
THUMBNAILS = "thumbnails"
CONTENT_FOLDERS = (ORIGINALS, SANITIZED, THUMBNAILS)


def _shard(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def original_name(sha256: str, extension: str) -> str:
    return f"{ORIGINALS}/{_shard(sha256)}.{extension}"


def sanitized_name(sha256: str) -> str:
    return f"{SANITIZED}/{_shard(sha256)}.jpg"


def thumbnail_name(sha256: str) -> str:
    return f"{THUMBNAILS}/{_shard(sha256)}.jpg"


def content_file_write(*, name: str, data: bytes) -> str:
    """Write `data` under exactly `name`, replacing a leftover of an interrupted write."""
    if default_storage.exists(name):
        # Only an interrupted import leaves a file without its row; its content
        # may be partial, so it is replaced rather than trusted.
        default_storage.delete(name)
    saved = default_storage.save(name, ContentFile(data))
    if saved != name:
        raise RuntimeError(f"storage wrote {saved!r} instead of {name!r}")
    return saved


def content_files_delete(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except OSError:
            logger.warning("could not delete %s", name, exc_info=True)


def content_file_names() -> Iterator[tuple[str, str]]:
    """(sha256, storage name) of every content-addressed file in storage."""
    for folder in CONTENT_FOLDERS:
        yield from _walk(folder)


def _walk(folder: str) -> Iterator[tuple[str, str]]:
    try:
        directories, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for file_name in files:
        yield file_name.split(".", 1)[0], f"{folder}/{file_name}"
    for directory in directories:
        yield from _walk(f"{folder}/{directory}")
