"""The two writers behind ``seed_demo`` (see ``demo.seed``): chunks of row tuples, keyed by
table, in the column order that ``tables`` gives.

- :class:`CopyWriter`, PostgreSQL: binary ``COPY``, with the target tables' secondary indexes,
  unique and foreign-key constraints and user triggers set aside during the load and restored
  from their saved definitions afterwards, all in the caller's transaction.
- :class:`OrmWriter`, any database: ``bulk_create``.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connection

from customers.models import Customer

# chunk key -> (model, column names)
Tables = dict[str, tuple[Any, tuple[str, ...]]]


class OrmWriter:
    """Any database: ``bulk_create`` per chunk."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables

    def begin(self) -> None:
        pass

    def write(self, chunk: dict[str, list[tuple]]) -> None:
        for key, rows in chunk.items():
            model, columns = self.tables[key]
            model.objects.bulk_create(
                [model(**dict(zip(columns, row, strict=True))) for row in rows], batch_size=500
            )

    def finish(self) -> None:
        pass


# Binary COPY types by Django field type (binary COPY skips the server's text parsing).
_COPY_TYPES = {
    "AutoField": "int4",
    "BigAutoField": "int8",
    "BigIntegerField": "int8",
    "IntegerField": "int4",
    "PositiveIntegerField": "int4",
    "PositiveSmallIntegerField": "int2",
    "SmallIntegerField": "int2",
    "CharField": "varchar",
    "TextField": "text",
    "DateTimeField": "timestamptz",
    "DecimalField": "numeric",
    "JSONField": "jsonb",
    "BooleanField": "bool",
}


def _copy_types(model, columns: tuple[str, ...]) -> list[str]:
    fields = {f.column: f for f in model._meta.concrete_fields}
    types = []
    for column in columns:
        field = fields[column]
        target = field.target_field if field.is_relation else field
        types.append(_COPY_TYPES[target.get_internal_type()])
    return types


class CopyWriter:
    """PostgreSQL: binary ``COPY`` per chunk. The bulk tables' secondary indexes, unique and
    foreign-key constraints are dropped before the load and rebuilt from their saved definitions
    after it, inside the caller's transaction (DDL is transactional: a failure restores them)."""

    def __init__(self, tables: Tables) -> None:
        self.tables = tables
        self.constraints: list[tuple[str, str, str]] = []
        self.indexes: list[str] = []
        self._json: dict[int, tuple[Any, str]] = {}

    def _dumps(self, value: Any) -> str:
        # JSON values come from small pools of shared dicts: serialise each object once.
        cached = self._json.get(id(value))
        if cached is None or cached[0] is not value:
            cached = (value, json.dumps(value, ensure_ascii=False))
            self._json[id(value)] = cached
        return cached[1]

    def begin(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            cursor.execute("SET LOCAL synchronous_commit = off")
            # Run the deferred FK checks of the rows written so far: ALTER TABLE refuses tables
            # with pending trigger events.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for model, _columns in self.tables.values():
                table = model._meta.db_table
                cursor.execute(
                    "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
                    " WHERE conrelid = %s::regclass AND contype IN ('f', 'u')",
                    [table],
                )
                for name, definition in cursor.fetchall():
                    self.constraints.append((table, name, definition))
                    cursor.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
                cursor.execute(
                    "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)"
                    " FROM pg_index i WHERE i.indrelid = %s::regclass AND NOT i.indisprimary"
                    " AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
                    "  WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)",
                    [table],
                )
                for name, definition in cursor.fetchall():
                    self.indexes.append(definition)
                    cursor.execute(f"DROP INDEX {name}")
                # Triggers that maintain derived data (the segment bitmap index) are off for the
                # load; ``rebuild_segment_index`` rebuilds that data from the tables afterwards.
                cursor.execute(f'ALTER TABLE "{table}" DISABLE TRIGGER USER')

    def write(self, chunk: dict[str, list[tuple]]) -> None:
        from psycopg.types.json import set_json_dumps

        with connection.cursor() as cursor:
            raw = cursor.cursor  # the psycopg cursor under Django's wrapper
            set_json_dumps(self._dumps, context=raw)
            for key, rows in chunk.items():
                if not rows:
                    continue
                model, columns = self.tables[key]
                sql = (
                    f'COPY "{model._meta.db_table}" ({", ".join(columns)})'
                    " FROM STDIN (FORMAT BINARY)"
                )
                with raw.copy(sql) as copy:
                    copy.set_types(_copy_types(model, columns))
                    write_row = copy.write_row
                    for row in rows:
                        write_row(row)

    def finish(self) -> None:
        with connection.cursor() as cursor:
            for model, _columns in self.tables.values():
                cursor.execute(f'ALTER TABLE "{model._meta.db_table}" ENABLE TRIGGER USER')
            for definition in self.indexes:
                cursor.execute(definition)
            for table, name, definition in self.constraints:
                cursor.execute(f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" {definition}')
            table = Customer._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f' GREATEST((SELECT MAX(id) FROM "{table}"), 1))'
            )
