"""The audit log is append-only, enforced by the database too."""

from django.db import migrations

POSTGRES_FORWARD = """
CREATE OR REPLACE FUNCTION dermcurate_refuse_audit_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER labeling_auditevent_append_only BEFORE UPDATE OR DELETE ON labeling_auditevent
    FOR EACH ROW EXECUTE FUNCTION dermcurate_refuse_audit_change();
CREATE TRIGGER labeling_review_no_delete BEFORE DELETE ON labeling_review
    FOR EACH ROW EXECUTE FUNCTION dermcurate_refuse_audit_change();
"""
POSTGRES_BACKWARD = """
DROP TRIGGER IF EXISTS labeling_review_no_delete ON labeling_review;
DROP TRIGGER IF EXISTS labeling_auditevent_append_only ON labeling_auditevent;
DROP FUNCTION IF EXISTS dermcurate_refuse_audit_change();
"""
SQLITE_FORWARD = [
    "CREATE TRIGGER labeling_auditevent_no_update BEFORE UPDATE ON labeling_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused'); END;",
    "CREATE TRIGGER labeling_auditevent_no_delete BEFORE DELETE ON labeling_auditevent "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused'); END;",
    "CREATE TRIGGER labeling_review_no_delete BEFORE DELETE ON labeling_review "
    "BEGIN SELECT RAISE(ABORT, 'reviews are never deleted'); END;",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS labeling_auditevent_no_update;",
    "DROP TRIGGER IF EXISTS labeling_auditevent_no_delete;",
    "DROP TRIGGER IF EXISTS labeling_review_no_delete;",
]


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_FORWARD:
            schema_editor.execute(statement)


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, params=None)
    elif vendor == "sqlite":
        for statement in SQLITE_BACKWARD:
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("labeling", "0001_initial")]

    operations = [migrations.RunPython(forward, backward)]
