"""Freezing a snapshot: `snapshot_create` on 30,000 labeled images with 2,000 duplicate groups.

Run from the repository root (PostgreSQL is required; the wrapper starts one):

    scripts/with-test-services.sh .venv/bin/python bench/snapshot.py           # 30,000 images, 2,000 groups
    scripts/with-test-services.sh .venv/bin/python bench/snapshot.py --quick   # 5,000 images, 300 groups

Images are bulk-created with the ORM (rows without files): labeled with a
skewed class mix (melanocytic nevi about a third), plus 5 % excluded and 5 %
pending images that must stay out. Duplicate groups of 2-5 labeled images;
one group in ten has a member with a different label.

Each case is timed around `snapshot_create(name=..., seed=...)` alone:

- first snapshot of a lineage: the snapshot tables are emptied (TRUNCATE,
  which the frozen-data trigger allows; the same as a new database) before
  each run, so every image is new and gets a split;
- stable follow-up, alternating with the first case: the same images, splits
  read back from the snapshot before;
- a longer lineage: follow-ups on top of 2, 3, 4 … earlier snapshots;
- a follow-up after 10 % new images, some of them joining existing groups.

Every snapshot is checked: leakage in its stats and, independently, by SQL
(`snapshot_leakage_now`), images that changed split from the lineage's first
snapshot, and the split ratios overall and per class. Every run's steps are
timed by wrapping the service's functions from outside. At the end, the
service's read of earlier splits is timed against two rewrites on the whole
lineage, and one more first-of-lineage run is profiled (cProfile and SQL
statements; not part of the medians).
"""

from __future__ import annotations

import argparse
import cProfile
import hashlib
import pstats
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from functools import wraps

from _django import bench_django, machine_line, markdown_table, truncate

GOAL_SECONDS = 5.0
# Realistic skew by class index (0 normal skin … 10 viral infections): nevi dominate.
CLASS_WEIGHTS = (3, 6, 10, 4, 10, 34, 9, 6, 6, 5, 7)
GROUP_SIZES = (2, 3, 4, 5)
MIXED_LABEL_GROUPS = 0.10
EXCLUDED_SHARE = 0.05
PENDING_SHARE = 0.05
RATIOS = (0.8, 0.1, 0.1)


# --- Data (export.py seeds with this too) ---------------------------------------------------------


def seed_images(*, labeled: int, groups: int, rng: random.Random, tag: str, join_existing: int = 0) -> dict:
    """Bulk-create `labeled` labeled images (`groups` new duplicate groups among them, and
    `join_existing` of them added to groups that exist already) plus excluded and pending ones."""
    from django.utils import timezone

    from curation.models import DuplicateGroup, ExclusionReason, Image, LabelClass
    from curation.services import storage

    classes = list(LabelClass.objects.order_by("index"))
    assert len(classes) == len(CLASS_WEIGHTS), len(classes)
    reasons = [reason for reason in ExclusionReason.values if reason != "other"]
    now = timezone.now()
    existing_group_ids = list(DuplicateGroup.objects.values_list("pk", flat=True))
    new_groups = DuplicateGroup.objects.bulk_create([DuplicateGroup() for _ in range(groups)])

    labels = rng.choices(classes, weights=CLASS_WEIGHTS, k=labeled)
    group_of: list[int | None] = [None] * labeled
    positions = list(range(labeled))
    rng.shuffle(positions)
    cursor = 0
    for group in new_groups:
        size = rng.choice(GROUP_SIZES)
        members = positions[cursor : cursor + size]
        cursor += size
        # Near-duplicates usually carry one label; some were labeled differently by their readers.
        for member in members:
            group_of[member] = group.pk
            labels[member] = labels[members[0]]
        if rng.random() < MIXED_LABEL_GROUPS:
            labels[members[-1]] = rng.choice(classes)
    assert cursor <= labeled, "too many groups for the images"
    if existing_group_ids:
        for member in positions[cursor : cursor + join_existing]:
            group_of[member] = rng.choice(existing_group_ids)

    statuses = ["labeled"] * labeled
    statuses += ["excluded"] * round(labeled * EXCLUDED_SHARE) + ["pending"] * round(labeled * PENDING_SHARE)
    offset = Image.objects.count()
    images = []
    for number, status in enumerate(statuses):
        sha256 = hashlib.sha256(f"bench-{tag}-{offset + number}".encode()).hexdigest()
        label = labels[number] if status == "labeled" else None
        images.append(
            Image(
                sha256=sha256,
                original=storage.original_name(sha256, "jpg"),
                sanitized=storage.sanitized_name(sha256),
                thumbnail=storage.thumbnail_name(sha256),
                original_format="JPEG",
                file_size=rng.randint(40_000, 400_000),
                width=rng.choice((600, 1024, 3000)),
                height=rng.choice((450, 768, 2000)),
                sanitized_width=600,
                sanitized_height=450,
                phash=rng.getrandbits(64) - (1 << 63),
                dhash=rng.getrandbits(64) - (1 << 63),
                status=status,
                label=label,
                exclusion_reason=rng.choice(reasons) if status == "excluded" else "",
                source_label=label or rng.choice(classes),
                duplicate_group_id=group_of[number] if status == "labeled" else None,
                decided_at=None if status == "pending" else now,
            )
        )
    Image.objects.bulk_create(images, batch_size=5000)
    return {
        "labeled": labeled,
        "excluded": statuses.count("excluded"),
        "pending": statuses.count("pending"),
        "new groups": groups,
        "images in new groups": cursor,
        "joined existing groups": join_existing if existing_group_ids else 0,
    }


def vacuum_analyze() -> None:
    """As autovacuum would have by now: fresh planner statistics."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def empty_snapshots() -> None:
    from curation.models import Snapshot, SnapshotItem

    truncate(SnapshotItem, Snapshot)


# --- Checks -------------------------------------------------------------------------------------


def check(snapshot, first) -> dict:
    """Leakage (stats and SQL), images moved since the lineage's first snapshot, ratios achieved."""
    from django.db.models import F

    from curation.models import SnapshotItem
    from curation.selectors.snapshots import snapshot_leakage_now

    stats = snapshot.stats
    total = stats["total"]
    moved = None
    if first is not None and first.pk != snapshot.pk:
        moved = (
            SnapshotItem.objects.filter(snapshot=snapshot, image__snapshot_items__snapshot=first)
            .exclude(image__snapshot_items__split=F("split"))
            .count()
        )
    # The largest gap between a class's share in a split and the ratio asked, over classes with ≥ 100 images.
    worst_gap = 0.0
    for row in stats["per_class"].values():
        if row["total"] >= 100:
            for split, ratio in zip(("train", "val", "test"), RATIOS, strict=True):
                worst_gap = max(worst_gap, abs(row[split] / row["total"] - ratio))
    return {
        "items": total,
        "leakage": stats["leakage"],
        "leakage_sql": snapshot_leakage_now(snapshot),
        "moved": moved,
        "ratios": "/".join(f"{stats['per_split'][split] / total:.4f}" for split in ("train", "val", "test")),
        "worst_class_gap": worst_gap,
        "hash": snapshot.content_hash[:12],
    }


# --- Timing and profiling -----------------------------------------------------------------------


PHASES = (
    ("_select_images", "select"),
    ("_units", "units"),
    ("_previous_splits", "earlier splits"),
    ("_assign_splits", "assign"),
    ("_leakage", "leakage"),
    ("content_hash", "hash"),
    ("_stats", "stats"),
    ("bulk_create", "bulk_create"),
    ("commit", "commit"),
)


@contextmanager
def phase_times() -> Iterator[dict[str, float]]:
    """Seconds spent in each step of `snapshot_create`, timed by wrapping its functions from outside
    (the service looks them up as module globals at call time). commit = the atomic block's COMMIT,
    where PostgreSQL runs the deferred foreign-key checks of the inserted items."""
    from django.db import connections
    from django.db.models.query import QuerySet

    import curation.services.snapshots as service

    times: dict[str, float] = defaultdict(float)
    restore = []

    def wrap(owner, attribute: str, *, instance: bool = False) -> None:
        original = getattr(owner, attribute)

        @wraps(original)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                times[attribute] += time.perf_counter() - started

        setattr(owner, attribute, timed)
        restore.append((owner, attribute, None if instance else original))

    for function_name, _ in PHASES[:-2]:
        wrap(service, function_name)
    wrap(QuerySet, "bulk_create")
    wrap(connections["default"], "commit", instance=True)
    try:
        yield times
    finally:
        for owner, attribute, original in restore:
            if original is None:
                delattr(owner, attribute)
            else:
                setattr(owner, attribute, original)


def timed_create(name: str, seed: int):
    from curation.services.snapshots import snapshot_create

    with phase_times() as phases:
        started = time.perf_counter()
        snapshot = snapshot_create(name=name, seed=seed)
        seconds = time.perf_counter() - started
    # _assign_splits calls _previous_splits: show its own share apart.
    phases["_assign_splits"] -= phases["_previous_splits"]
    phases["other"] = seconds - sum(phases.values())
    return snapshot, seconds, dict(phases)


def profiled_create(name: str, seed: int) -> tuple[float, list[list], list[list], str]:
    """One run under cProfile and an SQL timer: (wall s, call counts, statements, top functions by own time)."""
    from django.db import connection

    from curation.services.snapshots import snapshot_create

    statements: list[tuple[float, str]] = []

    def timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            statements.append(((time.perf_counter() - started) * 1000, sql))

    profiler = cProfile.Profile()
    started = time.perf_counter()
    with connection.execute_wrapper(timer):
        profiler.enable()
        snapshot_create(name=name, seed=seed)
        profiler.disable()
    wall = time.perf_counter() - started

    stats = pstats.Stats(profiler)
    total = max(entry[3] for entry in stats.stats.values())
    own_functions = []
    for (filename, line, function_name), (_, calls, _, cumulative, _) in stats.stats.items():
        if filename.endswith("curation/services/snapshots.py") and cumulative >= 0.01 * total:
            own_functions.append(
                [f"{function_name} (line {line})", f"{calls:,}", f"{cumulative:.3f}", f"{cumulative / total:.0%}"]
            )
    own_functions.sort(key=lambda row: -float(row[2]))

    by_shape: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for ms, sql in statements:
        by_shape[sql[:90]].append((ms, sql))
    rows = sorted(
        (
            [
                f"{sum(ms for ms, _ in runs):.1f}",
                len(runs),
                f"{max(len(sql) for _, sql in runs):,}",
                shape.replace("|", "\\|") + " …",
            ]
            for shape, runs in by_shape.items()
        ),
        key=lambda row: -float(row[0]),
    )

    text: list[str] = []
    printer = pstats.Stats(profiler, stream=_Lines(text))
    printer.sort_stats("tottime").print_stats(12)
    lines = [line for line in "".join(text).splitlines() if line.strip()]
    first = next((n for n, line in enumerate(lines) if "ncalls" in line), 0)
    top = "\n".join(line.replace("/work/main/.venv/lib/python3.11/site-packages/", "") for line in lines[first:])
    return wall, own_functions, rows, top


class _Lines:
    def __init__(self, sink: list[str]):
        self.sink = sink

    def write(self, text: str) -> None:
        self.sink.append(text)


def previous_splits_query_variants(repeats: int) -> list[list]:
    """The service's earlier-splits read as it is, and two rewrites, on the current lineage.

    Read-only; same server-side cursor and chunk size as the service, inside a transaction as there."""
    from django.db import transaction

    from curation.models import Image, SnapshotItem

    labeled = Image.objects.labeled().order_by("pk")
    variants = {
        "as in the service: IN (<every id>) + DISTINCT, Meta.ordering adds id": lambda ids: (
            SnapshotItem.objects.filter(image_id__in=ids).values_list("image_id", "split").distinct()
        ),
        "same with .order_by() (a real DISTINCT)": lambda ids: (
            SnapshotItem.objects.filter(image_id__in=ids).values_list("image_id", "split").order_by().distinct()
        ),
        ".order_by() + IN (subquery of the selected images)": lambda ids: (
            SnapshotItem.objects.filter(image_id__in=labeled.values("pk"))
            .values_list("image_id", "split")
            .order_by()
            .distinct()
        ),
    }
    rows = []
    for description, build in variants.items():
        seconds, count = [], 0
        for _ in range(repeats):
            with transaction.atomic():
                ids = list(labeled.values_list("pk", flat=True))  # the service has these at hand already
                started = time.perf_counter()
                count = sum(1 for _ in build(ids).iterator(chunk_size=10_000))
                seconds.append(time.perf_counter() - started)
        rows.append([description, f"{count:,}", f"{statistics.median(seconds):.3f}"])
    return rows


# --- Main ---------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 images, 300 groups, 2 runs a case")
    parser.add_argument("--images", type=int, help="labeled images (default 30,000; 5,000 with --quick)")
    parser.add_argument("--groups", type=int, help="duplicate groups (default 2,000; 300 with --quick)")
    parser.add_argument("--runs", type=int, help="timed runs per case (default 3; 2 with --quick)")
    args = parser.parse_args()
    labeled = args.images or (5_000 if args.quick else 30_000)
    groups = args.groups or (300 if args.quick else 2_000)
    runs = args.runs or (2 if args.quick else 3)

    with bench_django("dermcurate_bench_snapshot"):
        print(f"Machine: {machine_line()}\n")
        rng = random.Random(20240601)
        started = time.perf_counter()
        seeded = seed_images(labeled=labeled, groups=groups, rng=rng, tag="snapshot")
        vacuum_analyze()
        print(f"seeded {seeded} in {time.perf_counter() - started:.1f} s\n", flush=True)

        results: list[list] = []
        seconds_of: dict[str, list[float]] = defaultdict(list)
        hashes = set()

        # 1. First snapshot of a lineage: every image is new to it. The runs alternate with
        # stable ones so that load from other work on the machine hits both cases alike.
        first = None
        for run in range(runs):
            empty_snapshots()
            snapshot, seconds, phases = timed_create(f"bench-first-{run}", seed=7)
            seconds_of["first of a lineage"].append(seconds)
            result = check(snapshot, None)
            hashes.add(result["hash"])
            results.append(["first of a lineage", run + 1, 0, seconds, phases, result])
            first = snapshot
            print(f"first-of-lineage run {run + 1}: {seconds:.2f} s", flush=True)
            # 2. A stable follow-up on top of it: the same images, splits read back from the first.
            snapshot, seconds, phases = timed_create(f"bench-stable-{run}", seed=100 + run)
            seconds_of["stable follow-up"].append(seconds)
            results.append(["stable follow-up", run + 1, 1, seconds, phases, check(snapshot, first)])
            print(f"stable run {run + 1}: {seconds:.2f} s", flush=True)

        # 3. The lineage grows: each snapshot reads every earlier one's items.
        earlier = 2
        for run in range(runs):
            snapshot, seconds, phases = timed_create(f"bench-longer-{run}", seed=200 + run)
            results.append(["stable, longer lineage", run + 1, earlier, seconds, phases, check(snapshot, first)])
            earlier += 1
            print(f"longer-lineage run {run + 1}: {seconds:.2f} s", flush=True)

        # 4. A follow-up after 10 % more images arrived, some joining existing duplicate groups.
        added = seed_images(
            labeled=labeled // 10, groups=groups // 10, rng=rng, tag="snapshot-more", join_existing=labeled // 100
        )
        vacuum_analyze()
        snapshot, seconds, phases = timed_create("bench-grown", seed=999)
        results.append([f"+{added['labeled']:,} new images", 1, earlier, seconds, phases, check(snapshot, first)])
        earlier += 1
        print(f"grown run: {seconds:.2f} s\n", flush=True)

        variants = previous_splits_query_variants(repeats=3)
        lineage_items = earlier

        # A profile of one more first-of-lineage run (not in the medians).
        empty_snapshots()
        profile = profiled_create("bench-profile-first", seed=7)

        print(f"Machine after the runs: {machine_line()}\n")
        print(
            f"### snapshot_create, {labeled:,} labeled images, {groups:,} duplicate groups "
            f"(goal ≤ {GOAL_SECONDS:.0f} s)\n"
        )
        print(
            markdown_table(
                ["case", "runs", "median s", "min s", "max s", "goal"],
                [
                    [
                        case,
                        len(values),
                        f"{statistics.median(values):.2f}",
                        f"{min(values):.2f}",
                        f"{max(values):.2f}",
                        "met" if statistics.median(values) <= GOAL_SECONDS else "MISSED",
                    ]
                    for case, values in seconds_of.items()
                ],
            )
        )
        print(
            "\nEvery run: checks and ratios (goal 0.8/0.1/0.1; worst class gap = largest |share − ratio| "
            "of a class with ≥ 100 images in one split; moved = items whose split differs from the "
            "lineage's first snapshot):\n"
        )
        print(
            markdown_table(
                [
                    "case",
                    "run",
                    "earlier snapshots",
                    "s",
                    "items",
                    "leakage (stats / SQL)",
                    "moved",
                    "train/val/test",
                    "worst class gap",
                    "content hash",
                ],
                [
                    [
                        case,
                        run,
                        before,
                        f"{seconds:.2f}",
                        f"{r['items']:,}",
                        f"{r['leakage']} / {r['leakage_sql']}",
                        "-" if r["moved"] is None else r["moved"],
                        r["ratios"],
                        f"{r['worst_class_gap']:.4f}",
                        r["hash"],
                    ]
                    for case, run, before, seconds, _, r in results
                ],
            )
        )
        print(
            "\nEvery run: seconds per step, timed by wrapping the service's functions from outside "
            "(assign excludes earlier splits; commit runs the deferred FK checks; other = sorting items, "
            "the snapshot row, validation):\n"
        )
        columns = [label for _, label in PHASES] + ["other"]
        keys = [name for name, _ in PHASES] + ["other"]
        print(
            markdown_table(
                ["case", "run", "earlier", "total", *columns],
                [
                    [case, run, before, f"{seconds:.2f}"] + [f"{phases.get(key, 0.0):.2f}" for key in keys]
                    for case, run, before, seconds, phases, _ in results
                ],
            )
        )
        print(
            f"\nDeterminism: the first-of-lineage runs (same data, same seed) gave {len(hashes)} distinct "
            f"content hash(es). The grown snapshot added {added}."
        )

        print(
            f"\n### Reading earlier splits, {lineage_items} snapshots in the lineage "
            "(median of 3, server-side cursor, chunks of 10,000)\n"
        )
        print(markdown_table(["query", "rows returned", "s"], variants))

        wall, own_functions, statements, top = profile
        print(
            f"\n### Profile: one first-of-lineage run under cProfile ({wall:.2f} s wall; "
            "cProfile inflates Python time)\n"
        )
        print(markdown_table(["service function", "calls", "cumulative s", "share"], own_functions))
        print("\nSQL statements (execute time; a server-side cursor's fetches are not in it):\n")
        print(markdown_table(["ms", "count", "longest SQL, chars", "statement"], statements[:8]))
        print(f"\nTop functions by own time:\n\n```\n{top}\n```")


if __name__ == "__main__":
    main()
