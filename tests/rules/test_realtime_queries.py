"""Statements per real-time batch (rules.realtime.evaluate): a fixed number whatever the batch's
number of customers, and on PostgreSQL whatever its number of rules that read no other rule's
tag: the customers' lock, the rules' load and lock, the exclusive groups' lock, the session
settings, one statement per level of rules and three to finish (four when an exclusive group's
newcomer replaced a tag some real-time rule reads: the marks)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers import services as customer_services
from rules import realtime
from rules.models import DirtyCustomer, RealtimeBatch
from tagging.models import TagAssignment, TagKind
from tests.factories import TagFactory, TagGroupFactory
from tests.rules.conftest import customer

pytestmark = pytest.mark.django_db

PG = connection.vendor == "postgresql"
BUYER = {"event": "purchase", "op": "gte", "value": 2}
SPENDER = {"attribute": "total_spend", "op": "gt", "value": 1000}  # nobody here
CHATTY = {"event": "message", "op": "gte", "value": 1}


def _events(customers):
    customer_services.record_events(
        [
            {"customer_id": c.pk, "kind": kind, "occurred_at": timezone.now(), "amount": 100}
            for c in customers
            for kind in ("purchase", "purchase", "message")
        ]
    )


def _statements_of_one_batch(n):
    """Statements of the batch evaluating ``n`` fresh customers (savepoints not counted: the
    test's transaction turns the batch's transaction into one)."""
    people = [customer() for _ in range(n)]
    DirtyCustomer.objects.all().delete()
    _events(people)
    assert DirtyCustomer.objects.count() == n
    token, claimed = realtime.claim()
    with CaptureQueriesContext(connection) as queries:
        batch = realtime.evaluate(token, claimed)
    assert batch.customers == n and not DirtyCustomer.objects.exists()
    return [q["sql"] for q in queries if "SAVEPOINT" not in q["sql"]], people


def _holders(rule):
    return set(TagAssignment.objects.filter(tag=rule.tag).values_list("customer_id", flat=True))


def test_statements_per_batch_do_not_grow_with_its_customers(rt_rule):
    level = TagGroupFactory(name="等级", kind=TagKind.AUTO, exclusive=True)
    gold, silver = TagFactory(group=level, name="金"), TagFactory(group=level, name="银")
    buyer = rt_rule(BUYER, tag=gold)
    rt_rule(SPENDER, tag=silver)  # writes buyer's tag too (replaces it): a statement after
    rt_rule(CHATTY)
    reads_buyer = rt_rule({"all": [{"tag": gold.pk}, CHATTY]})  # after silver's statement
    few, people = _statements_of_one_batch(3)
    assert _holders(buyer) == {c.pk for c in people} == _holders(reads_buyer)
    many, people = _statements_of_one_batch(40)
    assert _holders(buyer) >= {c.pk for c in people}
    assert len(many) == len(few)
    if PG:
        # lock customers, load rules, lock rules, lock the group, SET work_mem, 3 levels of
        # rules (buyer + chatty; silver, which may replace gold; reads_buyer, which reads gold
        # after silver), finish (lock the dirty rows, delete, release) = 11 statements
        assert len(few) == 11, "\n".join(s[:150] for s in few)
    assert RealtimeBatch.objects.count() == 2


@pytest.mark.skipif(not PG, reason="SQLite evaluates rule by rule (the portable diff)")
def test_rules_reading_no_other_rule_share_one_statement(rt_rule):
    for i in range(6):
        rt_rule({"event": "purchase", "op": "gte", "value": i + 1})
    rt_rule(SPENDER)
    rt_rule(CHATTY)
    statements, _people = _statements_of_one_batch(10)
    # lock customers, load rules, lock rules, SET work_mem, ONE statement for 8 rules, finish (3)
    assert len(statements) == 8, statements
    assert sum("r7_match(" in sql for sql in statements) == 1
