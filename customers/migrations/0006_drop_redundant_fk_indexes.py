"""Drop the single-column indexes Django made for ``Customer.department`` and ``Customer.owner``:
the composites ``customer_department (department_id, id)`` and ``customer_owner (owner_id, id)``
lead with the same column and serve every lookup, the scope filters and the SET NULL of a deleted
department or user. Each redundant index costs a write on every customer insert and update.

On PostgreSQL the indexes go CONCURRENTLY (no lock that blocks writes to the customers table),
hence a non-atomic migration; the reverse rebuilds them the same way."""

from django.conf import settings
from django.db import migrations, models

INDEXES = {  # Django's generated names: deterministic for (table, column)
    "customers_customer_department_id_738c8343": ("customers_customer", "department_id"),
    "customers_customer_owner_id_fbb2798e": ("customers_customer", "owner_id"),
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


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ("customers", "0005_import_job_lease"),
        ("permissions", "0005_device_tokens"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="customer",
                    name="department",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=models.deletion.SET_NULL,
                        related_name="customers",
                        to="permissions.department",
                        verbose_name="department",
                    ),
                ),
                migrations.AlterField(
                    model_name="customer",
                    name="owner",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=models.deletion.SET_NULL,
                        related_name="owned_customers",
                        to=settings.AUTH_USER_MODEL,
                        verbose_name="owner",
                    ),
                ),
            ],
            database_operations=[migrations.RunPython(drop_indexes, create_indexes)],
        ),
    ]
