"""The SQL of every template, compiled for SQLite and PostgreSQL, matches the stored snapshot
(tests/rules/snapshots/<template>.<vendor>.sql). Compiling needs no database connection: the
compiler is pure. After an intended change, refresh with UPDATE_SNAPSHOTS=1 and review the diff."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db.utils import ConnectionHandler

from customers.models import Customer
from rules import dsl
from rules.compiler import compile_node
from rules.templates import TEMPLATES
from tests.rules.conftest import NOW

SNAPSHOTS = Path(__file__).parent / "snapshots"
VIP_TAG_ID = 9001  # a fixed id so the snapshot of "has tag" is stable
VENDORS = {
    "sqlite": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"},
    "postgresql": {"ENGINE": "django.db.backends.postgresql", "NAME": "snapshots"},
}
_connections = ConnectionHandler({"default": VENDORS["sqlite"], **VENDORS})


def template_tree(key: str) -> dict:
    form = TEMPLATES[key]({})
    data = {name: field.initial for name, field in form.fields.items()}
    if key == "dormant_tagged":
        return {
            "all": [
                {"tag": VIP_TAG_ID, "op": "has"},
                {"attribute": "days_since_last_order", "op": "gte", "value": data["days"]},
            ]
        }
    if key == "rfm_segment":
        data["segment"] = "重要发展客户"
    form = TEMPLATES[key](data)
    assert form.is_valid(), form.errors
    return form.tree()


def compiled_sql(tree: dict, vendor: str) -> str:
    node = dsl.parse_tree(tree)
    query = Customer.objects.filter(compile_node(node, now=NOW)).order_by().values_list("pk").query
    sql, params = query.get_compiler(connection=_connections[vendor]).as_sql()
    lines = [
        sql.replace(" WHERE ", "\nWHERE ").replace(" AND ", "\n  AND ").replace(" OR ", "\n  OR ")
    ]
    lines += [f"-- ${i}: {param!r}" for i, param in enumerate(params, 1)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("key", TEMPLATES)
def test_template_sql_matches_snapshot(key, vendor):
    actual = compiled_sql(template_tree(key), vendor)
    path = SNAPSHOTS / f"{key}.{vendor}.sql"
    if os.environ.get("UPDATE_SNAPSHOTS") == "1" or not path.exists():
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8")
