"""The part of an import that runs in worker processes: read, decode, hash, and store the files.

Workers load no Django app and never touch the database: a spawned worker configures Django's
settings with the storage settings of its parent only (enough for `default_storage`, on disk or
S3), so it starts fast. Each returns a small result (hashes, sizes, the fingerprint), never the
image bytes, so the main process only writes rows and never waits on file writes
(bench/RESULTS.md, "Import").
"""

import os
import zipfile
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing import current_process, get_context
from pathlib import Path

from curation.imaging import AlreadyPresent, ImageRejected, ProcessedImage, process_image_file

_known_sha256: frozenset[str] = frozenset()
_options: dict = {}
_root: Path | None = None
_zip_path: str | None = None
_zip: zipfile.ZipFile | None = None


@dataclass(frozen=True)
class StoredImage:
    """A new image whose three files a worker wrote to storage; what its row needs."""

    sha256: str
    original_name: str
    sanitized_name: str
    thumbnail_name: str
    original_format: str
    file_size: int
    width: int
    height: int
    sanitized_width: int
    sanitized_height: int
    phash: int
    dhash: int
    fingerprint: bytes


def storage_settings() -> dict:
    """The settings a worker process needs to write through `default_storage` (disk or S3)."""
    from django.conf import settings

    names = [
        name
        for name in dir(settings)
        if name.isupper() and (name.startswith(("AWS_", "MEDIA_", "FILE_UPLOAD_")) or name == "STORAGES")
    ]
    return {name: getattr(settings, name) for name in names}


def _initialize(
    known_sha256: frozenset[str], options: dict, root: str | None, zip_path: str | None, storage: dict | None
) -> None:
    global _known_sha256, _options, _root, _zip_path, _zip
    _known_sha256, _options = known_sha256, options
    _root = Path(root) if root else None
    _zip_path, _zip = zip_path, None
    if storage is not None:
        from django.conf import settings

        if not settings.configured:
            settings.configure(**storage)


def _read(relative_path: str) -> bytes:
    global _zip
    if _zip_path is not None:
        if _zip is None:
            _zip = zipfile.ZipFile(_zip_path)
        # zipfile reads no more than a member's declared size and checks its CRC, so a member cannot
        # unpack to more than the central directory said (zip_check counted those sizes).
        return _zip.read(relative_path)
    return (_root / relative_path).read_bytes()


def process_entry(relative_path: str) -> StoredImage | AlreadyPresent | ImageRejected:
    """Process one file and store its three files; a rejection is returned, not raised, so the pool goes on."""
    try:
        try:
            data = _read(relative_path)
        except (OSError, zipfile.BadZipFile, KeyError) as error:
            return ImageRejected(f"unreadable: {error}")
        result = process_image_file_bytes(data)
        if not isinstance(result, ProcessedImage):
            return result
    except ImageRejected as rejection:
        return rejection
    except Exception as error:  # one bad file must not stop an import
        return ImageRejected(f"unreadable: {type(error).__name__}: {error}")
    # Outside the handler above: a failed write (a full disk) is not a bad file; it stops the import.
    return _store(result)


def process_image_file_bytes(data: bytes) -> ProcessedImage | AlreadyPresent:
    import hashlib

    sha256 = hashlib.sha256(data).hexdigest()
    if sha256 in _known_sha256:
        return AlreadyPresent(sha256=sha256)
    from curation.imaging import process_image_bytes

    return process_image_bytes(data, **_options)


def _store(result: ProcessedImage) -> StoredImage:
    from curation.services import storage

    names = {
        "original": storage.original_name(result.sha256, result.original_extension),
        "sanitized": storage.sanitized_name(result.sha256),
        "thumbnail": storage.thumbnail_name(result.sha256),
    }
    written = []
    try:
        for key, data in (
            ("original", result.original_bytes),
            ("sanitized", result.sanitized_jpeg),
            ("thumbnail", result.thumbnail_jpeg),
        ):
            written.append(storage.content_file_write(name=names[key], data=data))
    except BaseException:
        # No row will name these: an image's files are stored all three or not at all.
        storage.content_files_delete(written)
        raise
    return StoredImage(
        sha256=result.sha256,
        original_name=names["original"],
        sanitized_name=names["sanitized"],
        thumbnail_name=names["thumbnail"],
        original_format=result.original_format,
        file_size=len(result.original_bytes),
        width=result.width,
        height=result.height,
        sanitized_width=result.sanitized_width,
        sanitized_height=result.sanitized_height,
        phash=result.phash,
        dhash=result.dhash,
        fingerprint=result.fingerprint,
    )


def worker_count(requested: int = 0) -> int:
    return requested if requested > 0 else max(1, os.cpu_count() or 1)


def make_executor(
    *,
    workers: int,
    known_sha256: frozenset[str],
    options: dict,
    root: str | None = None,
    zip_path: str | None = None,
) -> Executor:
    """A process pool; threads inside daemonic processes (a Celery worker's, which may not have children)."""
    if current_process().daemon:
        _initialize(known_sha256, options, root, zip_path, None)
        return ThreadPoolExecutor(max_workers=workers)
    # "spawn": children never inherit the parent's database connections.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_initialize,
        initargs=(known_sha256, options, root, zip_path, storage_settings()),
    )


__all__ = ["StoredImage", "make_executor", "process_entry", "process_image_file", "worker_count"]
