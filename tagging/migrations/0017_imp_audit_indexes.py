"""The audit log's indexes are those a query of the app reads; every other one cost a write on
each of the millions of rows imports and rule runs append:

- ``actor_id``: dropped. No query filters or orders the audit log by who acted (the admin
  shows the actor beside each entry; users are never deleted through it: the reference has no
  database constraint and ``on_delete`` is DO_NOTHING).
- ``rule_id``: only rule runs write one; now a partial index ``audit_rule`` over those rows
  (``WHERE rule_id IS NOT NULL``: ``rule_id = x`` implies the predicate), so a rule's history
  stays one index scan away while an import's or an employee's entries skip it.

Kept: ``audit_customer_time`` (a customer's timeline, the admin's customer filter),
``audit_tag_time`` (a tag's history, hygiene's unused tags, the admin's tag filter),
``audit_action_time`` (the admin's action filter), ``created_at`` (the admin's default order,
newest first), ``group_id`` (the admin's group filter and a non-admin's visible groups).

On PostgreSQL both go CONCURRENTLY (no lock blocking writes), hence a non-atomic migration; the
reverse rebuilds the originals the same way."""

from django.db import migrations, models

ACTOR_INDEX = "tagging_auditentry_actor_id_44a2f68b"  # Django's deterministic names
RULE_INDEX = "tagging_auditentry_rule_id_146a7c5b"


def _concurrently(schema_editor) -> str:
    return " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""


def forwards(apps, schema_editor):
    c = _concurrently(schema_editor)
    schema_editor.execute(
        f"CREATE INDEX{c} IF NOT EXISTS audit_rule ON tagging_auditentry (rule_id)"
        " WHERE rule_id IS NOT NULL"
    )
    schema_editor.execute(f"DROP INDEX{c} IF EXISTS {RULE_INDEX}")
    schema_editor.execute(f"DROP INDEX{c} IF EXISTS {ACTOR_INDEX}")


def backwards(apps, schema_editor):
    c = _concurrently(schema_editor)
    schema_editor.execute(
        f"CREATE INDEX{c} IF NOT EXISTS {ACTOR_INDEX} ON tagging_auditentry (actor_id)"
    )
    schema_editor.execute(f"CREATE INDEX{c} IF NOT EXISTS {RULE_INDEX} ON tagging_auditentry (rule_id)")
    schema_editor.execute(f"DROP INDEX{c} IF EXISTS audit_rule")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("rules", "0007_realtime_mode_dirty_customers_batches"),
        ("tagging", "0016_wce_lock_audit_actions"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditentry",
                    name="actor",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to="permissions.user",
                        verbose_name="who",
                    ),
                ),
                migrations.AlterField(
                    model_name="auditentry",
                    name="rule",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="audit_entries",
                        to="rules.rule",
                        verbose_name="rule",
                    ),
                ),
                migrations.AddIndex(
                    model_name="auditentry",
                    index=models.Index(
                        condition=models.Q(("rule__isnull", False)),
                        fields=["rule"],
                        name="audit_rule",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(forwards, backwards)],
        ),
    ]
