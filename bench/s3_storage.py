"""Reading and listing files on DERMCURATE_STORAGE_BACKEND=s3: requests and seconds, against
django-storages' generic API (the code before), on moto's S3 server.

Run from the repository root (no database needed):

    .venv/bin/python bench/s3_storage.py            # 400 images, round trips of 0 and 10 ms
    .venv/bin/python bench/s3_storage.py --quick    # 100 images

Data: JPEGs of 512×384 px (the size of a small served copy) written under their content-addressed
names into a bucket of a `moto_server` process on 127.0.0.1. The 10 ms rows go through a
proxy on 127.0.0.1 (defined below) that holds every piece the client sends for that long, as a
bucket across a network would: moto itself answers in well under a millisecond, so without it
the figures measure CPU only.

Compared, in the same run, on the same files:

- snapshot images to local files (what a training worker does): before, `exists()`, then
  `path()` (not supported), then `open()` + `read()` per file, one at a time (the former
  `ml.services.runs._local_path`); now `stored_files_local` (one GET per file, S3_CONCURRENCY
  at a time);
- serving a file: `default_storage.open(name).read()` against `stored_file_open`;
- listing for the orphan sweep: before, `listdir` down the shard folders of `images/`; now
  `content_file_names()`, one flat listing per content folder (all three; two are empty here).

Requests are counted with botocore's `before-call` event on the storage's client.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from bench._django import markdown_table  # noqa: E402

BUCKET = "dermcurate-bench"


def machine_line() -> str:
    import platform

    import boto3
    import moto

    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs, load average {load}; Python {platform.python_version()}, "
        f"boto3 {boto3.__version__}, moto {moto.__version__}"
    )


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


class DelayProxy:
    """A TCP proxy on 127.0.0.1 that holds each piece the client sends for `delay` seconds."""

    def __init__(self, target_port: int, delay: float):
        self.target_port, self.delay = target_port, delay
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(self._serve(), self.loop).result()

    async def _serve(self):
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def _handle(self, client_reader, client_writer):
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(reader, writer, delay):
            try:
                while data := await reader.read(1 << 16):
                    if delay:
                        await asyncio.sleep(delay)
                    writer.write(data)
                    await writer.drain()
            finally:
                writer.close()

        await asyncio.gather(
            pipe(client_reader, server_writer, self.delay),
            pipe(server_reader, client_writer, 0),
            return_exceptions=True,
        )

    def close(self):
        self.loop.call_soon_threadsafe(self.server.close)


def configure(endpoint: str) -> None:
    """Point the default storage at `endpoint` (Django's setting_changed resets its cache)."""
    from django.conf import settings
    from django.core.signals import setting_changed

    options = {**settings.STORAGES["default"]["OPTIONS"], "endpoint_url": endpoint}
    settings.STORAGES = {**settings.STORAGES, "default": {**settings.STORAGES["default"], "OPTIONS": options}}
    setting_changed.send(sender=None, setting="STORAGES", value=settings.STORAGES, enter=True)


def counted(run):
    """Run `run()` and return (seconds, requests by operation) on the default storage's client."""
    from django.core.files.storage import default_storage

    calls: Counter[str] = Counter()
    lock = threading.Lock()

    def count(model, **_):
        with lock:
            calls[model.name] += 1

    events = default_storage.connection.meta.client.meta.events
    events.register("before-call.s3", count)
    try:
        started = time.perf_counter()
        run()
        return time.perf_counter() - started, calls
    finally:
        events.unregister("before-call.s3", count)


def local_paths_before(names: list[str], cache: Path) -> list[str]:
    """The former ml.services.runs._local_path, file by file."""
    from django.core.files.storage import default_storage

    paths = []
    for name in names:
        if not default_storage.exists(name):
            raise FileNotFoundError(name)
        try:
            paths.append(default_storage.path(name))
        except NotImplementedError:
            target = cache / name
            if not target.exists():
                target.parent.mkdir(parents=True, exist_ok=True)
                with default_storage.open(name, "rb") as source:
                    target.write_bytes(source.read())
            paths.append(str(target))
    return paths


def listdir_walk(folder: str) -> list[str]:
    from django.core.files.storage import default_storage

    directories, files = default_storage.listdir(folder)
    names = [f"{folder}/{name}" for name in files]
    for directory in directories:
        names += listdir_walk(f"{folder}/{directory}")
    return names


def per_file(calls: Counter, files: int) -> str:
    return ", ".join(f"{name} {count / files:g}" for name, count in sorted(calls.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="100 images")
    parser.add_argument("--images", type=int, help="images (default 400)")
    args = parser.parse_args()
    count = args.images or (100 if args.quick else 400)

    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="dermcurate-bench-s3-"))
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    proxy = None
    try:
        wait_for_port(port)
        os.environ.update(
            DJANGO_SETTINGS_MODULE="config.settings.test",
            DERMCURATE_STORAGE_BACKEND="s3",
            AWS_STORAGE_BUCKET_NAME=BUCKET,
            AWS_S3_ENDPOINT_URL=f"http://127.0.0.1:{port}",
            AWS_S3_REGION_NAME="us-east-1",
            AWS_ACCESS_KEY_ID="bench",
            AWS_SECRET_ACCESS_KEY="bench-secret",  # noqa: S106 (moto takes any key)
            AWS_S3_ADDRESSING_STYLE="path",
            MEDIA_ROOT=str(work / "media"),
            DERMCURATE_VAR_DIR=str(work / "var"),  # nothing is written into the checkout
        )
        import django

        django.setup()
        from django.core.files.storage import default_storage

        from curation.demo_images import draw_lesion
        from curation.services import storage

        default_storage.connection.meta.client.create_bucket(Bucket=BUCKET)
        names = []
        for n in range(count):
            buffer = io.BytesIO()
            picture = draw_lesion(n % 11, seed=n, size=(512, 384))
            picture.putpixel((n % 512, n // 512 % 384), (n % 256, 0, 0))
            picture.save(buffer, "JPEG", quality=85)
            name = storage.sanitized_name(hashlib.sha256(buffer.getvalue()).hexdigest())
            storage.content_file_write(name=name, data=buffer.getvalue())
            names.append(name)
        size = default_storage.size(names[0])
        print(f"Machine: {machine_line()}\n\n{count} images of about {size / 1024:.0f} KiB in the bucket\n", flush=True)

        rows = []
        for delay_ms in (0, 10):
            if delay_ms:
                proxy = DelayProxy(port, delay_ms / 1000)
                configure(f"http://127.0.0.1:{proxy.port}")
            cases = {
                "snapshot images to local files": (
                    lambda: local_paths_before(names, work / "before"),
                    lambda: storage.stored_files_local(names, cache=work / "now"),
                ),
                "serve a file (read all of it)": (
                    lambda: [default_storage.open(name, "rb").read() for name in names],
                    lambda: [storage.stored_file_open(name)[0].read() for name in names],
                ),
                "list the content folder": (
                    lambda: listdir_walk(storage.SANITIZED),
                    lambda: list(storage.content_file_names()),
                ),
            }
            for case, (before, now) in cases.items():
                shutil.rmtree(work / "before", ignore_errors=True)
                shutil.rmtree(work / "now", ignore_errors=True)
                before_seconds, before_calls = counted(before)
                now_seconds, now_calls = counted(now)
                rows.append(
                    [
                        f"+{delay_ms} ms" if delay_ms else "direct",
                        case,
                        f"{before_seconds:.2f}",
                        f"{now_seconds:.2f}",
                        f"{before_seconds / now_seconds:.1f}×",
                        f"{sum(before_calls.values()):,} ({per_file(before_calls, count)})",
                        f"{sum(now_calls.values()):,} ({per_file(now_calls, count)})",
                    ]
                )
                print(rows[-1], flush=True)
            if proxy:
                proxy.close()
                proxy = None
                configure(f"http://127.0.0.1:{port}")
        print(f"\n### {count} files on moto's S3 server (requests per file in brackets)\n")
        print(
            markdown_table(
                ["latency added", "what", "before s", "now s", "speed-up", "requests before", "requests now"], rows
            )
        )
    finally:
        if proxy:
            proxy.close()
        server.terminate()
        server.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
