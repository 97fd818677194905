from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION tagging_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'tagging_auditentry is append-only';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER tagging_auditentry_append_only
    BEFORE UPDATE OR DELETE ON tagging_auditentry
    FOR EACH ROW EXECUTE FUNCTION tagging_audit_append_only();
"""
DROP = """
DROP TRIGGER IF EXISTS tagging_auditentry_append_only ON tagging_auditentry;
DROP FUNCTION IF EXISTS tagging_audit_append_only();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [("tagging", "0001_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
