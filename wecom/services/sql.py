"""Rows sent to the database as one parameter, for the contact sync's and the outbox's set-based
writes (``INSERT … SELECT``, ``UPDATE … FROM``).

Building a model object per row and letting ``bulk_create`` prepare every field of it cost the
sync more than PostgreSQL's own work (docs/wecom.md#measured--实测). Here a page's rows go as one
JSON array of arrays (``json.dumps`` in C), unpacked by the database itself:
``jsonb_array_elements`` on PostgreSQL, ``json_each`` on SQLite, so the same statements serve the
demo and the test suite. One parameter also means no parameter limit (SQLite refuses more than
32,766).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from django.db import connection

Column = tuple[str, str]  # (name, PostgreSQL type: bigint, integer, text, timestamptz, jsonb…)


def is_postgresql() -> bool:
    return connection.vendor == "postgresql"


def when(value: datetime | None) -> Any:
    """A timestamp as the JSON rows carry it: ISO 8601 for PostgreSQL, the text Django stores
    on SQLite (so that comparing it with stored values is comparing like with like)."""
    if value is None:
        return None
    if is_postgresql():
        return value.isoformat()
    return connection.ops.adapt_datetimefield_value(value)


def param(value: datetime) -> Any:
    """A timestamp as a plain query parameter (adapted the way Django adapts it)."""
    return connection.ops.adapt_datetimefield_value(value)


def rows_source(columns: Sequence[Column], rows: Iterable[Sequence[Any]]) -> tuple[str, list]:
    """(``SELECT`` over ``rows`` with ``columns`` as its column names, its one parameter). Rows
    come out in the order given; a ``jsonb`` column carries a JSON value (an object, a list)."""
    payload = json.dumps(list(rows), ensure_ascii=False, separators=(",", ":"))
    if is_postgresql():
        picks = ", ".join(
            # A JSON null is SQL's NULL, as Django stores None in a JSONField.
            f"NULLIF(e->{i}, 'null'::jsonb) AS {name}"
            if kind == "jsonb"
            else f"(e->>{i})::{kind} AS {name}"
            for i, (name, kind) in enumerate(columns)
        )
        return f"SELECT {picks} FROM jsonb_array_elements(%s::jsonb) AS e", [payload]
    picks = ", ".join(
        f"json_extract(value, '$[{i}]') AS {name}" for i, (name, _k) in enumerate(columns)
    )
    return f"SELECT {picks} FROM json_each(%s)", [payload]


def greatest(a: str, b: str) -> str:
    """The later of two non-null SQL values (SQLite's two-argument MAX is its GREATEST)."""
    return f"GREATEST({a}, {b})" if is_postgresql() else f"MAX({a}, {b})"


def insert_rows(
    table: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    *,
    constants: dict[str, Any] | None = None,
    ignore_conflicts: bool = False,
    returning: Sequence[str] = (),
) -> Any:
    """``INSERT INTO table … SELECT`` of ``rows`` (``columns`` named as the table's), with
    ``constants`` ({column: value}) the same on every row; a row breaking a unique constraint is
    skipped if ``ignore_conflicts``. Returns the ``returning`` columns of the rows inserted, or
    how many there were."""
    if not rows:
        return [] if returning else 0
    source, params = rows_source(columns, rows)
    constants = constants or {}
    names = [name for name, _k in columns] + list(constants)
    values = [f"p.{name}" for name, _k in columns] + ["%s"] * len(constants)
    statement = (
        f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(values)} FROM ({source}) AS p"
    )
    if ignore_conflicts:  # WHERE true: SQLite's parser needs it before an upsert clause
        statement += " WHERE true ON CONFLICT DO NOTHING"
    if returning:
        statement += f" RETURNING {', '.join(returning)}"
    with connection.cursor() as cursor:
        cursor.execute(statement, [*constants.values(), *params])
        return cursor.fetchall() if returning else max(cursor.rowcount, 0)


def update_rows(
    table: str,
    columns: Sequence[Column],
    rows: Sequence[Sequence[Any]],
    *,
    constants: dict[str, Any] | None = None,
) -> int:
    """``UPDATE table … FROM`` ``rows``, whose first column is the primary key ``id``: each row
    sets the other ``columns`` of its table row, and ``constants`` on all of them."""
    if not rows:
        return 0
    source, params = rows_source(columns, rows)
    constants = constants or {}
    sets = [f"{name} = p.{name}" for name, _k in columns[1:]] + [f"{c} = %s" for c in constants]
    statement = f"UPDATE {table} SET {', '.join(sets)} FROM ({source}) AS p WHERE {table}.id = p.id"
    with connection.cursor() as cursor:
        cursor.execute(statement, [*constants.values(), *params])
        return max(cursor.rowcount, 0)
