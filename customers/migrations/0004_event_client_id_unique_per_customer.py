"""``client_event_id`` unique per customer instead of across all customers: an event another
department's client sent with the same id for another customer was silently dropped.

The new unique index goes in before the old constraint goes, so ids stay unique per customer
throughout; on PostgreSQL it is built CONCURRENTLY (the events table is the biggest: no lock
that blocks ingest while it builds), hence a non-atomic migration."""

from django.db import migrations, models

CONSTRAINT = models.UniqueConstraint(
    condition=models.Q(("client_event_id__isnull", False)),
    fields=("customer", "client_event_id"),
    name="event_client_id_per_customer",
)


def add_unique_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS event_client_id_per_customer "
            "ON customers_customerevent (customer_id, client_event_id) "
            "WHERE client_event_id IS NOT NULL"
        )
    else:
        schema_editor.add_constraint(apps.get_model("customers", "CustomerEvent"), CONSTRAINT)


def drop_unique_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX CONCURRENTLY IF EXISTS event_client_id_per_customer")
    else:
        schema_editor.remove_constraint(apps.get_model("customers", "CustomerEvent"), CONSTRAINT)


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("customers", "0003_import_job"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AddConstraint(model_name="customerevent", constraint=CONSTRAINT)
            ],
            database_operations=[migrations.RunPython(add_unique_index, drop_unique_index)],
        ),
        migrations.AlterField(
            model_name="customerevent",
            name="client_event_id",
            field=models.CharField(
                blank=True, max_length=64, null=True, verbose_name="client event id"
            ),
        ),
    ]
