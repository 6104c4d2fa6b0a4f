"""Files in Django's default storage: a local disk (MEDIA_ROOT) or an S3-compatible bucket.

Every file an image owns is named by the sha256 of the original bytes, so a
name says what it holds and writing the same image twice writes the same names.

Reading goes through the helpers below, never through `default_storage.path()`
alone (a bucket has no local path). On S3 they call the bucket through boto3's
client where django-storages' generic API would cost more round trips: one GET
per file read (its S3File sends a HEAD first and buffers the whole object before
the first byte), a flat listing per content folder (`listdir` asks once per
shard folder, up to 65,536 requests per folder), and concurrent downloads.
"""

import errno
import logging
import os
import posixpath
import shutil
import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, TypeVar

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

logger = logging.getLogger(__name__)

ORIGINALS = "originals"
SANITIZED = "images"
THUMBNAILS = "thumbnails"
FULL_RESOLUTION = "full"  # metadata-free copies at the original resolution, made on first request
CONTENT_FOLDERS = (ORIGINALS, SANITIZED, THUMBNAILS, FULL_RESOLUTION)
# Requests in flight at once when many files are read from a bucket: botocore's default connection
# pool (10); more threads would only wait for a connection or open throwaway ones.
S3_CONCURRENCY = 10

Key = TypeVar("Key")


def _shard(sha256: str) -> str:
    return f"{sha256[:2]}/{sha256[2:4]}/{sha256}"


def original_name(sha256: str, extension: str) -> str:
    return f"{ORIGINALS}/{_shard(sha256)}.{extension}"


def sanitized_name(sha256: str) -> str:
    return f"{SANITIZED}/{_shard(sha256)}.jpg"


def thumbnail_name(sha256: str) -> str:
    return f"{THUMBNAILS}/{_shard(sha256)}.jpg"


def full_resolution_name(sha256: str) -> str:
    return f"{FULL_RESOLUTION}/{_shard(sha256)}.jpg"


# --- Writing ---------------------------------------------------------------------------------------


def content_file_write(*, name: str, data: bytes) -> str:
    """Write `data` under exactly `name`, replacing a leftover of an interrupted write."""
    local = _local_path(name)
    if local is not None:
        # A local disk: through a temporary name and a rename, so a half-written file never sits under
        # the real name; about a third of FileSystemStorage.save's cost (bench/RESULTS.md, "Import").
        _write_atomically(local, lambda sink: sink.write(data))
        if default_storage.file_permissions_mode is not None:
            os.chmod(local, default_storage.file_permissions_mode)
        return name
    if default_storage.get_available_name(name) != name:
        # The storage would not write this name as it is (a disk never replaces a file; a bucket
        # does, so this costs it no request). Only an interrupted import leaves a file without its
        # row, and its content may be partial, so it is replaced rather than trusted.
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


# --- Listing ---------------------------------------------------------------------------------------


def content_file_names() -> Iterator[tuple[str, str]]:
    """(sha256, storage name) of every content-addressed file in storage."""
    bucket = _S3Bucket.of_default_storage()
    for folder in CONTENT_FOLDERS:
        names = bucket.names_under(folder) if bucket else _walk(folder)
        for name in names:
            yield posixpath.basename(name).split(".", 1)[0], name


def _walk(folder: str) -> Iterator[str]:
    try:
        directories, files = default_storage.listdir(folder)
    except FileNotFoundError:
        return
    for file_name in files:
        yield f"{folder}/{file_name}"
    for directory in directories:
        yield from _walk(f"{folder}/{directory}")


# --- Reading ---------------------------------------------------------------------------------------


def stored_file_open(name: str) -> tuple[BinaryIO, int]:
    """A stored file opened for streaming, and its size in bytes; FileNotFoundError when it is missing.

    On S3 this is the body of one GET, read as it arrives (never buffered whole)."""
    bucket = _S3Bucket.of_default_storage()
    if bucket:
        return bucket.open(name)
    handle = default_storage.open(name, "rb")
    return handle, handle.size


def stored_file_local(*, name: str, download_to: Path) -> Path:
    """A local path of a stored file: where it lies on a local disk, otherwise downloaded to
    `download_to` (from S3 in parallel ranges). FileNotFoundError when it is missing."""
    local = _local_path(name)
    if local is not None:
        if not local.is_file():
            raise _missing(name)
        return local
    bucket = _S3Bucket.of_default_storage()
    if bucket:
        bucket.download(name, download_to)
    else:
        with default_storage.open(name, "rb") as source, download_to.open("wb") as sink:
            shutil.copyfileobj(source, sink, 1 << 20)
    return download_to


def stored_files_local(names: list[str], *, cache: Path) -> list[str]:
    """Local paths of stored files, in the order given: on a local disk where they lie; otherwise
    each downloaded once into `cache` (names are content-addressed, so a cached file is never stale),
    S3_CONCURRENCY at a time. FileNotFoundError (its `filename` is the storage name) for a missing file."""
    if not names:
        return []
    if _local_path(names[0]) is not None:
        paths = []
        for name in names:
            local = _local_path(name)
            if not local.is_file():
                raise _missing(name)
            paths.append(str(local))
        return paths
    targets = [cache / name for name in names]
    missing = list({name: target for name, target in zip(names, targets, strict=True) if not target.exists()}.items())
    bucket = _S3Bucket.of_default_storage()
    if bucket:
        with ThreadPoolExecutor(max_workers=S3_CONCURRENCY) as pool:
            # The first failure (in order) is raised; the pool's exit waits for the downloads in flight.
            list(pool.map(lambda pair: bucket.download_small(*pair), missing))
    else:
        for name, target in missing:
            _write_atomically(target, lambda sink, name=name: _copy_from_storage(name, sink))
    return [str(target) for target in targets]


def stored_files_read(items: Iterable[tuple[Key, str]]) -> Iterator[tuple[Key, bytes]]:
    """(key, content) for each (key, storage name), in order and lazily; from S3 with up to
    S3_CONCURRENCY files read ahead, so a slow round trip does not stall the consumer."""
    bucket = _S3Bucket.of_default_storage()
    if bucket is None:
        for key, name in items:
            with default_storage.open(name, "rb") as handle:
                yield key, handle.read()
        return
    with ThreadPoolExecutor(max_workers=S3_CONCURRENCY) as pool:
        pending = deque()
        try:
            for key, name in items:
                pending.append((key, pool.submit(bucket.read, name)))
                if len(pending) >= S3_CONCURRENCY:
                    key, future = pending.popleft()
                    yield key, future.result()
            while pending:
                key, future = pending.popleft()
                yield key, future.result()
        finally:
            # The consumer stopped early (a client went away): what is not started yet never starts.
            for _, future in pending:
                future.cancel()


def _local_path(name: str) -> Path | None:
    try:
        return Path(default_storage.path(name))
    except NotImplementedError:
        return None


def _missing(name: str) -> FileNotFoundError:
    return FileNotFoundError(errno.ENOENT, "missing from storage", name)


def _copy_from_storage(name: str, sink: BinaryIO) -> None:
    try:
        source = default_storage.open(name, "rb")
    except FileNotFoundError as error:
        raise _missing(name) from error
    with source:
        shutil.copyfileobj(source, sink, 1 << 20)


def _write_atomically(target: Path, write) -> None:
    """Write through a temporary name, so that a half-written file never sits under the real one."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        with partial.open("wb") as sink:
            write(sink)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


class _S3Bucket:
    """The default storage's bucket, through the boto3 client django-storages made for it."""

    def __init__(self, backend):
        self.name = backend.bucket_name
        self.location = backend.location
        self.transfer_config = backend.transfer_config
        # boto3 clients are thread-safe; the storage's resource (per thread) is not shared.
        self.client = backend.connection.meta.client

    @classmethod
    def of_default_storage(cls) -> "_S3Bucket | None":
        backend_class = default_storage.__class__  # sets the storage up, importing its module
        # Only a deployment on S3 has imported django-storages' S3 module: one on a disk never loads boto3.
        s3 = sys.modules.get("storages.backends.s3")
        return cls(default_storage) if s3 and issubclass(backend_class, s3.S3Storage) else None

    def key(self, name: str) -> str:
        return posixpath.join(self.location, name) if self.location else name

    def names_under(self, folder: str) -> Iterator[str]:
        """Every name below `folder`, from a flat listing (1,000 keys per request)."""
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=self.key(folder) + "/")
        for page in pages:
            for entry in page.get("Contents", ()):
                yield posixpath.relpath(entry["Key"], self.location) if self.location else entry["Key"]

    def open(self, name: str) -> tuple[BinaryIO, int]:
        try:
            response = self.client.get_object(Bucket=self.name, Key=self.key(name))
        except self.client.exceptions.NoSuchKey as error:
            raise _missing(name) from error
        return response["Body"], response["ContentLength"]

    def read(self, name: str) -> bytes:
        body, _ = self.open(name)
        with body:
            return body.read()

    def download_small(self, name: str, target: Path) -> None:
        """One GET, streamed to `target` (a managed transfer would ask for the size first)."""

        def write(sink: BinaryIO) -> None:
            body, _ = self.open(name)
            with body:
                shutil.copyfileobj(body, sink, 1 << 20)

        _write_atomically(target, write)

    def download(self, name: str, target: Path) -> None:
        """A large file (an uploaded zip): boto3's managed transfer, in parallel ranges."""
        from botocore.exceptions import ClientError

        try:
            self.client.download_file(self.name, self.key(name), str(target), Config=self.transfer_config)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey"):
                raise _missing(name) from error
            raise
