"""The audit log moved to core (the bottom layer): copy its rows there, then drop labeling's table."""

from django.db import migrations

COPY = (
    "INSERT INTO core_auditevent (id, actor_id, action, image_id, target, before, after, reason, created_at) "
    "SELECT id, actor_id, action, image_id, target, before, after, '', created_at FROM labeling_auditevent"
)
POSTGRES_SEQUENCE = (
    "SELECT setval(pg_get_serial_sequence('core_auditevent', 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) "
    "FROM core_auditevent"
)


def copy_events(apps, schema_editor):
    schema_editor.execute(COPY)
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_SEQUENCE)


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0002_audit_append_only"),
        ("core", "0001_audit_log"),
    ]

    operations = [
        migrations.RunPython(copy_events, migrations.RunPython.noop),
        migrations.DeleteModel(name="AuditEvent"),
    ]
