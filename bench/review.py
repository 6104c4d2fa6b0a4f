"""Server time and SQL queries of the review screen's three requests, at two database sizes.

Run from the repository root (PostgreSQL is required; the wrapper starts one):

    scripts/with-test-services.sh .venv/bin/python bench/review.py          # 3,000 / 6,000 then 30,000 / 60,000
    scripts/with-test-services.sh .venv/bin/python bench/review.py --quick  # 1,000 / 2,000 then 5,000 / 10,000

Rows are bulk-created with the ORM (images without files), 15 readers with
`accounts.services.user_create_or_update`. The mix, with two readers required:
40 % of the images pending (half with one review, half with none), 46 %
labeled by two agreeing reviews, 10 % disputed by two disagreeing reviews,
4 % excluded by two "cannot judge" reviews. A pending image holds at most one
review, so the workflow alone gives about 1.5 reviews per image; the rest of
the review rows asked for (to reach 2 per image) are undone reviews (retracted
and redone with another class), which the queue's queries must skip. Other
readers hold leases, and skips exist.

Each iteration is what a reader's browser does per image: `GET /review/`,
`GET /api/v1/review-queue/next/?count=3` (two images already held, one new
lease), then `POST /api/v1/reviews/` for the oldest held image. Four readers
take turns, each with its own test `Client` and `force_login`; time is measured
around the in-process client call (the Django handler; the connection stays
open, as with CONN_MAX_AGE > 0). After a warm-up, one pass is timed and a
second, shorter pass counts SQL queries with `CaptureQueriesContext` (so the
counting does not slow the timed pass). The slowest SELECTs are then run under
EXPLAIN ANALYZE at the larger size.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import re
import statistics
import time
from collections import defaultdict
from datetime import timedelta

from _django import bench_django, machine_line, markdown_table, percentile, truncate

PASSWORD = "bench-password-not-secret"  # noqa: S105
READER_COUNT = 15
MEASURED_READERS = 4
QUEUE_COUNT = 3
MIX = {"pending": 0.40, "labeled": 0.46, "disputed": 0.10, "excluded": 0.04}
GOAL_P95_MS = 50.0
EXPLAIN_FROM_MS = 0.5
TRANSACTION_CONTROL = frozenset({"BEGIN", "COMMIT", "ROLLBACK"})
REQUESTS = ("GET /review/", "GET /api/v1/review-queue/next/?count=3", "POST /api/v1/reviews/")


# --- Data ---------------------------------------------------------------------------------------


def create_readers():
    from accounts.services import user_create_or_update

    return [
        user_create_or_update(username=f"bench-reader-{number:02d}", role="reviewer", password=PASSWORD)[0]
        for number in range(READER_COUNT)
    ]


def clear_data() -> None:
    from core.models import AuditEvent
    from curation.models import DuplicateGroup, Image, ImageSource, ImportBatch, Source
    from labeling.models import Review, ReviewLease, ReviewSkip

    truncate(AuditEvent, Review, ReviewLease, ReviewSkip, ImageSource, Image, ImportBatch, Source, DuplicateGroup)


def seed(*, image_count: int, review_count: int, readers: list, rng: random.Random) -> dict:
    """Bulk-create images, provenance, reviews, leases and skips; returns counts."""
    from django.db import connection
    from django.utils import timezone

    from curation.models import ExclusionReason, Image, ImageSource, ImportBatch, LabelClass, Source
    from curation.services import storage
    from labeling.models import Review, ReviewLease, ReviewSkip

    classes = list(LabelClass.objects.order_by("index"))
    reasons = [r for r in ExclusionReason.values if r not in ("duplicate", "other")]
    source = Source.objects.create(name="bench-source")
    batch = ImportBatch.objects.create(source=source, status=ImportBatch.Status.SUCCEEDED)
    now = timezone.now()

    statuses = []
    for status, share in MIX.items():
        statuses += [status] * round(image_count * share)
    statuses = (statuses + ["pending"] * image_count)[:image_count]
    rng.shuffle(statuses)

    images = []
    for number, status in enumerate(statuses):
        sha256 = hashlib.sha256(f"bench-review-{number}".encode()).hexdigest()
        image = Image(
            sha256=sha256,
            original=storage.original_name(sha256, "jpg"),
            sanitized=storage.sanitized_name(sha256),
            thumbnail=storage.thumbnail_name(sha256),
            original_format="JPEG",
            file_size=rng.randint(40_000, 400_000),
            width=600,
            height=450,
            sanitized_width=600,
            sanitized_height=450,
            phash=rng.getrandbits(64) - (1 << 63),
            dhash=rng.getrandbits(64) - (1 << 63),
            status=status,
            source_label=rng.choice(classes),
        )
        if status == "labeled":
            image.label = rng.choice(classes)
        if status == "excluded":
            image.exclusion_reason = rng.choice(reasons)
        if status != "pending":
            image.decided_at = now
        images.append(image)
    images = Image.objects.bulk_create(images, batch_size=2000)
    ImageSource.objects.bulk_create(
        [
            ImageSource(
                image=image,
                batch=batch,
                source=source,
                source_label=image.source_label,
                source_path=f"{image.source_label.index}. class/{image.sha256[:16]}.jpg",
            )
            for image in images
        ],
        batch_size=2000,
    )

    active = []
    for image in images:
        voters = rng.sample(readers, rng.choice((0, 1)) if image.status == "pending" else 2)
        for position, reader in enumerate(voters):
            review = Review(image=image, reader=reader)
            if image.status == "labeled":
                review.label = image.label
            elif image.status == "excluded":
                review.reason = image.exclusion_reason
            elif image.status == "disputed":
                first, second = rng.sample(classes, 2)
                review.label = first if position == 0 else second
            else:
                review.label = rng.choice(classes)
            active.append(review)
    retracted = []
    for review in rng.sample(active, min(len(active), max(0, review_count - len(active)))):
        # The reader's first answer, undone and replaced by the active review.
        retracted.append(Review(image=review.image, reader=review.reader, label=rng.choice(classes), retracted_at=now))
    Review.objects.bulk_create(retracted + active, batch_size=5000)
    with connection.cursor() as cursor:
        # auto_now_add ignores given values: spread the review times over two months, 3 % of them today.
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            "UPDATE labeling_review SET created_at = now() - CASE WHEN random() < 0.03"
            " THEN random() * (now() - date_trunc('day', now()))"
            " ELSE interval '1 day' + random() * interval '59 days' END"
        )
        cursor.execute(
            "UPDATE labeling_review SET retracted_at = created_at + interval '30 seconds'"
            " WHERE retracted_at IS NOT NULL"
        )

    pending_ids = [image.pk for image in images if image.status == "pending"]
    held = rng.sample(pending_ids, min(len(pending_ids), 3 * (READER_COUNT - MEASURED_READERS) + 100))
    leases = []
    for position, image_id in enumerate(held):
        expired = position >= 3 * (READER_COUNT - MEASURED_READERS)  # leftovers of readers who went away
        leases.append(
            ReviewLease(
                image_id=image_id,
                reader=readers[MEASURED_READERS + position % (READER_COUNT - MEASURED_READERS)]
                if not expired
                else rng.choice(readers),
                expires_at=now + (timedelta(minutes=-30) if expired else timedelta(minutes=8)),
            )
        )
    ReviewLease.objects.bulk_create(leases)
    ReviewSkip.objects.bulk_create(
        [ReviewSkip(image_id=rng.choice(pending_ids), reader=rng.choice(readers)) for _ in range(image_count // 50)]
    )
    with connection.cursor() as cursor:
        cursor.execute("UPDATE labeling_reviewskip SET skipped_at = now() - random() * interval '3 days'")
        # As autovacuum would have by now: no dead row versions from the updates above, fresh statistics.
        cursor.execute("VACUUM ANALYZE")
    return {
        "images": len(images),
        "by status": {status: statuses.count(status) for status in MIX},
        "reviews": len(active) + len(retracted),
        "active reviews": len(active),
        "retracted reviews": len(retracted),
        "leases": len(leases),
    }


# --- Requests -----------------------------------------------------------------------------------


class ReaderSession:
    """One reader's browser: a logged-in test client."""

    def __init__(self, reader):
        from django.test import Client

        self.reader = reader
        # "localhost" is in the default ALLOWED_HOSTS; "testserver" is only added by the test runner.
        self.client = Client(SERVER_NAME="localhost")
        self.client.force_login(reader)

    def review_page(self):
        response = self.client.get("/review/")
        assert response.status_code == 200, response.status_code
        return response

    def queue_next(self):
        response = self.client.get("/api/v1/review-queue/next/", {"count": QUEUE_COUNT})
        assert response.status_code == 200, (response.status_code, response.content[:300])
        items = response.json()["items"]
        assert items, "the reader's queue ran dry"
        return items

    def submit(self, image_id: int):
        response = self.client.post(
            "/api/v1/reviews/", {"image": image_id, "label": "eczema"}, content_type="application/json"
        )
        assert response.status_code == 201, (response.status_code, response.content[:300])
        return response


def one_iteration(session: ReaderSession, measure) -> None:
    """What the review screen does per image: the page (on a reload), the queue, a decision."""
    measure(REQUESTS[0], session.review_page)
    items = measure(REQUESTS[1], session.queue_next)
    measure(REQUESTS[2], lambda: session.submit(items[0]["image"]))


def timed_pass(sessions: list[ReaderSession], iterations: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = defaultdict(list)

    def measure(name, call):
        started = time.perf_counter()
        result = call()
        times[name].append((time.perf_counter() - started) * 1000)
        return result

    for number in range(iterations):
        one_iteration(sessions[number % len(sessions)], measure)
    return times


def counted_pass(sessions: list[ReaderSession], iterations: int) -> dict[str, list[list[dict]]]:
    """The queries of each request: CaptureQueriesContext's SQL, with times from an execute wrapper
    (CaptureQueriesContext rounds them to whole milliseconds)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    captured: dict[str, list[list[dict]]] = defaultdict(list)

    def measure(name, call):
        timings = []

        def timer(execute, sql, params, many, context):
            started = time.perf_counter()
            try:
                return execute(sql, params, many, context)
            finally:
                timings.append((time.perf_counter() - started) * 1000)

        with CaptureQueriesContext(connection) as context, connection.execute_wrapper(timer):
            result = call()
        queries = [dict(query) for query in context.captured_queries]
        # BEGIN / COMMIT are logged by the connection, not run through the wrapper.
        statements = [query for query in queries if query["sql"] not in TRANSACTION_CONTROL]
        assert len(statements) == len(timings), (len(statements), len(timings))
        for query in queries:
            query["ms"] = float(query["time"]) * 1000
        for query, ms in zip(statements, timings, strict=True):
            query["ms"] = ms
        captured[name].append(queries)
        return result

    for number in range(iterations):
        one_iteration(sessions[number % len(sessions)], measure)
    return captured


_NUMBERS = re.compile(r"\b\d+(\.\d+)?\b|'[^']*'")


def shape(sql: str) -> str:
    """The SQL with its literals blanked, so that the same statement groups together."""
    return _NUMBERS.sub("?", sql)


def slowest_queries(captured: list[list[dict]], top: int) -> list[tuple[float, str]]:
    """(median ms, an example SQL) of the `top` slowest statement shapes."""
    by_shape: dict[str, list[float]] = defaultdict(list)
    example: dict[str, str] = {}
    for queries in captured:
        for query in queries:
            key = shape(query["sql"])
            by_shape[key].append(query["ms"])
            example[key] = query["sql"]
    ranked = sorted(((statistics.median(ms), example[key]) for key, ms in by_shape.items()), reverse=True)
    return ranked[:top]


def explain(sql: str) -> str:
    """EXPLAIN ANALYZE of a SELECT, in a transaction that is rolled back (FOR UPDATE takes row locks)."""
    from django.db import connection, transaction

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        plan = "\n".join(row[0] for row in cursor.fetchall())
        transaction.set_rollback(True)
    return plan


# --- Main ---------------------------------------------------------------------------------------


def measure_size(
    *, image_count: int, review_count: int, readers: list, iterations: int, warmup: int, counted: int, order: str
) -> dict:
    from django.test.utils import override_settings

    clear_data()
    started = time.perf_counter()
    counts = seed(image_count=image_count, review_count=review_count, readers=readers, rng=random.Random(image_count))
    seconds = time.perf_counter() - started
    print(
        f"seeded {counts['images']:,} images {counts['by status']}, {counts['reviews']:,} reviews "
        f"({counts['active reviews']:,} active, {counts['retracted reviews']:,} undone), "
        f"{counts['leases']} leases in {seconds:.1f} s",
        flush=True,
    )
    sessions = [ReaderSession(reader) for reader in readers[:MEASURED_READERS]]
    with override_settings(DERMCURATE_QUEUE_ORDER=order):
        timed_pass(sessions, warmup)
        times = timed_pass(sessions, iterations)
        captured = counted_pass(sessions, counted)
    return {"counts": counts, "times": times, "captured": captured, "order": order}


def report(results: list[dict], explain_top: int) -> None:
    rows = []
    for result in results:
        size = f"{result['counts']['images']:,} / {result['counts']['reviews']:,}"
        for name in REQUESTS:
            times = result["times"][name]
            query_counts = sorted({len(queries) for queries in result["captured"][name]})
            slowest_ms, slowest_sql = slowest_queries(result["captured"][name], 1)[0]
            p95 = percentile(times, 0.95)
            rows.append(
                [
                    size,
                    result["order"],
                    name,
                    len(times),
                    f"{percentile(times, 0.50):.1f}",
                    f"{p95:.1f}" + ("" if p95 <= GOAL_P95_MS else " ✗"),
                    f"{max(times):.1f}",
                    ", ".join(map(str, query_counts)),
                    f"{slowest_ms:.1f} ({summarize(slowest_sql)})",
                ]
            )
    print(f"### Server time per request (ms; goal p95 ≤ {GOAL_P95_MS:.0f} ms)\n")
    print(
        markdown_table(
            [
                "images / reviews",
                "queue order",
                "request",
                "n",
                "p50",
                "p95",
                "max",
                "queries",
                "slowest statement, median ms",
            ],
            rows,
        )
    )
    largest = max(results, key=lambda r: r["counts"]["images"])
    print(f"\n### The statements of one request at {largest['counts']['images']:,} images (ms each)\n")
    for name in REQUESTS:
        queries = largest["captured"][name][-1]
        print(f"{name}: {len(queries)} statements, {sum(q['ms'] for q in queries):.1f} ms in all\n")
        print("```")
        for number, query in enumerate(queries, start=1):
            print(f"{number:2d}. {query['ms']:6.2f}  {query['sql'][:110]}")
        print("```\n")
    if explain_top:
        print(f"\n### Slowest SELECTs at {largest['counts']['images']:,} images, EXPLAIN ANALYZE\n")
        for name in REQUESTS:
            shown = 0
            for ms, sql in slowest_queries(largest["captured"][name], explain_top):
                if not sql.lstrip().upper().startswith("SELECT") or ms < EXPLAIN_FROM_MS:
                    continue
                shown += 1
                print(f"{name}: {ms:.2f} ms in the counted pass\n\n```sql\n{sql}\n```\n\n```\n{explain(sql)}\n```\n")
            if not shown:
                print(f"{name}: no SELECT among its {explain_top} slowest statements takes {EXPLAIN_FROM_MS} ms.\n")


# Indexes the application does not have, tried on the benchmark database only (see --what-if).
CANDIDATE_INDEXES = {
    "pending image ids": "CREATE INDEX bench_image_pending_ids ON curation_image (id) WHERE status = 'pending'",
    "active reviews by reader": (
        "CREATE INDEX bench_review_active_reader ON labeling_review (reader_id, created_at) INCLUDE (image_id)"
        " WHERE retracted_at IS NULL"
    ),
}
LEFT_CAP = 1000


def what_if(reader, repetitions: int = 30) -> None:
    """Time reader_progress's three counts (and a capped "left") before and after CANDIDATE_INDEXES."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from labeling.selectors.progress import reader_progress
    from labeling.services.queue import reviewable_images

    with CaptureQueriesContext(connection) as context:
        progress = reader_progress(reader=reader)
        capped = reviewable_images(reader=reader).values("pk")[:LEFT_CAP].count()
    names = ["today", "total", "left", f"left, capped at {LEFT_CAP} (COUNT over a LIMIT subquery)"]
    statements = [query["sql"] for query in context.captured_queries]
    assert len(statements) == len(names), statements

    def median_ms(sql: str) -> float:
        times = []
        with connection.cursor() as cursor:
            for _ in range(repetitions):
                started = time.perf_counter()
                cursor.execute(sql)
                cursor.fetchall()
                times.append((time.perf_counter() - started) * 1000)
        return statistics.median(times)

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    before = [median_ms(sql) for sql in statements]
    with connection.cursor() as cursor:
        for sql in CANDIDATE_INDEXES.values():
            cursor.execute(sql)
        cursor.execute("VACUUM ANALYZE")
    after = [median_ms(sql) for sql in statements]
    values = [progress["today"], progress["total"], progress["left"], capped]
    print(f"\n### What if: reader_progress's counts with two more indexes (median of {repetitions}, ms)\n")
    print("Tried on the benchmark database only:\n")
    for name, sql in CANDIDATE_INDEXES.items():
        print(f"- {name}: `{sql}`")
    print()
    rows = [
        [name, f"{value:,}", f"{old:.2f}", f"{new:.2f}"]
        for name, value, old, new in zip(names, values, before, after, strict=True)
    ]
    print(markdown_table(["count", "value", "as is", "with the indexes"], rows))
    print(f'\nThe "left" count with the indexes:\n\n```\n{explain(statements[2])}\n```\n')
    with connection.cursor() as cursor:
        for name in ("bench_image_pending_ids", "bench_review_active_reader"):
            cursor.execute(f"DROP INDEX {name}")


def summarize(sql: str) -> str:
    """A few words naming a statement: its verb and first table."""
    match = re.search(r'\bFROM "(\w+)"', sql) or re.search(r'\b(?:INTO|UPDATE) "(\w+)"', sql)
    verb = sql.split(None, 1)[0].upper()
    if verb == "SELECT" and "COUNT(" in sql.upper():
        verb = "COUNT"
    return f"{verb} {match[1]}" if match else verb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[3_000, 30_000], help="image counts; reviews = 2 per image"
    )
    parser.add_argument("--iterations", type=int, default=250, help="timed iterations (one of each request)")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--counted", type=int, default=20, help="iterations whose queries are captured")
    parser.add_argument("--orders", nargs="+", default=["random", "oldest"], choices=["random", "oldest"])
    parser.add_argument("--explain", type=int, default=4, help="EXPLAIN this many slowest statements per request")
    parser.add_argument(
        "--what-if", action="store_true", help="at the largest size, time the progress counts with candidate indexes"
    )
    parser.add_argument("--quick", action="store_true", help="1,000 and 5,000 images, 60 iterations")
    arguments = parser.parse_args()
    if arguments.quick:
        arguments.sizes, arguments.iterations, arguments.warmup, arguments.counted = [1_000, 5_000], 60, 5, 5

    with bench_django("dermcurate_bench_review"):
        print(machine_line(), flush=True)
        readers = create_readers()
        results = []
        for image_count in arguments.sizes:
            for order in arguments.orders:
                results.append(
                    measure_size(
                        image_count=image_count,
                        review_count=2 * image_count,
                        readers=readers,
                        iterations=arguments.iterations,
                        warmup=arguments.warmup,
                        counted=arguments.counted,
                        order=order,
                    )
                )
        print()
        report(results, arguments.explain)
        if arguments.what_if:
            what_if(readers[0])
        print(machine_line())


if __name__ == "__main__":
    main()
