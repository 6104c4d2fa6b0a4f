"""Snapshot export over REST: seconds and the server process's peak memory, 30,000 and 100,000 rows.

Run from the repository root (PostgreSQL is required; the wrapper starts one):

    scripts/with-test-services.sh .venv/bin/python bench/export.py           # 30,000 and 100,000 rows
    scripts/with-test-services.sh .venv/bin/python bench/export.py --quick   # 5,000 and 15,000 rows

Data: labeled images bulk-created with the ORM (rows without files; skewed
classes, duplicate groups of 2-5), frozen with `snapshot_create` into a
snapshot of the small size; then more images and a second snapshot of the
large size (the same lineage, so the first one's images keep their splits).

The endpoint: `GET /api/v1/snapshots/{id}/export/?split=all&format=csv|jsonl`
served by gunicorn (`config.wsgi:application`, one sync worker, the test
settings, a token of a curator), fetched with curl (a C client, so that the
client's chunked-transfer decoding does not slow the measurement; the body
streams to a file). Every (size, format) gets a fresh server: one small
export warms it up (imports, URL resolving, the first connection), then the
export is fetched `--repeats` times. Memory is the worker process's VmRSS
before the first large request and VmHWM (peak resident set) after the first
and after the last one, from /proc; server CPU is the worker's user + system
time per request. Row counts and the header are checked on every response.

Two comparisons in the same run:

- baseline: the same rows through a plain DRF `ModelSerializer` over
  `SnapshotItem` (nested image and label serializers, `many=True`,
  `select_related`) rendered by `JSONRenderer`, each size in its own fresh
  Python process so that the peaks do not mix;
- what-if: the same server with a WSGI wrapper (defined below, not app code)
  that joins the response's pieces into 64 KiB writes; the view yields one
  line per row and gunicorn writes each piece to the socket as its own chunk.

A last table splits the export's in-process time into reading the rows
(`snapshot_export_rows`), formatting them, and Django's per-piece encoding.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from _django import REPO_ROOT, bench_django, machine_line, markdown_table

GOAL_SECONDS = 1.0
PASSWORD = "bench-password-not-secret"  # noqa: S105
FORMATS = ("csv", "jsonl")
WARMUP_SNAPSHOT = "bench-export-warmup"
COALESCE_BYTES = 64 * 1024
# Libraries a web process does not need for the export; listed when the URLconf's imports load them.
HEAVY_MODULES = ("numpy", "scipy", "pandas", "sklearn", "statsmodels", "PIL", "imagehash", "tensorflow", "keras")


# --- The what-if server: one socket write per 64 KiB instead of one per row ----------------------


class _Coalesced:
    """A WSGI response iterable that hands its pieces on joined into blocks of about 64 KiB."""

    def __init__(self, iterable):
        self.iterable = iterable

    def __iter__(self):
        pieces, size = [], 0
        for piece in self.iterable:
            pieces.append(piece)
            size += len(piece)
            if size >= COALESCE_BYTES:
                yield b"".join(pieces)
                pieces, size = [], 0
        if pieces:
            yield b"".join(pieces)

    def close(self):
        # Django's response.close() ends the request (request_finished closes the connection).
        if hasattr(self.iterable, "close"):
            self.iterable.close()


def coalesced_application(environ, start_response):
    """gunicorn --pythonpath bench export:coalesced_application"""
    from config.wsgi import application

    return _Coalesced(application(environ, start_response))


# --- Data ------------------------------------------------------------------------------------------


def seed(sizes: tuple[int, int]) -> dict:
    """A curator with a token, a tiny warm-up snapshot, and snapshots of both sizes."""
    import random

    from rest_framework.authtoken.models import Token
    from snapshot import seed_images, vacuum_analyze

    from accounts.services import user_create_or_update
    from curation.services.snapshots import snapshot_create

    rng = random.Random(20240602)
    curator, _ = user_create_or_update(username="bench-export-curator", role="curator", password=PASSWORD)
    token = Token.objects.get_or_create(user=curator)[0].key
    small, large = sizes
    seed_images(labeled=small, groups=small // 15, rng=rng, tag="export")
    warmup = snapshot_create(name=WARMUP_SNAPSHOT, classes=["normal_skin"], cap_per_class=50)
    first = snapshot_create(name=f"bench-export-{small}", seed=1)
    seed_images(labeled=large - small, groups=(large - small) // 15, rng=rng, tag="export-more")
    second = snapshot_create(name=f"bench-export-{large}", seed=1)
    vacuum_analyze()
    return {"token": token, "warmup": warmup, "snapshots": {small: first, large: second}}


# --- Processes and memory --------------------------------------------------------------------------


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in KiB."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def child_environment(tmp_dir: str) -> dict[str, str]:
    """The bench database and media folder; TMPDIR so that the test settings' temporary folders land in ours."""
    env = dict(os.environ)
    env.update(DJANGO_SETTINGS_MODULE="config.settings.test", TMPDIR=tmp_dir, PYTHONUNBUFFERED="1")
    return env


def ready(port: int, token: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", "/api/v1/classes/", headers={"Authorization": f"Token {token}"})
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


@contextmanager
def gunicorn(*, app: str, tmp_dir: str, token: str):
    """A fresh gunicorn with one sync worker; yields (base URL, worker pid)."""
    port = free_port()
    command = [str(Path(sys.executable).parent / "gunicorn"), app, "--pythonpath", str(REPO_ROOT / "bench")]
    command += ["--bind", f"127.0.0.1:{port}", "--worker-tmp-dir", tmp_dir, "--workers", "1"]
    command += ["--worker-class", "sync", "--timeout", "600", "--log-level", "warning", "--no-control-socket"]
    log = Path(tmp_dir) / f"gunicorn-{port}.log"
    with log.open("w") as log_file:
        server = subprocess.Popen(
            command, cwd=REPO_ROOT, env=child_environment(tmp_dir), stdout=log_file, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not ready(port, token):
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"gunicorn did not come up:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        workers = children_of(server.pid)
        assert len(workers) == 1, workers
        yield base, workers[0]
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def fetch(url: str, token: str, target: Path) -> dict:
    """One streamed download with curl: (time to first byte, total seconds, bytes)."""
    result = subprocess.run(
        [
            "curl",
            "--silent",
            "--show-error",
            "--fail",
            "--header",
            f"Authorization: Token {token}",
            "--output",
            str(target),
            "--write-out",
            "%{time_starttransfer} %{time_total} %{size_download}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    first_byte, total, size = result.stdout.split()
    return {"ttfb": float(first_byte), "seconds": float(total), "bytes": int(size)}


def check_body(path: Path, file_format: str, items: int) -> None:
    from curation.selectors.snapshots import EXPORT_COLUMNS

    with path.open("rb") as body:
        first = body.readline()
        lines = 1 + sum(1 for _ in body)
    if file_format == "csv":
        assert first.decode().strip() == ",".join(EXPORT_COLUMNS), first
        assert lines == items + 1, (lines, items)
    else:
        assert set(json.loads(first)) == set(EXPORT_COLUMNS), first
        assert lines == items, (lines, items)


def export_runs(*, app: str, snapshot, warmup, file_format: str, repeats: int, token: str, tmp_dir: str) -> dict:
    """A fresh server: warm it up on the tiny snapshot, then fetch the export `repeats` times."""
    target = Path(tmp_dir) / f"body.{file_format}"
    with gunicorn(app=app, tmp_dir=tmp_dir, token=token) as (base, worker):
        fetch(f"{base}/api/v1/snapshots/{warmup.pk}/export/?split=all&format={file_format}", token, target)
        before = proc_status(worker)
        runs, peaks = [], []
        for _ in range(repeats):
            cpu = cpu_seconds(worker)
            run = fetch(f"{base}/api/v1/snapshots/{snapshot.pk}/export/?split=all&format={file_format}", token, target)
            run["cpu"] = cpu_seconds(worker) - cpu
            runs.append(run)
            peaks.append(proc_status(worker)["VmHWM"])
            check_body(target, file_format, snapshot.item_count)
    return {"before_rss": before["VmRSS"], "before_hwm": before["VmHWM"], "peaks": peaks, "runs": runs}


# --- Baseline: a plain DRF list serializer, in a fresh process -------------------------------------


def drf_baseline_worker(snapshot_id: int, warmup_id: int, repeats: int) -> None:
    """Run in a child process: time `Serializer(queryset, many=True).data` + JSONRenderer, print one JSON line."""
    sys.path.insert(0, str(REPO_ROOT))
    import django

    django.setup()
    after_setup = proc_status(os.getpid())["VmRSS"]
    from django.urls import get_resolver, reverse

    assert get_resolver().url_patterns  # imports every view module, as a server's first request does
    after_urls = proc_status(os.getpid())["VmRSS"]
    heavy = [name for name in HEAVY_MODULES if name in sys.modules]
    from rest_framework import serializers
    from rest_framework.renderers import JSONRenderer

    from curation.models import Image, LabelClass, SnapshotItem

    prefix = "http://127.0.0.1" + reverse("curation:image-file", args=[0, "image"]).removesuffix("0/image.jpg")

    class ImageOutput(serializers.ModelSerializer):
        image_url = serializers.SerializerMethodField()

        class Meta:
            model = Image
            fields = ("id", "sha256", "sanitized_width", "sanitized_height", "image_url")

        def get_image_url(self, image) -> str:
            return f"{prefix}{image.pk}/image.jpg"

    class LabelOutput(serializers.ModelSerializer):
        class Meta:
            model = LabelClass
            fields = ("code", "index")

    class ItemOutput(serializers.ModelSerializer):
        image = ImageOutput()
        label = LabelOutput()

        class Meta:
            model = SnapshotItem
            fields = ("image", "label", "split")

    def serialize(snapshot_pk: int) -> tuple[float, float, int]:
        items = SnapshotItem.objects.filter(snapshot_id=snapshot_pk).select_related("image", "label").order_by("pk")
        started = time.perf_counter()
        data = ItemOutput(items, many=True).data
        serialized = time.perf_counter()
        body = JSONRenderer().render(data)
        return serialized - started, time.perf_counter() - serialized, len(body)

    serialize(warmup_id)
    before = proc_status(os.getpid())
    runs, peaks = [], []
    for _ in range(repeats):
        runs.append(serialize(snapshot_id))
        peaks.append(proc_status(os.getpid())["VmHWM"])
    print(
        json.dumps(
            {
                "before_rss": before["VmRSS"],
                "before_hwm": before["VmHWM"],
                "peaks": peaks,
                "runs": runs,
                "rss_after_setup": after_setup,
                "rss_after_urls": after_urls,
                "heavy_modules": heavy,
            }
        )
    )


def drf_baseline(snapshot, warmup, repeats: int, tmp_dir: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--drf-baseline-worker", str(snapshot.pk), str(warmup.pk), str(repeats)],
        cwd=REPO_ROOT,
        env=child_environment(tmp_dir),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


# --- In-process split of the export's time ---------------------------------------------------------


def in_process_steps(snapshot, repeats: int) -> list[list]:
    """Median seconds to consume, in this process: the rows alone, the CSV / JSONL lines, and the
    response's bytes (Django encodes each piece); plus EXPLAIN ANALYZE of the rows' query."""
    from django.db import connection
    from django.http import StreamingHttpResponse

    from curation.selectors.exports import export_csv_lines, export_jsonl_lines
    from curation.selectors.snapshots import snapshot_export_rows, snapshot_items

    prefix = "http://127.0.0.1/curation/files/images/"

    def rows():
        return snapshot_export_rows(snapshot, split=None, image_url_prefix=prefix)

    steps = {
        "rows (snapshot_export_rows: query, fetch, dicts)": lambda: rows(),
        "+ CSV lines (export_csv_lines)": lambda: export_csv_lines(rows()),
        "+ JSONL lines (export_jsonl_lines)": lambda: export_jsonl_lines(rows()),
        "+ CSV response bytes (StreamingHttpResponse)": lambda: iter(StreamingHttpResponse(export_csv_lines(rows()))),
        "+ JSONL response bytes (StreamingHttpResponse)": lambda: iter(
            StreamingHttpResponse(export_jsonl_lines(rows()))
        ),
    }
    table = []
    for name, make in steps.items():
        seconds = []
        for _ in range(repeats):
            started = time.perf_counter()
            count = sum(1 for _ in make())
            seconds.append(time.perf_counter() - started)
        table.append([name, f"{count:,}", f"{statistics.median(seconds):.3f}", f"{min(seconds):.3f}"])

    sql, params = (
        snapshot_items(snapshot)
        .values_list(
            "image_id",
            "image__sha256",
            "label__code",
            "label__index",
            "split",
            "image__sanitized_width",
            "image__sanitized_height",
        )
        .query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        plan = cursor.fetchone()[0]
    plan = plan[0] if isinstance(plan, list) else json.loads(plan)[0]
    table.append(
        [
            f"(EXPLAIN ANALYZE of the rows' query: {plan['Plan']['Node Type']}, in the database)",
            f"{plan['Plan']['Actual Rows']:,}",
            f"{plan['Execution Time'] / 1000:.3f}",
            "",
        ]
    )
    return table


# --- Main ------------------------------------------------------------------------------------------


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 and 15,000 rows, 2 requests each")
    parser.add_argument(
        "--sizes", type=int, nargs=2, metavar=("SMALL", "LARGE"), help="snapshot sizes (default 30,000 100,000)"
    )
    parser.add_argument("--repeats", type=int, help="requests per server (default 5; 2 with --quick)")
    args = parser.parse_args()
    sizes = tuple(args.sizes or ((5_000, 15_000) if args.quick else (30_000, 100_000)))
    repeats = args.repeats or (2 if args.quick else 5)

    tmp_dir = tempfile.mkdtemp(prefix="dermcurate-bench-export-")
    try:
        with bench_django("dermcurate_bench_export"):
            print(f"Machine: {machine_line()}\n")
            started = time.perf_counter()
            data = seed(sizes)
            token, warmup, snapshots = data["token"], data["warmup"], data["snapshots"]
            print(
                f"seeded and froze {', '.join(f'{s.item_count:,}' for s in snapshots.values())}-item snapshots "
                f"(+ a {warmup.item_count}-item warm-up one) in {time.perf_counter() - started:.1f} s\n",
                flush=True,
            )
            from django.db import connections

            connections.close_all()

            served: list[tuple[str, int, str, dict]] = []
            for size, snapshot in snapshots.items():
                for file_format in FORMATS:
                    result = export_runs(
                        app="config.wsgi:application",
                        snapshot=snapshot,
                        warmup=warmup,
                        file_format=file_format,
                        repeats=repeats,
                        token=token,
                        tmp_dir=tmp_dir,
                    )
                    served.append(("as is", size, file_format, result))
                    print(
                        f"served {size:,} {file_format}: {[round(run['seconds'], 2) for run in result['runs']]} s",
                        flush=True,
                    )
            small = snapshots[sizes[0]]
            for file_format in FORMATS:
                result = export_runs(
                    app="export:coalesced_application",
                    snapshot=small,
                    warmup=warmup,
                    file_format=file_format,
                    repeats=repeats,
                    token=token,
                    tmp_dir=tmp_dir,
                )
                served.append((f"what-if: {COALESCE_BYTES // 1024} KiB writes", sizes[0], file_format, result))
                print(
                    f"what-if {sizes[0]:,} {file_format}: {[round(run['seconds'], 2) for run in result['runs']]} s",
                    flush=True,
                )

            baselines = {}
            for size, snapshot in snapshots.items():
                baselines[size] = drf_baseline(snapshot, warmup, min(repeats, 3), tmp_dir)
                print(
                    f"DRF baseline {size:,}: {[round(sum(run[:2]), 2) for run in baselines[size]['runs']]} s",
                    flush=True,
                )

            steps = in_process_steps(small, repeats=3)
            print(f"\nMachine after the runs: {machine_line()}\n")
            report(served, baselines, steps, sizes, repeats)
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)


def report(served, baselines, steps, sizes, repeats) -> None:
    print(
        f"### Export through gunicorn (1 sync worker), curl streaming the body; goal ≤ {GOAL_SECONDS:.0f} s "
        f"for {sizes[0]:,} rows\n"
    )
    print(
        f"Seconds and server CPU: median of {repeats} requests on one fresh server (min-max in brackets). "
        "Memory: the worker's RSS after warm-up, its peak (VmHWM) after the first and after the last request, "
        "and the growth of the peak over the warmed-up RSS (MiB).\n"
    )
    rows = []
    for server, size, file_format, result in served:
        seconds = [run["seconds"] for run in result["runs"]]
        median = statistics.median(seconds)
        rows.append(
            [
                server,
                f"{size:,}",
                file_format,
                f"{median:.2f} ({min(seconds):.2f}-{max(seconds):.2f})"
                + (" ✗" if size == sizes[0] and median > GOAL_SECONDS else ""),
                f"{statistics.median(run['ttfb'] for run in result['runs']) * 1000:.0f}",
                f"{statistics.median(run['cpu'] for run in result['runs']):.2f}",
                f"{result['runs'][0]['bytes'] / 2**20:.1f}",
                f"{size / median:,.0f}",
                mib(result["before_rss"]),
                mib(result["peaks"][0]),
                mib(result["peaks"][-1]),
                mib(result["peaks"][-1] - result["before_rss"]),
            ]
        )
    print(
        markdown_table(
            [
                "server",
                "rows",
                "format",
                "s",
                "first byte ms",
                "server CPU s",
                "body MiB",
                "rows/s",
                "RSS before",
                "peak after 1st",
                "peak after last",
                "peak growth",
            ],
            rows,
        )
    )

    print("\n### Baseline: plain DRF ModelSerializer(many=True) + JSONRenderer, a fresh process per size\n")
    print(
        "Same rows (select_related image and label), nested image {id, sha256, width, height, image_url} and "
        "label {code, index}; no HTTP. Median of the runs; memory as above (MiB).\n"
    )
    rows = []
    for size, result in baselines.items():
        serialize = statistics.median(run[0] for run in result["runs"])
        render = statistics.median(run[1] for run in result["runs"])
        rows.append(
            [
                f"{size:,}",
                f"{serialize:.2f}",
                f"{render:.2f}",
                f"{serialize + render:.2f}",
                f"{result['runs'][0][2] / 2**20:.1f}",
                mib(result["before_rss"]),
                mib(result["peaks"][0]),
                mib(result["peaks"][-1] - result["before_rss"]),
            ]
        )
    print(
        markdown_table(
            [
                "rows",
                "queryset + .data s",
                "render s",
                "total s",
                "body MiB",
                "RSS before",
                "peak after 1st",
                "peak growth",
            ],
            rows,
        )
    )

    first = next(iter(baselines.values()))
    print(
        f"\nA fresh process of the same settings: {mib(first['rss_after_setup'])} MiB after django.setup(), "
        f"{mib(first['rss_after_urls'])} MiB once the URLconf has imported every view module "
        f"(loaded then: {', '.join(first['heavy_modules']) or 'none of the heavy libraries'})."
    )

    print(f"\n### Memory from {sizes[0]:,} to {sizes[1]:,} rows (peak growth over the warmed-up RSS, MiB)\n")
    growth = {(server, size, fmt): result["peaks"][-1] - result["before_rss"] for server, size, fmt, result in served}
    rows = [
        [f"streaming export, {fmt}", mib(growth[("as is", sizes[0], fmt)]), mib(growth[("as is", sizes[1], fmt)])]
        for fmt in FORMATS
    ]
    rows.append(
        [
            "DRF list serializer + JSONRenderer",
            *(mib(baselines[size]["peaks"][-1] - baselines[size]["before_rss"]) for size in sizes),
        ]
    )
    print(markdown_table(["path", f"{sizes[0]:,} rows", f"{sizes[1]:,} rows"], rows))

    print(
        f"\n### Where the export's time goes, in process ({sizes[0]:,} rows; each line consumes the "
        "generator fully; median and min of 3)\n"
    )
    print(markdown_table(["step (cumulative)", "pieces", "median s", "min s"], steps))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--drf-baseline-worker":
        drf_baseline_worker(*(int(value) for value in sys.argv[2:5]))
    else:
        main()
