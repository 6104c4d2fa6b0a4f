"""Backups: a consistent dump of the database plus a manifest of the storage keys with their sha256.

    backup_write(folder)    database.dump (pg_dump, custom format) or database.xml (dumpdata
                            on SQLite), and manifest.json: row counts per model and every
                            stored file the database refers to, with size and sha256.
    backup_restore(folder)  into an empty database; then the row counts are checked against
                            the manifest, and the stored files against their sha256.

On PostgreSQL the dump and the manifest see the same moment: the manifest is read inside a
REPEATABLE READ transaction whose snapshot pg_dump is given (--snapshot). On SQLite both are
read inside one transaction. The files themselves are not copied: the media volume or bucket
is backed up on its own, and the manifest says what it must hold.

Restoring loads rows as they were, so the audit log's append-only triggers and the frozen
snapshots' triggers (they refuse UPDATE and DELETE) are not in the way: pg_restore COPYs the
rows before it creates the triggers, and loaddata only inserts into an empty database.
"""

import glob
import hashlib
import io
import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import connection, models, transaction
from django.utils import timezone

MANIFEST = "manifest.json"
POSTGRES_DUMP = "database.dump"
# XML keeps microseconds; Django's JSON serializer cuts times to milliseconds.
SQLITE_DUMP = "database.xml"
FORMAT_VERSION = 1
# Rebuilt by `migrate` (content types, permissions) or not worth keeping (sessions).
NOT_DUMPED = ("contenttypes", "auth.permission", "sessions", "admin.logentry")


@dataclass
class RestoreReport:
    counts_checked: int = 0
    count_mismatches: dict[str, tuple[int, int]] = field(default_factory=dict)
    files_checked: int = 0
    files_missing: list[str] = field(default_factory=list)
    files_changed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.count_mismatches or self.files_missing or self.files_changed)


def _dumped_models() -> list[type[models.Model]]:
    skipped_apps = {label for label in NOT_DUMPED if "." not in label}
    skipped_models = {label for label in NOT_DUMPED if "." in label}
    return [
        model
        for model in apps.get_models()
        if model._meta.app_label not in skipped_apps
        and model._meta.label_lower not in skipped_models
        and not model._meta.proxy
        and model._meta.managed
    ]


def _row_counts() -> dict[str, int]:
    return {model._meta.label_lower: model._base_manager.count() for model in _dumped_models()}


def _storage_keys() -> list[str]:
    """Every file name the database refers to (FileFields of every model)."""
    keys: set[str] = set()
    for model in apps.get_models():
        for model_field in model._meta.concrete_fields:
            if isinstance(model_field, models.FileField):
                names = model._base_manager.exclude(**{model_field.attname: ""}).values_list(
                    model_field.attname, flat=True
                )
                keys.update(name for name in names if name)
    return sorted(keys)


def _file_digest(name: str) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    with default_storage.open(name, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _storage_manifest() -> tuple[list[dict], list[str]]:
    files, missing = [], []
    for name in _storage_keys():
        try:
            size, sha256 = _file_digest(name)
        except FileNotFoundError:
            missing.append(name)
            continue
        files.append({"key": name, "size": size, "sha256": sha256})
    return files, missing


def _pg_tool(name: str) -> str:
    """pg_dump / pg_restore: from DERMCURATE_PG_BIN_DIR, else PATH, else the newest Debian cluster's."""
    configured = settings.DERMCURATE_PG_BIN_DIR
    if configured:
        return str(Path(configured) / name)
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=lambda p: int(Path(p).parts[-3]))
    if not candidates:
        raise ValidationError(f"{name} is not installed (Debian: apt-get install postgresql-client).")
    return candidates[-1]


def _pg_command_env() -> tuple[list[str], dict[str, str]]:
    db = connection.settings_dict
    args = ["--host", db["HOST"] or "localhost", "--port", str(db["PORT"] or 5432), "--username", db["USER"]]
    env = {**os.environ, "PGPASSWORD": db["PASSWORD"] or ""}
    return args, env


def _check_folder_empty(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()):
        raise ValidationError(f"{folder} is not empty; a backup goes into a new or empty folder.")
    folder.mkdir(parents=True, exist_ok=True)


def backup_write(*, folder: Path) -> dict:
    """Write a backup into `folder` (new or empty); returns the manifest."""
    folder = Path(folder)
    _check_folder_empty(folder)
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise ValidationError(f"Backups support PostgreSQL and SQLite, not {vendor}.")
    with transaction.atomic():
        if vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SELECT pg_export_snapshot()")
                snapshot_id = cursor.fetchone()[0]
            args, env = _pg_command_env()
            dump = folder / POSTGRES_DUMP
            subprocess.run(  # noqa: S603  (our own settings, no shell)
                [_pg_tool("pg_dump"), *args, "--format=custom", "--no-owner", "--no-privileges",
                 f"--snapshot={snapshot_id}", f"--file={dump}", connection.settings_dict["NAME"]],
                env=env, check=True, capture_output=True, text=True,
            )  # fmt: skip
        else:
            dump = folder / SQLITE_DUMP
            call_command(
                "dumpdata",
                *[f"--exclude={label}" for label in NOT_DUMPED],
                "--natural-foreign",
                "--format=xml",
                f"--output={dump}",
                verbosity=0,
            )
        counts = _row_counts()
        files, missing = _storage_manifest()
    manifest = {
        "format": FORMAT_VERSION,
        "created_at": timezone.now().isoformat(),
        "database": {"vendor": vendor, "file": dump.name, "sha256": _local_digest(dump)},
        "counts": counts,
        "storage": files,
        "storage_missing_at_backup": missing,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, indent=1))
    return manifest


def _local_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _database_is_empty() -> bool:
    tables = connection.introspection.table_names()
    if not tables:
        return True
    if "django_migrations" not in tables:
        return False
    # Only what `migrate` makes on its own (roles, label classes, content types) may be there.
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    return not user_model._base_manager.exists()


def backup_restore(*, folder: Path, check_storage: bool = True) -> RestoreReport:
    """Restore the backup in `folder` into this (empty) database, then check it against the manifest."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST
    if not manifest_path.is_file():
        raise ValidationError(f"{folder} holds no {MANIFEST}: it is not a backup made by `manage.py backup`.")
    manifest = json.loads(manifest_path.read_text())
    dump = folder / manifest["database"]["file"]
    if _local_digest(dump) != manifest["database"]["sha256"]:
        raise ValidationError(f"{dump.name} does not match the sha256 in the manifest: the backup is damaged.")
    if manifest["database"]["vendor"] != connection.vendor:
        raise ValidationError(
            f"This backup is of a {manifest['database']['vendor']} database; DATABASE_URL is {connection.vendor}."
        )
    if not _database_is_empty():
        raise ValidationError("The database is not empty: restore into a new, empty database.")
    if connection.vendor == "postgresql":
        if connection.introspection.table_names():
            raise ValidationError(
                "Restore into a database without tables (do not run migrate first): pg_restore makes the schema."
            )
        connection.close()
        args, env = _pg_command_env()
        subprocess.run(  # noqa: S603  (our own settings, no shell)
            [_pg_tool("pg_restore"), *args, "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
             f"--dbname={connection.settings_dict['NAME']}", str(dump)],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
    else:
        call_command("migrate", interactive=False, verbosity=0)
        with transaction.atomic():
            call_command("loaddata", str(dump), verbosity=0, stdout=io.StringIO())
    report = RestoreReport()
    counts = _row_counts()
    for label, expected in manifest["counts"].items():
        report.counts_checked += 1
        if counts.get(label, 0) != expected:
            report.count_mismatches[label] = (expected, counts.get(label, 0))
    if check_storage:
        for entry in manifest["storage"]:
            report.files_checked += 1
            try:
                size, sha256 = _file_digest(entry["key"])
            except FileNotFoundError:
                report.files_missing.append(entry["key"])
                continue
            if (size, sha256) != (entry["size"], entry["sha256"]):
                report.files_changed.append(entry["key"])
    return report
