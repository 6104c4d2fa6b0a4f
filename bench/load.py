"""Load: simulated readers against gunicorn with the production settings, PostgreSQL and Redis.

Run from the repository root (it starts and stops its own PostgreSQL, Redis and gunicorn):

    .venv/bin/python bench/load.py                      # 20, 50 and 200 readers, baseline and tuned
    .venv/bin/python bench/load.py --quick              # 2,000 images, 10 and 20 readers, 20 s each
    .venv/bin/python bench/load.py --readers 20 50 100 150 200 --configs tuned   # find the knee

Each simulated reader (locust, in a child process) signs in for a token, then loops: `GET
/api/v1/review-queue/next/?count=1`, fetches the image it got, thinks 1–3 s, and `POST
/api/v1/reviews/` a label. Every answer is timed; only the steady state counts (after every
reader has signed in and a settling pause). The database holds 10,000 pending images and two
readers are required per image; each run starts from a fresh copy of it (CREATE DATABASE …
TEMPLATE). After each run the database is checked: every review answered 201 is there, none is
there twice, no image holds more reviews than required, and nothing was saved that the client
did not get a 201 for.

PostgreSQL keeps its durable defaults (fsync on) here, unlike the test harness. The configs:

- baseline: what docker-compose ran before this benchmark: `gunicorn --workers 3 --timeout 120`
  (sync workers) and a new database connection per request (CONN_MAX_AGE=0).
- tuned: `gunicorn -c gunicorn.conf.py` (gthread workers and threads) and persistent, health-checked
  connections (DJANGO_CONN_MAX_AGE=60), as docker-compose runs now.

Loops are bounded: each run lasts `--duration` seconds after the ramp, each reader stops after
MAX_CYCLES images, and the locust child is killed past a hard deadline. All traffic goes to
127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from _django import markdown_table, percentile  # noqa: E402

PASSWORD = "load-bench-password-not-secret"  # noqa: S105
MAX_CYCLES = 10_000
THINK_SECONDS = (1.0, 3.0)
ENDPOINTS = ("POST /api/v1/auth/token/", "GET next", "GET image", "POST review")
GOAL_P95_MS = 150.0
CONFIGS = {
    "baseline": {
        "gunicorn": ["--workers", "3", "--timeout", "120", "--no-control-socket"],
        "env": {"DJANGO_CONN_MAX_AGE": "0"},
    },
    "tuned": {
        "gunicorn": ["-c", str(REPO_ROOT / "gunicorn.conf.py")],
        "env": {"DJANGO_CONN_MAX_AGE": "60"},
    },
}


# --- The simulated reader (runs in the locust child process) ------------------------------------


def run_locust(args: argparse.Namespace) -> None:
    """The child: `bench/load.py _locust …`. Prints one JSON object: timings and the 201 reviews."""
    import gevent
    from locust import HttpUser, constant, events, task
    from locust.env import Environment

    host = args.host
    assert host.startswith("http://127.0.0.1:"), host
    labels = args.labels.split(",")
    timings: dict[str, list[float]] = {name: [] for name in ENDPOINTS}
    failures: dict[str, list[str]] = {name: [] for name in ENDPOINTS}
    created: list[dict] = []
    measuring = {"on": False, "stopping": False}
    signed_in = {"count": 0}

    @events.request.add_listener
    def _record(name, response_time, exception, response, **kwargs):
        if not measuring["on"] and name != ENDPOINTS[0]:
            return
        timings[name].append(response_time)
        if exception is not None:
            failures[name].append(f"{type(exception).__name__}: {exception}"[:200])

    class Reader(HttpUser):
        wait_time = constant(0)

        def on_start(self):
            self.number = next(reader_numbers)
            self.cycles = 0
            with self.client.post(
                "/api/v1/auth/token/",
                json={"username": f"load-reader-{self.number:03d}", "password": PASSWORD},
                name=ENDPOINTS[0],
                catch_response=True,
            ) as response:
                if response.status_code != 200:
                    response.failure(f"{response.status_code}")
                    raise RuntimeError(f"reader {self.number} could not sign in: {response.status_code}")
                self.client.headers["Authorization"] = f"Token {response.json()['token']}"
                signed_in["count"] += 1

        @task
        def review_one(self):
            if self.cycles >= MAX_CYCLES or measuring["stopping"]:
                gevent.sleep(1)
                return
            self.cycles += 1
            with self.client.get(
                "/api/v1/review-queue/next/?count=1", name="GET next", catch_response=True
            ) as response:
                if response.status_code != 200:
                    response.failure(f"{response.status_code}")
                    return
                items = response.json()["items"]
            if not items:
                gevent.sleep(1)
                return
            item = items[0]
            assert item["image_url"].startswith(host), item["image_url"]
            with self.client.get(item["image_url"][len(host) :], name="GET image", catch_response=True) as image:
                if image.status_code != 200 or not image.content.startswith(b"\xff\xd8"):
                    image.failure(f"{image.status_code}")
            gevent.sleep(random.uniform(*THINK_SECONDS))
            body = {"image": item["image"], "label": random.choice(labels)}
            with self.client.post("/api/v1/reviews/", json=body, name="POST review", catch_response=True) as response:
                if response.status_code != 201:
                    response.failure(f"{response.status_code}: {response.text[:120]}")
                    return
                review = response.json()
                created.append({"id": review["id"], "measured": measuring["on"]})

    reader_numbers = iter(range(args.readers))
    environment = Environment(user_classes=[Reader], host=host, events=events)
    runner = environment.create_local_runner()
    ramp_started = time.monotonic()
    runner.start(args.readers, spawn_rate=args.spawn_rate)
    deadline = ramp_started + args.readers / args.spawn_rate + 120
    while signed_in["count"] < args.readers and time.monotonic() < deadline:
        gevent.sleep(0.5)
    ramp_done = time.monotonic()
    gevent.sleep(args.settle)
    measuring["on"] = True
    started = time.monotonic()
    print(json.dumps({"event": "measuring"}), flush=True)
    gevent.sleep(args.duration)
    measuring["on"] = False
    elapsed = time.monotonic() - started
    print(json.dumps({"event": "measured"}), flush=True)
    # Let the cycles under way finish (think time + a slow answer) so that no review is cut off.
    measuring["stopping"] = True
    gevent.sleep(THINK_SECONDS[1] + 10)
    runner.quit()
    print(
        json.dumps(
            {
                "event": "done",
                "readers": runner.user_count,
                "ramp_seconds": round(ramp_done - ramp_started, 1),
                "seconds": elapsed,
                "timings": timings,
                "failures": failures,
                "created": created,
            }
        ),
        flush=True,
    )


# --- Data -----------------------------------------------------------------------------------------


def django_env(database_url: str, media_root: Path, redis_url: str, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DERMCURATE_", "GUNICORN_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings.production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_LOG_LEVEL": "WARNING",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": redis_url,
            "DERMCURATE_THROTTLE_CACHE_URL": redis_url[:-1] + "1",
            "MEDIA_ROOT": str(media_root),
            "DERMCURATE_REVIEWS_REQUIRED": "2",
            "GUNICORN_ACCESS_LOG": "",
        }
    )
    env.update(extra)
    return env


SEED_CODE = r"""
import hashlib, io, random, sys
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image as PILImage
from curation.models import Image, LabelClass

images, readers, password, distinct = (int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4]))
rng = random.Random(0)
# Served copies of real size (1024 x 768 JPEG, about 60 kB each); rows share a few hundred files.
names = []
for number in range(distinct):
    picture = PILImage.effect_noise((256, 192), 40 + number % 60).convert("RGB").resize((1024, 768))
    buffer = io.BytesIO()
    picture.save(buffer, "JPEG", quality=85)
    names.append(default_storage.save(f"load/{number}.jpg", ContentFile(buffer.getvalue())))
classes = list(LabelClass.objects.order_by("index"))
rows = []
for number in range(images):
    sha256 = hashlib.sha256(f"load-{number}".encode()).hexdigest()
    name = names[number % distinct]
    rows.append(Image(sha256=sha256, original=name, sanitized=name, thumbnail=name, original_format="JPEG",
                      file_size=60_000, width=1024, height=768, sanitized_width=1024, sanitized_height=768,
                      phash=rng.getrandbits(63), dhash=rng.getrandbits(63), source_label=rng.choice(classes)))
Image.objects.bulk_create(rows, batch_size=2000)
User = get_user_model()
hashed = make_password(password)
users = User.objects.bulk_create([User(username=f"load-reader-{n:03d}", password=hashed) for n in range(readers)])
reviewer = Group.objects.get(name="reviewer")
User.groups.through.objects.bulk_create([User.groups.through(user_id=u.pk, group_id=reviewer.pk) for u in users])
print(",".join(c.code for c in classes))
"""


def django_run(code: str, args: list[str], env: dict[str, str]) -> str:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()\n" + code, *args],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=900,
    ).stdout.strip()


VERIFY_CODE = r"""
import json, sys
from django.db.models import Count
from labeling.models import Review
created = json.load(open(sys.argv[1]))
acknowledged = {row["id"] for row in created}
stored = set(Review.objects.values_list("id", flat=True))
active = Review.objects.filter(retracted_at__isnull=True)
print(json.dumps({
    "acknowledged": len(acknowledged),
    "acknowledged_measured": sum(1 for row in created if row["measured"]),
    "acknowledged_twice": len(created) - len(acknowledged),
    "stored": len(stored),
    "lost": len(acknowledged - stored),
    "unacknowledged": len(stored - acknowledged),
    "duplicated": active.values("image", "reader").annotate(n=Count("id")).filter(n__gt=1).count(),
    "over_required": active.values("image").annotate(n=Count("id")).filter(n__gt=2).count(),
}))
"""


# --- Processes and CPU ----------------------------------------------------------------------------


def process_tree_cpu(pid: int) -> float:
    """User + system CPU seconds of a process, its live children and the children it has reaped."""
    import psutil

    try:
        root = psutil.Process(pid)
        # Children that exited (a backend per request without persistent connections) count too.
        times = root.cpu_times()
        total = times.children_user + times.children_system
        for process in [root, *root.children(recursive=True)]:
            try:
                times = process.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total
    except psutil.NoSuchProcess:
        return 0.0


def machine_busy_seconds() -> float:
    import psutil

    times = psutil.cpu_times()
    # guest time is inside user time already; steal is the hypervisor's, not this machine's work.
    return times.user + times.nice + times.system + getattr(times, "irq", 0.0) + getattr(times, "softirq", 0.0)


def wait_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310  (http://127.0.0.1 only)
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"{url} never answered 200")


def run_one(*, config: str, readers: int, args, pg, template: str, redis_url: str, media_root: Path, labels: str):
    from tests.services import free_port

    database_url = pg.create_database("dermcurate_load_run", template=template)
    port = free_port()
    env = django_env(database_url, media_root, redis_url, CONFIGS[config]["env"])
    env["GUNICORN_BIND"] = f"127.0.0.1:{port}"
    gunicorn = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *CONFIGS[config]["gunicorn"], "--bind", f"127.0.0.1:{port}",
         "config.wsgi:application"],
        cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    created_file = Path(tempfile.mkstemp(prefix="load-created-", suffix=".json")[1])
    locust_log = media_root.parent / f"locust-{config}-{readers}.log"
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz")
        locust = subprocess.Popen(
            [sys.executable, __file__, "_locust", "--host", f"http://127.0.0.1:{port}", "--readers", str(readers),
             "--spawn-rate", str(args.spawn_rate), "--duration", str(args.duration), "--settle", str(args.settle),
             "--labels", labels],
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=locust_log.open("w"), text=True, start_new_session=True,
        )  # fmt: skip
        hard_deadline = time.monotonic() + readers / args.spawn_rate + args.settle + args.duration + 240
        cpu_before = None
        result = None
        for line in locust.stdout:
            message = json.loads(line) if line.startswith("{") else {}
            # CPU over the measured window only: not the ramp, not the drain after it.
            if message.get("event") == "measuring":
                cpu_before = _cpu_snapshot(gunicorn.pid, pg.backend_pids()[0], locust.pid)
                window_started = time.monotonic()
            elif message.get("event") == "measured":
                cpu_after = _cpu_snapshot(gunicorn.pid, pg.backend_pids()[0], locust.pid)
                window = time.monotonic() - window_started
            elif message.get("event") == "done":
                result = message
                break
            if time.monotonic() > hard_deadline:
                break
        if locust.poll() is None:
            locust.kill()
        locust.wait(timeout=30)
        if result is None or not any(result["timings"].values()):
            raise RuntimeError(f"the locust run for {config} / {readers} failed:\n{locust_log.read_text()[-3000:]}")
        created_file.write_text(json.dumps(result["created"]))
        verify_env = django_env(database_url, media_root, redis_url, {})
        check = json.loads(django_run(VERIFY_CODE, [str(created_file)], verify_env))
    finally:
        os.killpg(gunicorn.pid, signal.SIGTERM)
        try:
            gunicorn.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(gunicorn.pid, signal.SIGKILL)
            gunicorn.wait()
        created_file.unlink(missing_ok=True)
    cpu = {name: (cpu_after[name] - cpu_before[name]) / window for name in cpu_before}
    return {"config": config, "readers": readers, "result": result, "check": check, "cpu": cpu}


def _cpu_snapshot(gunicorn_pid: int, postgres_pid: int, locust_pid: int) -> dict[str, float]:
    return {
        "web": process_tree_cpu(gunicorn_pid),
        "postgres": process_tree_cpu(postgres_pid),
        "locust": process_tree_cpu(locust_pid),
        "machine": machine_busy_seconds(),
    }


# --- Report ---------------------------------------------------------------------------------------


def summarize(run: dict) -> dict:
    result, check = run["result"], run["check"]
    row = {"config": run["config"], "readers": run["readers"], "seconds": result["seconds"]}
    for name in ENDPOINTS[1:]:
        values = result["timings"][name]
        row[name] = {
            "n": len(values),
            "p50": percentile(values, 0.50) if values else None,
            "p95": percentile(values, 0.95) if values else None,
            "p99": percentile(values, 0.99) if values else None,
            "errors": len(result["failures"][name]),
        }
    logins = result["timings"][ENDPOINTS[0]]
    row["login"] = {
        "n": len(logins),
        "p50": percentile(logins, 0.5) if logins else 0,
        "p95": percentile(logins, 0.95) if logins else 0,
    }
    row["errors"] = sum(len(v) for v in result["failures"].values())
    row["error_examples"] = sorted({e for v in result["failures"].values() for e in v})[:5]
    row["reviews_per_second"] = check["acknowledged_measured"] / result["seconds"]
    requests = sum(row[name]["n"] for name in ENDPOINTS[1:])
    row["web_cpu_ms_per_request"] = 1000 * run["cpu"]["web"] * result["seconds"] / max(1, requests)
    row["db_cpu_ms_per_request"] = 1000 * run["cpu"]["postgres"] * result["seconds"] / max(1, requests)
    row["check"] = check
    row["cpu"] = run["cpu"]
    return row


def report(rows: list[dict], machine: str) -> str:
    lines = [machine, ""]
    header = ["config", "readers", "endpoint", "n", "p50 ms", "p95 ms", "p99 ms", "errors"]
    table = []
    for row in rows:
        for name in ENDPOINTS[1:]:
            stats = row[name]
            table.append([row["config"], row["readers"], name, stats["n"],
                          *(f"{stats[k]:.0f}" if stats[k] is not None else "-" for k in ("p50", "p95", "p99")),
                          stats["errors"]])  # fmt: skip
    lines.append(markdown_table(header, table))
    lines.append("")
    header = ["config", "readers", "reviews/s", "errors", "lost", "duplicated", "unacknowledged",
              "web CPU", "PostgreSQL CPU", "locust CPU", "machine busy", "web CPU ms/request",
              "PostgreSQL CPU ms/request", "goal met"]  # fmt: skip
    table = []
    for row in rows:
        check, cpu = row["check"], row["cpu"]
        goal = (
            row["GET next"]["p95"] is not None
            and row["GET next"]["p95"] <= GOAL_P95_MS
            and row["POST review"]["p95"] <= GOAL_P95_MS
            and row["errors"] == 0
            and check["lost"] == 0
            and check["duplicated"] == 0
        )
        table.append([row["config"], row["readers"], f"{row['reviews_per_second']:.1f}", row["errors"], check["lost"],
                      check["duplicated"], check["unacknowledged"], f"{cpu['web']:.2f}", f"{cpu['postgres']:.2f}",
                      f"{cpu['locust']:.2f}", f"{cpu['machine']:.2f}", f"{row['web_cpu_ms_per_request']:.1f}",
                      f"{row['db_cpu_ms_per_request']:.1f}", "yes" if goal else "no"])  # fmt: skip
    lines.append(markdown_table(header, table))
    lines.append("")
    lines.append(
        f"CPU in cores busy over the measured window ({os.cpu_count()}.00 = every core of this machine); "
        "machine busy counts every process on it, other users' too."
    )
    for row in rows:
        if row["error_examples"]:
            lines.append(f"- {row['config']} / {row['readers']}: errors such as {row['error_examples']}")
        lines.append(
            f"- {row['config']} / {row['readers']}: {row['login']['n']} token logins during the ramp, "
            f"p50 {row['login']['p50']:.0f} ms, p95 {row['login']['p95']:.0f} ms"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 images, 10 and 20 readers, 20 s each")
    parser.add_argument("--readers", type=int, nargs="+", default=[20, 50, 200])
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=60.0, help="measured seconds per run")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds after the ramp before measuring")
    parser.add_argument("--spawn-rate", type=float, default=5.0, help="readers started per second")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.quick:
        args.images, args.readers, args.duration, args.settle = 2_000, [10, 20], 20.0, 5.0

    from tests.services import PostgresServer, RedisServer

    load_at_start = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    workdir = Path(tempfile.mkdtemp(prefix="dermcurate-load-"))
    media_root = workdir / "media"
    pg = PostgresServer(durable=True, max_connections=300).init()
    redis = RedisServer(workdir / "redis")
    rows = []
    try:
        pg.start()
        redis.start()
        template = "dermcurate_load_template"
        seed_env = django_env(pg.create_database(template), media_root, redis.url(), {})
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO_ROOT, env=seed_env,
                       check=True, timeout=600)  # fmt: skip
        labels = django_run(SEED_CODE, [str(args.images), str(max(args.readers)), PASSWORD, "300"], seed_env)
        # Interleaved (each level: baseline, then tuned) so that a change in what else runs on the
        # machine weighs on both configs alike.
        for readers in args.readers:
            for config in args.configs:
                print(f"… {config}, {readers} readers", file=sys.stderr, flush=True)
                rows.append(
                    summarize(
                        run_one(
                            config=config,
                            readers=readers,
                            args=args,
                            pg=pg,
                            template=template,
                            redis_url=redis.url(),
                            media_root=media_root,
                            labels=labels,
                        )
                    )
                )
        load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
        machine = (
            f"{os.cpu_count()} CPUs, load average at the start {load_at_start}, at the end {load}; "
            f"Python {platform.python_version()}, "
            f"PostgreSQL {pg.psql('SHOW server_version').split()[0]} (fsync on); {args.images:,} pending images, "
            f"2 readers required, {args.duration:.0f} s measured per run after a {args.settle:.0f} s settle"
        )
        rows.sort(key=lambda row: (args.configs.index(row["config"]), row["readers"]))
        print(report(rows, machine))
        if args.json:
            args.json.write_text(json.dumps(rows, indent=2))
    finally:
        redis.stop()
        pg.remove()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_locust":
        child = argparse.ArgumentParser()
        child.add_argument("_locust")
        child.add_argument("--host", required=True)
        child.add_argument("--readers", type=int, required=True)
        child.add_argument("--spawn-rate", type=float, required=True)
        child.add_argument("--duration", type=float, required=True)
        child.add_argument("--settle", type=float, required=True)
        child.add_argument("--labels", required=True)
        run_locust(child.parse_args())
    else:
        main()
