"""backup / restore: a populated instance round-trips (row counts, the audit log, snapshot content
hashes, stored files), on PostgreSQL through pg_dump and on SQLite through dumpdata."""

import io
import json
import subprocess
import sys

import psycopg2
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.roles import Role
from core.services.audit import audit_record
from labeling.services.queue import review_queue_next
from labeling.services.reviews import review_submit
from tests.conftest import REPO_ROOT, make_user, subprocess_env
from tests.factories import ImageFactory
from tests.samples import labeled_demo_snapshot

# What the comparison reads from a database, the same code on both sides.
STATE = r"""
import json
from django.apps import apps
from core.models import AuditEvent
from curation.models import Snapshot
from curation.services.snapshots import content_hash
from core.services.backup import _dumped_models
counts = {m._meta.label_lower: m._base_manager.count() for m in _dumped_models()}
audit = [[e.pk, e.actor_id, e.action, e.target, e.image_id, e.before, e.after, e.reason, e.created_at.isoformat()]
         for e in AuditEvent.objects.order_by("pk")]
snapshots = [[s.pk, s.name, s.content_hash,
              content_hash([(i.image.sha256, i.label.code, i.split) for i in s.items.select_related("image", "label")])]
             for s in Snapshot.objects.order_by("pk")]
print(json.dumps({"counts": counts, "audit": audit, "snapshots": snapshots}))
"""


UPDATE_AUDIT_LOG = (
    "from django.db import connection; connection.cursor().execute('UPDATE core_auditevent SET reason = 1')"
)


def _state(env: dict[str, str]) -> dict:
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", STATE],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    return json.loads(out.strip().splitlines()[-1])


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def _populate(tmp_path) -> None:
    reader = make_user("backup-reader", Role.REVIEWER)
    make_user("backup-curator", Role.CURATOR)
    snapshot = labeled_demo_snapshot(
        tmp_path / "drawn", name="backup-v1", per_class=4, size=(64, 64), classes=[1, 2], ratios=[0.5, 0.25, 0.25]
    )
    ImageFactory()
    (lease,) = review_queue_next(reader=reader)  # a reader decides only what the queue gave them
    review_submit(reader=reader, image_id=lease.image_id, label_code="eczema")
    audit_record(actor=reader, action="test_event", target="image:1", before={"a": 1}, after={"a": 2}, reason="ü")
    assert snapshot.item_count > 0


@pytest.mark.django_db(transaction=True)
def test_a_postgresql_backup_restores_into_an_empty_database_with_everything_equal(tmp_path):
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        pytest.skip("the pg_dump path needs PostgreSQL (scripts/with-test-services.sh starts one)")
    _populate(tmp_path)
    source_env = subprocess_env()
    before = _state(source_env)
    folder = tmp_path / "backup"

    call_command("backup", str(folder), stdout=io.StringIO())

    manifest = json.loads((folder / "manifest.json").read_text())
    assert (folder / "database.dump").stat().st_size > 0
    assert manifest["counts"]["curation.image"] == before["counts"]["curation.image"]
    image_files = [entry for entry in manifest["storage"] if entry["key"].startswith(("originals/", "sanitized/"))]
    assert image_files and all(len(entry["sha256"]) == 64 for entry in manifest["storage"])
    with pytest.raises(CommandError, match="not empty"):
        call_command("backup", str(folder), stdout=io.StringIO())

    db = settings.DATABASES["default"]
    target_name = f"{db['NAME']}_restored"
    admin = psycopg2.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], password=db["PASSWORD"], dbname="postgres"
    )
    admin.autocommit = True
    try:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{target_name}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{target_name}"')
        target_env = {**source_env, "DATABASE_URL": source_env["DATABASE_URL"].rsplit("/", 1)[0] + f"/{target_name}"}

        restored = _manage(target_env, "restore", str(folder), "--json")
        again = _manage(target_env, "restore", str(folder))

        assert restored.returncode == 0, restored.stderr
        summary = json.loads(restored.stdout.strip().splitlines()[-1])
        assert summary["ok"] and summary["files_checked"] == len(manifest["storage"])
        after = _state(target_env)
        assert after["counts"] == before["counts"]
        assert after["audit"] == before["audit"]
        assert after["snapshots"] == before["snapshots"]
        assert all(stored == recomputed for _, _, stored, recomputed in after["snapshots"])
        assert again.returncode != 0 and "not empty" in again.stderr
        # The restored database keeps its guards: the audit log is still append-only.
        changed = _manage(target_env, "shell", "-c", UPDATE_AUDIT_LOG)
        assert changed.returncode != 0 and "append-only" in changed.stderr
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{target_name}" WITH (FORCE)')
        admin.close()


SQLITE_SEED = r"""
from accounts.services import user_create_or_update
from core.services.audit import audit_record
from labeling.services.queue import review_queue_next
from labeling.services.reviews import review_submit
from tests.factories import ImageFactory
reader, _ = user_create_or_update(username="lite-reader", role="reviewer", password="a long test pass phrase")
ImageFactory.create_batch(3)
lease = review_queue_next(reader=reader)[0]
review_submit(reader=reader, image_id=lease.image_id, label_code="melanoma")
audit_record(actor=reader, action="test_event", target="x", after={"ok": True})
"""


def test_a_sqlite_backup_round_trips_through_dumpdata(tmp_path):
    base = {**subprocess_env(), "MEDIA_ROOT": str(tmp_path / "media")}
    source = {**base, "DATABASE_URL": f"sqlite:///{tmp_path / 'source.sqlite3'}"}
    target = {**base, "DATABASE_URL": f"sqlite:///{tmp_path / 'target.sqlite3'}"}
    for step in (("migrate", "--noinput", "-v", "0"), ("shell", "-c", SQLITE_SEED)):
        assert _manage(source, *step).returncode == 0
    before = _state(source)

    backed_up = _manage(source, "backup", str(tmp_path / "backup"), "--json")
    restored = _manage(target, "restore", str(tmp_path / "backup"), "--json", "--skip-storage-check")

    assert backed_up.returncode == 0, backed_up.stderr
    assert (tmp_path / "backup" / "database.xml").is_file()
    assert restored.returncode == 0, restored.stderr
    assert json.loads(restored.stdout.strip().splitlines()[-1])["ok"]
    after = _state(target)
    assert after["counts"] == before["counts"]
    for restored_event, event in zip(after["audit"], before["audit"], strict=True):
        assert restored_event == event
    assert before["counts"]["labeling.review"] == 1 and before["audit"]
