"""The part of an import that runs in worker processes: read, decode, hash.

No Django here: worker processes start fast and never touch the database.
"""

import os
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from multiprocessing import current_process, get_context

from curation.imaging import AlreadyPresent, ImageRejected, ProcessedImage, process_image_file

_known_sha256: frozenset[str] = frozenset()
_options: dict = {}


def _initialize(known_sha256: frozenset[str], options: dict) -> None:
    global _known_sha256, _options
    _known_sha256 = known_sha256
    _options = options


def process_path(path: str) -> ProcessedImage | AlreadyPresent | ImageRejected:
    """Process one file; a rejection is returned, not raised, so the pool goes on."""
    try:
        return process_image_file(path, known_sha256=_known_sha256, **_options)
    except ImageRejected as rejection:
        return rejection
    except Exception as error:  # one bad file must not stop an import
        return ImageRejected(f"unreadable: {type(error).__name__}: {error}")


def worker_count(requested: int = 0) -> int:
    return requested if requested > 0 else max(1, os.cpu_count() or 1)


def make_executor(*, workers: int, known_sha256: frozenset[str], options: dict) -> Executor:
    """A process pool; threads inside daemonic processes (which may not have children)."""
    if current_process().daemon:
        _initialize(known_sha256, options)
        return ThreadPoolExecutor(max_workers=workers)
    # "spawn": children never inherit the parent's database connections.
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=get_context("spawn"),
        initializer=_initialize,
        initargs=(known_sha256, options),
    )
