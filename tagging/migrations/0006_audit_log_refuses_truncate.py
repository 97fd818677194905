"""The audit log refuses TRUNCATE too (0002 covers UPDATE and DELETE, which TRUNCATE bypasses).

A statement-level BEFORE TRUNCATE trigger raises unless the transaction has set
``tagdesk.audit_truncate`` to ``allow`` (``tagging.models.allow_audit_truncate``): only the demo's
``seed_demo --reset`` and the test suite's flush do that. The trigger stops accidents; the database
roles of docs/operations.md ("Database roles") stop everyone else.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION tagging_audit_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('tagdesk.audit_truncate', true) IS DISTINCT FROM 'allow' THEN
        RAISE EXCEPTION 'tagging_auditentry is append-only (TRUNCATE refused)';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER tagging_auditentry_no_truncate
    BEFORE TRUNCATE ON tagging_auditentry
    FOR EACH STATEMENT EXECUTE FUNCTION tagging_audit_refuse_truncate();
"""
DROP = """
DROP TRIGGER IF EXISTS tagging_auditentry_no_truncate ON tagging_auditentry;
DROP FUNCTION IF EXISTS tagging_audit_refuse_truncate();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("tagging", "0005_hygiene_report_and_admin_pages")]
    operations = [migrations.RunPython(forwards, backwards)]
