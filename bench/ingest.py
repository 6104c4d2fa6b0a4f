"""Import throughput: `import_images` on generated JPEGs against a decode + pHash floor.

Run from the repository root (PostgreSQL is required; the wrapper starts one):

    scripts/with-test-services.sh .venv/bin/python bench/ingest.py           # 2,002 images of 600x450
    scripts/with-test-services.sh .venv/bin/python bench/ingest.py --quick   # 220 images, a smoke run

--data DIR keeps the generated images for the next run; --profile adds one
more import under cProfile (the main process only; the pool is not profiled).

The images are `curation.demo_images.write_demo_dataset` drawings in the Kaggle
folder layout. Each round runs, on the same files and with the same number of
processes:

- floor: a spawn `ProcessPoolExecutor` mapping "open with Pillow, .load(),
  imagehash.phash" over the files (pool start included, as in the import);
- import: `curation.services.imports.import_images` into an empty database
  and media folder (files stored, rows written, duplicate groups refreshed);
- re-run: the same import again, where every file is already present.

Rounds alternate so that noise from other work on the machine hits all
three alike; the tables give the median and every round. The import's
phases are timed by wrapping the service's functions from outside (no
application code changes); "waiting on the pool" is the main process's time
in the result loop less its own file and row writes. CPU seconds come from
getrusage (main process, pool children) and /proc (the PostgreSQL backend);
their ratio (floor ÷ import) is the wall-clock ratio on free cores, and it
shifts less than the wall clock when other jobs share the machine.
A last table times each step of the worker's per-image work in one process.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import math
import os
import pstats
import resource
import shutil
import statistics
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from functools import wraps
from multiprocessing import get_context
from pathlib import Path

import imagehash
from _django import bench_django, machine_line, markdown_table, truncate
from PIL import Image

SIZE = (600, 450)
CLASS_COUNT = 11


# --- The floor: decode + pHash, nothing else ------------------------------------------------------


def decode_and_phash(path: str) -> int:
    with Image.open(path) as image:
        image.load()
        return int(str(imagehash.phash(image)), 16)


def cpu_seconds() -> tuple[float, float]:
    """(this process, waited-for children) user + system CPU seconds."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def backend_cpu_seconds() -> float | None:
    """CPU seconds of this connection's PostgreSQL backend, where /proc shows it (same host)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_floor(paths: list[str], workers: int) -> dict:
    own_before, children_before = cpu_seconds()
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as executor:
        hashes = list(executor.map(decode_and_phash, paths, chunksize=4))
    seconds = time.perf_counter() - started
    own_after, children_after = cpu_seconds()
    assert len(hashes) == len(paths)
    return {
        "seconds": seconds,
        "main_cpu": own_after - own_before,
        "pool_cpu": children_after - children_before,
    }


# --- The import, with its phases timed from outside ----------------------------------------------


class PhaseTimer:
    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.in_pool_loop = False

    def wrap(self, owner, name: str, phase: str | None = None):
        original = getattr(owner, name)

        @wraps(original)
        def timed(*args, **kwargs):
            label = phase or name
            if self.in_pool_loop and label in ("file writes", "DB writes"):
                label_in_loop = f"{label} (in loop)"
            else:
                label_in_loop = None
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                self.seconds[label] += elapsed
                if label_in_loop:
                    self.seconds[label_in_loop] += elapsed

        setattr(owner, name, timed)
        return original


@contextmanager
def instrumented():
    """Time the import's phases by wrapping the functions it calls; restore them after."""
    from curation import import_pool
    from curation.services import duplicates, imports

    timer = PhaseTimer()
    originals = [
        (imports, "import_plan", timer.wrap(imports, "import_plan", "scan (import_plan)")),
        (imports, "storage_sweep_orphans", timer.wrap(imports, "storage_sweep_orphans", "orphan sweep")),
        (imports._BatchWriter, "_store", timer.wrap(imports._BatchWriter, "_store", "file writes")),
        (imports._BatchWriter, "flush", timer.wrap(imports._BatchWriter, "flush", "DB writes")),
        (duplicates, "duplicates_refresh", timer.wrap(duplicates, "duplicates_refresh", "duplicate refresh")),
    ]
    make_executor = import_pool.make_executor

    @contextmanager
    def timed_executor(**kwargs):
        started = time.perf_counter()
        timer.in_pool_loop = True
        try:
            with make_executor(**kwargs) as executor:
                yield executor
        finally:
            timer.in_pool_loop = False
            timer.seconds["pool loop"] += time.perf_counter() - started

    import_pool.make_executor = timed_executor
    try:
        yield timer
    finally:
        import_pool.make_executor = make_executor
        for owner, name, original in originals:
            setattr(owner, name, original)


def run_import(root: Path, workers: int, *, source_name: str, profile: cProfile.Profile | None = None) -> dict:
    from curation.services.imports import import_images

    backend_before = backend_cpu_seconds()
    own_before, children_before = cpu_seconds()
    with instrumented() as timer:
        started = time.perf_counter()
        if profile is not None:
            profile.enable()
        summary = import_images(path=root, source_name=source_name, workers=workers)
        if profile is not None:
            profile.disable()
        seconds = time.perf_counter() - started
    own_after, children_after = cpu_seconds()
    backend_after = backend_cpu_seconds()
    return {
        "seconds": seconds,
        "summary": summary,
        "phases": dict(timer.seconds),
        "main_cpu": own_after - own_before,
        "pool_cpu": children_after - children_before,
        "db_cpu": None if backend_before is None or backend_after is None else backend_after - backend_before,
    }


def reset_import_state(media_root: Path) -> None:
    from curation.models import DuplicateGroup, ImageSource, ImportBatch, RejectedFile, Source
    from curation.models import Image as ImageRow

    truncate(ImageSource, RejectedFile, ImageRow, ImportBatch, Source, DuplicateGroup)
    for child in media_root.iterdir():
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


# --- The worker's per-image steps, one process ---------------------------------------------------


def worker_steps(paths: list[str]) -> list[tuple[str, float]]:
    """Milliseconds per image of each step of curation.imaging's pipeline (as of this commit), in one process.

    Mirrors imaging._process for a 600x450 RGB JPEG with no EXIF or ICC profile:
    nothing is resized for the served copy (600 <= 1024), so it is read, decoded,
    re-encoded, shrunk to a 256 px thumbnail, encoded, re-decoded and hashed.
    """
    import hashlib

    from curation.imaging import process_image_file

    steps: dict[str, float] = defaultdict(float)

    def timed(name, function, *args, **kwargs):
        started = time.perf_counter()
        result = function(*args, **kwargs)
        steps[name] += time.perf_counter() - started
        return result

    for path in paths:
        data = timed("read file", Path(path).read_bytes)
        timed("sha256", lambda d=data: hashlib.sha256(d).hexdigest())
        image = timed("decode (open + load)", lambda d=data: _loaded(d))
        served = io.BytesIO()
        timed("encode served JPEG q90", image.save, served, format="JPEG", quality=90)
        thumbnail = timed(
            "thumbnail resize (LANCZOS, reducing_gap=2)",
            image.resize,
            (256, 192),
            Image.Resampling.LANCZOS,
            reducing_gap=2.0,
        )
        timed("encode thumbnail JPEG q90", thumbnail.save, io.BytesIO(), format="JPEG", quality=90)
        served_bytes = served.getvalue()
        gray = timed("re-decode served JPEG + convert L", lambda s=served_bytes: _loaded(s).convert("L"))
        timed("pHash", imagehash.phash, gray)
        timed("dHash", imagehash.dhash, gray)
        # Not what the app does: a possible cheaper thumbnail (box-reduce by 2 first, then LANCZOS).
        timed(
            "(alternative, not in the app) thumbnail resize, reducing_gap=1.0",
            image.resize,
            (256, 192),
            Image.Resampling.LANCZOS,
            reducing_gap=1.0,
        )
    rows = [(name, seconds * 1000 / len(paths)) for name, seconds in steps.items()]

    started = time.perf_counter()
    for path in paths:
        process_image_file(path)
    rows.append(("process_image_file (the real thing)", (time.perf_counter() - started) * 1000 / len(paths)))
    started = time.perf_counter()
    for path in paths:
        decode_and_phash(path)
    rows.append(("floor: open + load + pHash", (time.perf_counter() - started) * 1000 / len(paths)))
    return rows


def _loaded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# --- Main ----------------------------------------------------------------------------------------


def generate(root: Path, images: int, workers: int) -> list[str]:
    from curation.demo_images import write_demo_dataset

    per_class = math.ceil(images / CLASS_COUNT)
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as executor:
        futures = [
            executor.submit(write_demo_dataset, root, per_class=per_class, size=SIZE, classes=[index])
            for index in range(CLASS_COUNT)
        ]
        paths = [str(path) for future in futures for path in future.result()]
    return sorted(paths)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=2000, help="at least this many images (rounded up to 11 classes)")
    parser.add_argument("--workers", type=int, default=2, help="processes for the floor and the import")
    parser.add_argument("--rounds", type=int, default=3, help="floor / import / re-run rounds")
    parser.add_argument("--quick", action="store_true", help="220 images, 2 rounds")
    parser.add_argument("--profile", action="store_true", help="cProfile the main process during one more import")
    parser.add_argument("--data", type=Path, help="keep the generated images here and reuse them on the next run")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.images, arguments.rounds = 220, 2

    with tempfile.TemporaryDirectory(prefix="dermcurate-bench-ingest-") as scratch:
        root = arguments.data or Path(scratch) / "dataset"
        with bench_django("dermcurate_bench_ingest") as media_root:
            began = time.perf_counter()
            paths = sorted(str(p) for p in root.rglob("*.jpg")) if root.is_dir() else []
            if len(paths) < arguments.images:
                paths = generate(root, arguments.images, arguments.workers)
            average_kib = sum(map(os.path.getsize, paths)) / len(paths) / 1024
            print(
                f"{len(paths)} JPEGs of {SIZE[0]}x{SIZE[1]}, {average_kib:.1f} KiB each on average, "
                f"ready in {time.perf_counter() - began:.1f} s; workers={arguments.workers}"
            )
            print(machine_line())
            print()
            rounds = []
            for number in range(arguments.rounds):
                reset_import_state(media_root)
                floor = run_floor(paths, arguments.workers)
                first = run_import(root, arguments.workers, source_name="bench")
                again = run_import(root, arguments.workers, source_name="bench")
                assert first["summary"].imported + first["summary"].duplicates_exact == len(paths), first["summary"]
                assert again["summary"].already_present == len(paths), again["summary"]
                rounds.append((floor, first, again))
                print(
                    f"round {number + 1}: floor {floor['seconds']:.2f} s, import {first['seconds']:.2f} s, "
                    f"re-run {again['seconds']:.2f} s (load {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
            print()
            report(paths, rounds, arguments.workers)

            if arguments.profile:
                reset_import_state(media_root)
                profile = cProfile.Profile()
                run_import(root, arguments.workers, source_name="bench", profile=profile)
                print("\n### cProfile of the main process during one import (top 25 by cumulative time)\n")
                print("```")
                stream = io.StringIO()
                pstats.Stats(profile, stream=stream).sort_stats("cumulative").print_stats(25)
                print(stream.getvalue().strip())
                print("```")


def report(paths: list[str], rounds: list[tuple[dict, dict, dict]], workers: int) -> None:
    count = len(paths)
    print(f"### Throughput ({count} images, {workers} processes, median of {len(rounds)} rounds)\n")
    median = statistics.median
    floor_rate = median(count / floor["seconds"] for floor, _, _ in rounds)
    import_rate = median(count / first["seconds"] for _, first, _ in rounds)
    again_rate = median(count / again["seconds"] for _, _, again in rounds)
    ratios = [(count / first["seconds"]) / (count / floor["seconds"]) for floor, first, _ in rounds]
    rows = [
        ["floor: decode + pHash", f"{median(f['seconds'] for f, _, _ in rounds):.2f}", f"{floor_rate:.0f}", "1.00", ""],
        [
            "import_images (new)",
            f"{median(i['seconds'] for _, i, _ in rounds):.2f}",
            f"{import_rate:.0f}",
            f"{median(ratios):.2f}",
            "goal ≥ 0.50; per round: " + ", ".join(f"{r:.2f}" for r in ratios),
        ],
        [
            "import_images (re-run, all present)",
            f"{median(a['seconds'] for _, _, a in rounds):.2f}",
            f"{again_rate:.0f}",
            f"{again_rate / floor_rate:.2f}",
            "",
        ],
    ]
    print(markdown_table(["run", "seconds", "images/s", "vs floor", "note"], rows))

    print("\n### CPU seconds per image (median over rounds)\n")

    def per_image(values):
        values = [v for v in values if v is not None]
        return f"{median(values) * 1000 / count:.2f} ms" if values else "n/a"

    rows = [
        ["floor", per_image(f["pool_cpu"] for f, _, _ in rounds), per_image(f["main_cpu"] for f, _, _ in rounds), "-"],
        [
            "import (new)",
            per_image(i["pool_cpu"] for _, i, _ in rounds),
            per_image(i["main_cpu"] for _, i, _ in rounds),
            per_image(i["db_cpu"] for _, i, _ in rounds),
        ],
        [
            "import (re-run)",
            per_image(a["pool_cpu"] for _, _, a in rounds),
            per_image(a["main_cpu"] for _, _, a in rounds),
            per_image(a["db_cpu"] for _, _, a in rounds),
        ],
    ]
    print(markdown_table(["run", "pool processes", "main process", "PostgreSQL backend"], rows))
    floor_cpu = median(f["pool_cpu"] + f["main_cpu"] for f, _, _ in rounds)
    import_cpu = median(i["pool_cpu"] + i["main_cpu"] + (i["db_cpu"] or 0.0) for _, i, _ in rounds)
    print(
        f"\nCPU ratio floor ÷ import = {floor_cpu / import_cpu:.2f}: the import is CPU-bound, so this is what the"
        " wall-clock ratio comes to when the cores are free, and it moves less with other load than the wall clock."
    )

    for title, index in (("new import", 1), ("re-run", 2)):
        print(f"\n### Phases of the {title} (seconds, median over rounds)\n")
        phase_rows = phases_table([run[index] for run in rounds])
        print(markdown_table(["phase", "seconds", "share"], phase_rows))

    print("\n### The worker's per-image work, one process, first 200 files (ms per image)\n")
    steps = worker_steps(paths[:200])
    print(markdown_table(["step", "ms / image"], [[name, f"{ms:.2f}"] for name, ms in steps]))


def phases_table(runs: list[dict]) -> list[list[str]]:
    """Median seconds per phase; "other" is what the wrappers do not cover (batch rows, the known-sha256 query)."""

    def per_run(run: dict) -> dict[str, float]:
        phases = run["phases"]
        loop = phases.get("pool loop", 0.0)
        in_loop_files = phases.get("file writes (in loop)", 0.0)
        in_loop_rows = phases.get("DB writes (in loop)", 0.0)
        final_flush = phases.get("DB writes", 0.0) - in_loop_rows
        named = {
            "scan (import_plan: rglob, sort, class folders)": phases.get("scan (import_plan)", 0.0),
            "orphan sweep (storage_sweep_orphans: lists every stored file)": phases.get("orphan sweep", 0.0),
            "pool loop (start, results, shutdown), of which:": loop,
            "  waiting on the pool (read, decode, sanitize, hash in workers)": loop - in_loop_files - in_loop_rows,
            "  file writes in the main process (_BatchWriter._store)": in_loop_files,
            "  DB writes, chunks of 200 (_BatchWriter.flush)": in_loop_rows,
            "last DB flush, after the loop": final_flush,
            "duplicate refresh (duplicates_refresh)": phases.get("duplicate refresh", 0.0),
        }
        top_level = [value for name, value in named.items() if not name.startswith("  ")]
        named["other (batch rows, known-sha256 query, signals)"] = run["seconds"] - sum(top_level)
        return named

    table = [per_run(run) for run in runs]
    total = statistics.median(run["seconds"] for run in runs)
    rows = []
    for name in table[0]:
        seconds = statistics.median(t[name] for t in table)
        rows.append([name, f"{seconds:.2f}", f"{seconds / total:.0%}"])
    rows.append(["total (wall)", f"{total:.2f}", "100%"])
    return rows


if __name__ == "__main__":
    main()
