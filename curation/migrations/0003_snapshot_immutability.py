"""Frozen snapshots, enforced by the database itself (the service and the
models refuse too, but a raw UPDATE or DELETE must not get through either).

TRUNCATE stays possible on PostgreSQL: it is how an operator (or the test
runner) wipes a whole database, not a change to one snapshot."""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION dermcurate_refuse_frozen_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'snapshot data is frozen: % on % refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER curation_snapshot_frozen BEFORE UPDATE OR DELETE ON curation_snapshot
    FOR EACH ROW EXECUTE FUNCTION dermcurate_refuse_frozen_change();
CREATE TRIGGER curation_snapshotitem_frozen BEFORE UPDATE OR DELETE ON curation_snapshotitem
    FOR EACH ROW EXECUTE FUNCTION dermcurate_refuse_frozen_change();
"""
POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS curation_snapshotitem_frozen ON curation_snapshotitem;
DROP TRIGGER IF EXISTS curation_snapshot_frozen ON curation_snapshot;
DROP FUNCTION IF EXISTS dermcurate_refuse_frozen_change();
"""
SQLITE_FORWARD = [
    f"CREATE TRIGGER {table}_frozen_{op.lower()} BEFORE {op} ON {table} "
    f"BEGIN SELECT RAISE(ABORT, 'snapshot data is frozen: {op} on {table} refused'); END;"
    for table in ("curation_snapshot", "curation_snapshotitem")
    for op in ("UPDATE", "DELETE")
]
SQLITE_BACKWARD = [
    f"DROP TRIGGER IF EXISTS {table}_frozen_{op.lower()};"
    for table in ("curation_snapshot", "curation_snapshotitem")
    for op in ("UPDATE", "DELETE")
]


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)
    elif schema_editor.connection.vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("curation", "0002_label_classes")]

    operations = [migrations.RunPython(forward, backward)]
