"""Erasure of customers (PIPL right to deletion) may redact their audit entries; nothing else may
change the audit log.

Design (why not a mutable side table of snapshots): every existing writer and reader of the
audit log stays as it is, and the redaction is one statement at the moment of erasure.

- The row trigger's new function ``tagging_audit_guard`` still refuses every DELETE and every
  UPDATE, except an UPDATE made while the transaction-local setting ``tagdesk.audit_redaction``
  is on *and* leaving who/when/what (id, created_at, actor, action, source, customer, tag, group,
  rule) unchanged: a redaction can blank texts, never rewrite history.
- Only ``tagging_audit_redact_customers(ids, keys, marker)`` turns that setting on, through its
  own ``SET`` clause (scoped to the call, undone when it returns), and it is SECURITY DEFINER:
  in production, where the application's role neither owns tagging_auditentry nor holds UPDATE
  on it (README, "Database roles"), this function, run with its owner's rights, is the only way
  to change a row at all. The function redacts object_repr and reason of the customer's
  ``customer.*`` entries and the identifying keys of before/after in all its entries.
- The trigger keeps its name; the previous function ``tagging_audit_append_only`` is left in
  place (other triggers may use it).

SQLite and other databases have no trigger; there the service redacts the same fields itself.
"""

from django.db import migrations, models

CREATE = """
CREATE OR REPLACE FUNCTION tagging_audit_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND current_setting('tagdesk.audit_redaction', true) = 'on'
       AND ROW(NEW.id, NEW.created_at, NEW.actor_id, NEW.action, NEW.source, NEW.customer_id,
               NEW.tag_id, NEW.group_id, NEW.rule_id)
           IS NOT DISTINCT FROM
           ROW(OLD.id, OLD.created_at, OLD.actor_id, OLD.action, OLD.source, OLD.customer_id,
               OLD.tag_id, OLD.group_id, OLD.rule_id)
    THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'tagging_auditentry is append-only';
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS tagging_auditentry_append_only ON tagging_auditentry;
CREATE TRIGGER tagging_auditentry_append_only
    BEFORE UPDATE OR DELETE ON tagging_auditentry
    FOR EACH ROW EXECUTE FUNCTION tagging_audit_guard();

CREATE OR REPLACE FUNCTION tagging_audit_redact_json(doc jsonb, keys text[], marker text)
RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN doc IS NULL OR jsonb_typeof(doc) <> 'object' THEN doc
        ELSE doc || COALESCE(
            (SELECT jsonb_object_agg(e.key, to_jsonb(marker))
             FROM jsonb_each(doc) AS e
             WHERE e.key = ANY(keys) AND e.value NOT IN ('null'::jsonb, '""'::jsonb)),
            '{}'::jsonb)
    END
$$;

CREATE OR REPLACE FUNCTION tagging_audit_redact_customers(
    customer_ids bigint[], keys text[], marker text
) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, public
SET tagdesk.audit_redaction = 'on'
AS $$
DECLARE
    changed bigint;
BEGIN
    UPDATE tagging_auditentry SET
        object_repr = CASE WHEN starts_with(action, 'customer.') THEN marker ELSE object_repr END,
        reason = CASE WHEN starts_with(action, 'customer.') AND reason <> '' THEN marker ELSE reason END,
        before = tagging_audit_redact_json(before, keys, marker),
        after = tagging_audit_redact_json(after, keys, marker)
    WHERE customer_id = ANY(customer_ids);
    GET DIAGNOSTICS changed = ROW_COUNT;
    RETURN changed;
END;
$$;
"""

DROP = """
DROP FUNCTION IF EXISTS tagging_audit_redact_customers(bigint[], text[], text);
DROP FUNCTION IF EXISTS tagging_audit_redact_json(jsonb, text[], text);
DROP TRIGGER IF EXISTS tagging_auditentry_append_only ON tagging_auditentry;
CREATE TRIGGER tagging_auditentry_append_only
    BEFORE UPDATE OR DELETE ON tagging_auditentry
    FOR EACH ROW EXECUTE FUNCTION tagging_audit_append_only();
DROP FUNCTION IF EXISTS tagging_audit_guard();
"""


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(CREATE)


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP)


class Migration(migrations.Migration):
    dependencies = [
        ("tagging", "0006_audit_log_refuses_truncate"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
        migrations.AlterField(
            model_name="auditentry",
            name="action",
            field=models.CharField(
                choices=[
                    ("assignment.added", "tag added to customer"),
                    ("assignment.removed", "tag removed from customer"),
                    ("tag.created", "tag created"),
                    ("tag.updated", "tag changed"),
                    ("tag.approved", "tag approved"),
                    ("tag.rejected", "tag rejected"),
                    ("tag.archived", "tag archived"),
                    ("tag.restored", "tag restored"),
                    ("tag.merged", "tag merged"),
                    ("tag.deleted", "tag deleted"),
                    ("group.created", "group created"),
                    ("group.updated", "group changed"),
                    ("group.deleted", "group deleted"),
                    ("permission.granted", "permission granted"),
                    ("permission.revoked", "permission revoked"),
                    ("rule.created", "rule created"),
                    ("rule.updated", "rule changed"),
                    ("rule.deleted", "rule deleted"),
                    ("customer.created", "customer created"),
                    ("customer.updated", "customer changed"),
                    ("customer.erased", "customers erased"),
                ],
                max_length=32,
                verbose_name="action",
            ),
        ),
    ]
