"""A GIN index on the customers a CRM webhook delivery names (``change -> 'customers'``).

A customer erasure (``wecom.services.erasure.redact_deliveries``) reads the deliveries naming
the erased customers with ``(change -> 'customers') ?| ARRAY[<ids>]``: without an index that is
a scan of every delivery ever written. The index is on that exact expression with the default
``jsonb_ops`` class, which answers ``?|`` (key existence); ``jsonb_path_ops`` would not: it
indexes paths to values only, and the question is which keys exist.

PostgreSQL only, built ``CONCURRENTLY`` (deliveries keep being written meanwhile), hence a
non-atomic migration. Not in the model's ``Meta`` (SQLite has no GIN): SQLite reads the few
deliveries of a small installation with its ``json_type`` test, as before.
"""

from django.db import migrations

INDEX = "webhookdelivery_customers"


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON wecom_webhookdelivery "
        "USING gin ((change -> 'customers'))"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    atomic = False

    dependencies = [
        ('wecom', '0004_wc_delay'),
    ]

    operations = [
        migrations.RunPython(create_index, drop_index, elidable=False),
    ]
