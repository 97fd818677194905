"""Drop the single-column indexes Django made for foreign keys that a composite index already
leads with:

- tagging_tagassignment: customer_id (unique ``assignment_unique_customer_tag (customer_id,
  tag_id)``), tag_id (``assignment_tag_customer (tag_id, customer_id)``), rule_id (partial
  ``assignment_rule (rule_id, tag_id) WHERE rule_id IS NOT NULL``: ``rule_id = x`` implies the
  predicate, so it serves the rule's lookups and the SET NULL when a rule is deleted);
- tagging_auditentry: customer_id (``audit_customer_time``), tag_id (``audit_tag_time``).

They cost a write on every assignment and audit row (the import and rule runs write millions)
and serve nothing the composites don't. On PostgreSQL they go CONCURRENTLY (no lock blocking
writes), hence a non-atomic migration; the reverse rebuilds them the same way."""

from django.db import migrations, models

INDEXES = {  # Django's generated names: deterministic for (table, column)
    "tagging_tagassignment_customer_id_e232b752": ("tagging_tagassignment", "customer_id"),
    "tagging_tagassignment_tag_id_e21f67a2": ("tagging_tagassignment", "tag_id"),
    "tagging_tagassignment_rule_id_af74db4b": ("tagging_tagassignment", "rule_id"),
    "tagging_auditentry_customer_id_ef13bb91": ("tagging_auditentry", "customer_id"),
    "tagging_auditentry_tag_id_c4e15366": ("tagging_auditentry", "tag_id"),
}


def drop_indexes(apps, schema_editor):
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    for name in INDEXES:
        schema_editor.execute(f"DROP INDEX{concurrently} IF EXISTS {name}")


def create_indexes(apps, schema_editor):
    concurrently = " CONCURRENTLY" if schema_editor.connection.vendor == "postgresql" else ""
    for name, (table, column) in INDEXES.items():
        schema_editor.execute(
            f"CREATE INDEX{concurrently} IF NOT EXISTS {name} ON {table} ({column})"
        )


def _fk(**kwargs):
    return models.ForeignKey(db_index=False, **kwargs)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("rules", "0005_rule_run_lease"),
        ("tagging", "0010_followers_reviews_and_accuracy_checks"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditentry",
                    name="customer",
                    field=_fk(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="audit_entries",
                        to="customers.customer",
                        verbose_name="customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="auditentry",
                    name="tag",
                    field=_fk(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="audit_entries",
                        to="tagging.tag",
                        verbose_name="tag",
                    ),
                ),
                migrations.AlterField(
                    model_name="tagassignment",
                    name="customer",
                    field=_fk(
                        on_delete=models.deletion.CASCADE,
                        related_name="assignments",
                        to="customers.customer",
                    ),
                ),
                migrations.AlterField(
                    model_name="tagassignment",
                    name="rule",
                    field=_fk(
                        blank=True,
                        null=True,
                        on_delete=models.deletion.SET_NULL,
                        related_name="assignments",
                        to="rules.rule",
                    ),
                ),
                migrations.AlterField(
                    model_name="tagassignment",
                    name="tag",
                    field=_fk(
                        on_delete=models.deletion.CASCADE,
                        related_name="assignments",
                        to="tagging.tag",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, create_indexes)],
        ),
    ]
