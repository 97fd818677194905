"""Rule runs tell ``tagging.hooks.rule_assignments_written`` which tags they wrote, inside their
transaction (the WeCom sync queues the relationships whose rule-group tags differ): nightly
runs for every customer, real-time batches for their customers, a deleted rule for its tag;
dry runs and runs that change nothing tell nobody."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils import timezone

from customers import services as customer_services
from rules import realtime, services
from tagging import hooks
from tests.factories import TagFactory, TagGroupFactory
from tests.rules.conftest import customer

pytestmark = pytest.mark.django_db

BIG_SPENDER = {"attribute": "total_spend", "op": "gt", "value": 1000}
BUYER = {"event": "purchase", "op": "gte", "value": 1}


@pytest.fixture
def told(monkeypatch):
    seen: list[tuple[list[int], list[int] | None]] = []
    monkeypatch.setattr(
        hooks, "_rule_assignments_written", [lambda tags, customers: seen.append((tags, customers))]
    )
    return seen


def test_a_nightly_run_tells_its_tag_for_every_customer(make_rule, told):
    rich = customer(total_spend=Decimal("5000"))
    rule = make_rule(BIG_SPENDER)
    services.apply_rule(rule, dry_run=True)
    assert told == []
    services.apply_rule(rule)
    assert told == [([rule.tag_id], None)]
    services.apply_rule(rule)  # nothing changes: nobody is told
    assert len(told) == 1
    rich.total_spend = Decimal("1")
    rich.save(update_fields=["total_spend"])
    services.apply_rule(rule)
    assert told[-1] == ([rule.tag_id], None)


def test_an_exclusive_replacement_tells_the_group_tags(make_rule, told):
    group = TagGroupFactory(name="层级", kind="auto", exclusive=True)
    low, high = TagFactory(group=group, name="低"), TagFactory(group=group, name="高")
    customer(total_spend=Decimal("5000"))
    services.apply_rule(make_rule({"attribute": "total_spend", "op": "gt", "value": 0}, tag=low))
    told.clear()
    services.apply_rule(make_rule(BIG_SPENDER, tag=high))  # 高 replaces 低 on the customer
    assert told == [([high.pk, low.pk], None)]


def test_a_realtime_batch_tells_its_tags_for_its_customers(rt_rule, told):
    rule = rt_rule(BUYER)
    buyer, idle = customer(), customer()
    customer_services.record_events(
        [{"customer_id": buyer.pk, "kind": "purchase", "occurred_at": timezone.now()}]
    )
    realtime.process()
    assert told == [([rule.tag_id], [buyer.pk])]
    assert idle.pk not in told[0][1]


def test_deleting_a_rule_tells_its_tag(make_rule, told):
    customer(total_spend=Decimal("5000"))
    rule = make_rule(BIG_SPENDER)
    services.apply_rule(rule)
    told.clear()
    services.delete_rule(rule, actor=None)
    assert told == [([rule.tag_id], None)]
