"""Foreign keys are served by the composite indexes that lead with them; the single-column
indexes Django would add beside those are dropped (tagging 0010, customers 0006): each cost a
write per row and served nothing the composite doesn't."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.django_db

COLUMNS = {
    "tagging_tagassignment": ["customer_id", "tag_id", "rule_id"],
    "tagging_auditentry": ["customer_id", "tag_id"],
    "customers_customer": ["department_id", "owner_id"],
}


def index_columns(table: str) -> dict[str, list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return {n: c["columns"] for n, c in constraints.items() if c["index"] or c["unique"]}


@pytest.mark.parametrize("table", COLUMNS)
def test_each_foreign_key_leads_exactly_one_index_and_none_is_redundant(table):
    indexes = index_columns(table)
    for column in COLUMNS[table]:
        leading = [name for name, cols in indexes.items() if cols[0] == column]
        assert leading, f"{table}.{column} leads no index"
        assert [column] not in [indexes[name] for name in leading], (
            f"{table}.{column} still has a single-column index beside a composite"
        )


def test_the_audit_log_keeps_only_the_indexes_a_query_reads():
    """tagging 0017: nothing reads the log by actor, and only rule runs write a rule, so an
    import's or an employee's entry no longer writes either index."""
    indexes = index_columns("tagging_auditentry")
    assert not [name for name, cols in indexes.items() if cols[0] == "actor_id"]
    assert [cols for name, cols in indexes.items() if cols[0] == "rule_id"] == [["rule_id"]]
    for columns in (["customer_id", "created_at"], ["tag_id", "created_at"], ["created_at"]):
        assert columns in indexes.values(), f"{columns}: read by the audit pages"
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT indexdef FROM pg_indexes WHERE indexname = 'audit_rule'")
            (definition,) = cursor.fetchone()
        assert definition.endswith("WHERE (rule_id IS NOT NULL)")
