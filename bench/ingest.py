"""Import throughput on real-size photos: `import_images` against a decode + pHash floor, 1 and 2 processes.

Run from the repository root (PostgreSQL is required; the wrapper starts one):

    scripts/with-test-services.sh .venv/bin/python bench/ingest.py            # 640×480 and 2400×1800 cases
    scripts/with-test-services.sh .venv/bin/python bench/ingest.py --quick    # fewer images, one round

Cases (`--case`, repeatable): `photo640` (640×480 JPEGs) and `photo2400` (2400×1800 JPEGs), photo-like
atlas pictures (curation.demo_images.atlas_photo, with noise at full size so the files weigh what camera
JPEGs weigh); a third of them progressive and a quarter with an EXIF orientation (6: turned), as phones
write them; `drawn600` is the 600×450 drawings of earlier runs.

Each round runs, on the same files and with the same number of processes (1, then 2):

- floor: a spawn `ProcessPoolExecutor` mapping "open with Pillow, .load(), imagehash.phash" over the
  files (pool start included, as in the import);
- import: `curation.services.imports.import_images` into an empty database and media folder (plan,
  chunks, files stored by the worker processes, rows written, near duplicates found).

The tables give the median over rounds; "vs floor" is import throughput ÷ floor throughput, measured in
the same round. CPU seconds come from getrusage (main process, pool children); their ratio is what the
wall-clock ratio comes to on free cores, and it moves less when other jobs share the machine.
"""

from __future__ import annotations

import argparse
import os
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
import numpy as np
from _django import bench_django, machine_line, markdown_table, truncate
from PIL import Image

CASES = {"photo640": ((640, 480), 600), "photo2400": ((2400, 1800), 120), "drawn600": ((600, 450), 880)}
EXIF_ORIENTATION = 0x0112


# --- The files -----------------------------------------------------------------------------------


def write_photo(arguments: tuple[Path, int, tuple[int, int]]) -> str:
    """One camera-like JPEG: an atlas photo scaled to `size` with sensor noise; some progressive, some turned."""
    from curation.demo_images import KAGGLE_FOLDERS, atlas_photo, draw_lesion

    folder, number, size = arguments
    if size == (600, 450):
        image = draw_lesion(number % 11, seed=number, size=size)
    else:
        base = atlas_photo(number, flat=number % 3 == 0).resize(size, Image.Resampling.BICUBIC)
        noise = np.random.default_rng(number).normal(0, 3, (size[1], size[0], 1))
        image = Image.fromarray(np.clip(np.asarray(base, dtype=np.float32) + noise, 0, 255).astype(np.uint8))
    options = {"quality": 90, "progressive": number % 3 == 1}
    if number % 4 == 2:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = 6
        options["exif"] = exif.tobytes()
    path = folder / KAGGLE_FOLDERS[number % 11] / f"IMG_{number:05d}.jpg"
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="JPEG", **options)
    return str(path)


def generate(root: Path, case: str, workers: int) -> list[str]:
    size, count = CASES[case]
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as executor:
        return sorted(executor.map(write_photo, [(root, n, size) for n in range(count)], chunksize=8))


# --- The floor: decode + pHash, nothing else ------------------------------------------------------


def decode_and_phash(path: str) -> int:
    with Image.open(path) as image:
        image.load()
        return int(str(imagehash.phash(image)), 16)


def cpu_seconds() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def run_floor(paths: list[str], workers: int) -> dict:
    own_before, children_before = cpu_seconds()
    started = time.perf_counter()
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as executor:
        hashes = list(executor.map(decode_and_phash, paths, chunksize=4))
    seconds = time.perf_counter() - started
    own_after, children_after = cpu_seconds()
    assert len(hashes) == len(paths)
    return {"seconds": seconds, "cpu": own_after - own_before + children_after - children_before}


# --- The import, with its main-process phases timed from outside ----------------------------------


@contextmanager
def instrumented():
    """Time the main process's phases by wrapping the functions it calls; restore them after."""
    from curation.services import duplicates, imports

    seconds: dict[str, float] = defaultdict(float)
    wrapped = [
        (imports, "import_plan_for", "plan (scan, sniff, classes)"),
        (imports._ChunkWriter, "flush", "row writes (main process)"),
        (duplicates, "duplicates_refresh", "near-duplicate search"),
    ]
    originals = []
    for owner, name, label in wrapped:
        original = getattr(owner, name)

        def timed(*args, _original=original, _label=label, **kwargs):
            started = time.perf_counter()
            try:
                return _original(*args, **kwargs)
            finally:
                seconds[_label] += time.perf_counter() - started

        setattr(owner, name, wraps(original)(timed))
        originals.append((owner, name, original))
    try:
        yield seconds
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)


def run_import(root: Path, workers: int) -> dict:
    from curation.services.imports import import_images

    own_before, children_before = cpu_seconds()
    with instrumented() as phases:
        started = time.perf_counter()
        summary = import_images(path=root, source_name="bench", workers=workers)
        seconds = time.perf_counter() - started
    own_after, children_after = cpu_seconds()
    return {
        "seconds": seconds,
        "summary": summary,
        "phases": dict(phases),
        "cpu": own_after - own_before + children_after - children_before,
        "main_cpu": own_after - own_before,
    }


def reset_import_state(media_root: Path) -> None:
    from curation.models import (
        DuplicateGroup,
        DuplicatePair,
        ImageSource,
        ImportBatch,
        ImportChunk,
        RejectedFile,
        Source,
    )
    from curation.models import Image as ImageRow

    truncate(DuplicatePair, ImageSource, RejectedFile, ImportChunk, ImageRow, ImportBatch, Source, DuplicateGroup)
    for child in media_root.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


# --- Main ----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="default: photo640 and photo2400")
    parser.add_argument("--workers", type=int, action="append", help="process counts (default: 1 and 2)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--quick", action="store_true", help="a quarter of the images, one round")
    arguments = parser.parse_args()
    cases = arguments.case or ["photo640", "photo2400"]
    worker_counts = arguments.workers or [1, 2]
    if arguments.quick:
        arguments.rounds = 1
        for case in cases:
            size, count = CASES[case]
            CASES[case] = (size, max(20, count // 4))

    results: list[list[str]] = []
    phase_rows: list[list[str]] = []
    with (
        tempfile.TemporaryDirectory(prefix="dermcurate-bench-ingest-") as scratch,
        bench_django("dermcurate_bench_ingest") as media_root,
    ):
        print(machine_line())
        print()
        for case in cases:
            root = Path(scratch) / case
            began = time.perf_counter()
            paths = generate(root, case, max(worker_counts))
            megabytes = sum(map(os.path.getsize, paths)) / len(paths) / 1e6
            size = CASES[case][0]
            print(
                f"{case}: {len(paths)} JPEGs of {size[0]}×{size[1]} ({megabytes:.2f} MB each on average; a third "
                f"progressive, a quarter EXIF-turned), made in {time.perf_counter() - began:.0f} s",
                flush=True,
            )
            for workers in worker_counts:
                rounds = []
                for _ in range(arguments.rounds):
                    reset_import_state(media_root)
                    floor = run_floor(paths, workers)
                    imported = run_import(root, workers)
                    assert imported["summary"].imported == len(paths), imported["summary"]
                    rounds.append((floor, imported))
                    print(
                        f"  {workers} process(es): floor {floor['seconds']:.2f} s, import {imported['seconds']:.2f} s "
                        f"(load {os.getloadavg()[0]:.1f})",
                        flush=True,
                    )
                median = statistics.median
                ratios = [(f["seconds"] / i["seconds"]) for f, i in rounds]
                cpu_ratios = [(f["cpu"] / i["cpu"]) for f, i in rounds]
                results.append(
                    [
                        case,
                        str(workers),
                        f"{len(paths) / median(f['seconds'] for f, _ in rounds):.0f}",
                        f"{len(paths) / median(i['seconds'] for _, i in rounds):.0f}",
                        f"{median(ratios):.2f}",
                        f"{median(cpu_ratios):.2f}",
                        ", ".join(f"{r:.2f}" for r in ratios),
                    ]
                )
                last = rounds[-1][1]
                main_cpu = median(i["main_cpu"] for _, i in rounds) / len(paths) * 1000
                for phase, seconds in sorted(last["phases"].items()):
                    phase_rows.append([case, str(workers), phase, f"{seconds:.2f}", f"{seconds / last['seconds']:.0%}"])
                phase_rows.append([case, str(workers), "main-process CPU per image", f"{main_cpu:.2f} ms", ""])
            shutil.rmtree(root)
    print()
    print("### Throughput (images/s, median over rounds; goal: import ≥ 0.6 × floor)\n")
    print(
        markdown_table(
            ["case", "processes", "floor: decode + pHash", "import_images", "vs floor", "CPU ratio", "per round"],
            results,
        )
    )
    print("\n### Where the main process spends the import's wall time (last round)\n")
    print(markdown_table(["case", "processes", "phase", "seconds", "share of wall"], phase_rows))


if __name__ == "__main__":
    main()
