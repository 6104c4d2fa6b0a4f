"""Django for benchmark scripts: a throwaway PostgreSQL database and media folder.

    with bench_django("dermcurate_bench_ingest") as media_root:
        ...  # Django is set up, the database migrated, MEDIA_ROOT is a temporary folder

The database is made next to the one DATABASE_URL names (same server and
user), migrated, and dropped at the end, as is the media folder. Benchmarks
refuse SQLite: the numbers that matter are PostgreSQL's. Run them through
``scripts/with-test-services.sh`` when no server is at hand.
"""

from __future__ import annotations

import math
import os
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


def _server_url(database_url: str, name: str) -> str:
    parts = urlsplit(database_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin_connection(database_url: str):
    import psycopg2

    # The maintenance database exists on every server; CREATE/DROP DATABASE need autocommit.
    connection = psycopg2.connect(_server_url(database_url, "postgres"))
    connection.autocommit = True
    return connection


def _drop_database(database_url: str, name: str) -> None:
    connection = _admin_connection(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        connection.close()


@contextmanager
def bench_django(database_name: str, *, settings_module: str = "config.settings.test") -> Iterator[Path]:
    """Set Django up on a fresh, migrated PostgreSQL database and a temporary MEDIA_ROOT; remove both after."""
    database_url = os.environ.get("DATABASE_URL", "")
    if urlsplit(database_url).scheme not in ("postgres", "postgresql", "pgsql"):
        sys.exit(
            "Benchmarks run against PostgreSQL: set DATABASE_URL, or run through "
            "scripts/with-test-services.sh .venv/bin/python bench/<script>.py"
        )
    _drop_database(database_url, database_name)
    connection = _admin_connection(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{database_name}"')
    finally:
        connection.close()

    media_root = Path(tempfile.mkdtemp(prefix="dermcurate-bench-media-"))
    os.environ["DATABASE_URL"] = _server_url(database_url, database_name)
    os.environ["MEDIA_ROOT"] = str(media_root)
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    static_root = None
    try:
        import django

        django.setup()
        from django.conf import settings
        from django.core.management import call_command

        static_root = Path(settings.STATIC_ROOT)
        call_command("migrate", verbosity=0, interactive=False)
        yield media_root
    finally:
        if static_root is not None:  # Django got as far as setting up
            from django.db import connections

            connections.close_all()
        _drop_database(database_url, database_name)
        shutil.rmtree(media_root, ignore_errors=True)
        # The test settings make an empty static folder of their own in /tmp.
        if static_root is not None and static_root.name.startswith("dermcurate-static-"):
            shutil.rmtree(static_root, ignore_errors=True)
        os.environ["DATABASE_URL"] = database_url


def truncate(*models) -> None:
    """Empty the tables of `models` and every table that points at them (PostgreSQL TRUNCATE … CASCADE)."""
    from django.db import connection

    tables = ", ".join(connection.ops.quote_name(model._meta.db_table) for model in models)
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")


def machine_line() -> str:
    """One line saying where the numbers come from."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server_version = cursor.fetchone()[0]
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    return (
        f"{os.cpu_count()} CPUs, load average {load}; Python {platform.python_version()}, "
        f"PostgreSQL {server_version.split()[0]}"
    )


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (p50 = the median of an odd count)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(len(ordered) * fraction)) - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)
