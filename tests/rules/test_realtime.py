"""Real-time auto tags (rules.realtime): marks in the change's transaction, coalescing, the same
evaluator restricted to dirty customers, dependency order, no lost update, ``missed``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers import services as customer_services
from customers.models import CustomerEvent
from rules import dsl, realtime, services
from rules.models import DirtyCustomer, RealtimeBatch, RuleRun, RunTrigger
from tagging import services as tagging_services
from tagging.models import AssignmentSource, TagAssignment
from tests.factories import TagFactory, TagGroupFactory
from tests.rules.conftest import customer

pytestmark = pytest.mark.django_db

BUYER = {"event": "purchase", "op": "gte", "value": 3}
BIG_SPENDER = {"attribute": "total_spend", "op": "gt", "value": 1000}
ASKS_PRICE = {"event": "message", "text_contains": "价格", "op": "gte", "value": 1}


def purchases(c, n=1, amount=100):
    return customer_services.record_events(
        [
            {
                "customer_id": c.pk,
                "kind": "purchase",
                "occurred_at": timezone.now(),
                "amount": amount,
            }
            for _ in range(n)
        ]
    )


def holders(rule):
    return set(TagAssignment.objects.filter(tag=rule.tag).values_list("customer_id", flat=True))


def test_dependencies_of_a_tree():
    node = dsl.parse_tree(
        {
            "all": [
                BIG_SPENDER,
                {"not": {"tag": 7}},
                {
                    "ratio": {
                        "numerator": {"event": "message"},
                        "denominator": {"event": "inquiry"},
                    },
                    "op": "gte",
                    "value": 0.5,
                },
                {"rfm": "recency", "op": "gte", "value": 4},
            ]
        }
    )
    assert realtime.dependencies(node) == {
        "attr:total_spend",
        "tag:7",
        "event:message",
        "event:inquiry",
        "attr:last_order_at",
    }
    assert realtime.reads_relative_time(node)
    assert not realtime.reads_relative_time(dsl.parse_tree(BUYER))
    assert realtime.reads_relative_time(dsl.parse_tree({**BUYER, "window": {"days": 30}}))


def test_an_event_marks_the_customer_and_a_batch_tags_it(rt_rule):
    rule = rt_rule(BUYER)
    c = customer()
    purchases(c, 2)
    row = DirtyCustomer.objects.get()
    assert row.customer_id == c.pk and "event:purchase" in row.keys and row.claim == ""
    assert realtime.process()[0].added == 0
    assert not DirtyCustomer.objects.exists()
    purchases(c, 1)
    [result] = realtime.process()
    assert (result.customers, result.rules, result.added, result.removed) == (1, 1, 1, 0)
    assert holders(rule) == {c.pk}
    assert TagAssignment.objects.get(tag=rule.tag).source == AssignmentSource.RULE
    batch = RealtimeBatch.objects.first()
    assert batch.customers == 1 and batch.added == 1
    assert batch.per_rule == {str(rule.pk): [1, 1, 0]}


def test_nightly_only_rules_and_unread_kinds_mark_nothing(make_rule, rt_rule):
    make_rule(BUYER)  # nightly only
    c = customer()
    purchases(c, 3)
    assert not DirtyCustomer.objects.exists()
    rt_rule(ASKS_PRICE)
    purchases(c, 1)  # purchases are not what the real-time rule reads
    assert not DirtyCustomer.objects.exists()


def test_hundred_events_for_one_customer_are_one_evaluation(rt_rule):
    rule = rt_rule(BUYER)
    c = customer()
    for _ in range(100):
        purchases(c, 1)
    assert DirtyCustomer.objects.count() == 1
    results = realtime.process()
    assert len(results) == 1 and results[0].customers == 1 and results[0].rules == 1
    assert holders(rule) == {c.pk}


def test_the_commit_wakes_the_worker(rt_rule, django_capture_on_commit_callbacks):
    rule = rt_rule(BUYER)
    c = customer()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        purchases(c, 3)
    assert len(callbacks) == 1  # eager in tests: the batch task ran on commit
    assert holders(rule) == {c.pk}
    assert not DirtyCustomer.objects.exists()


def test_a_change_during_evaluation_is_not_lost(rt_rule):
    rule = rt_rule(BUYER)
    c = customer()
    purchases(c, 2)
    token, batch = realtime.claim()
    assert list(batch) == [c.pk]
    purchases(c, 1)  # arrives after the claim, while the batch is being evaluated
    row = DirtyCustomer.objects.get()
    assert row.claim == token and row.remarked_at is not None
    realtime.evaluate(token, batch)
    row = DirtyCustomer.objects.get()  # released, not deleted
    assert row.claim == "" and row.remarked_at is None and row.since >= batch[c.pk][0]
    realtime.process()
    assert holders(rule) == {c.pk} and not DirtyCustomer.objects.exists()


def test_a_claimed_customer_is_not_claimed_twice(rt_rule):
    rt_rule(BUYER)
    a, b = customer(), customer()
    purchases(a)
    _token, first = realtime.claim(limit=1)
    purchases(b)
    _token, second = realtime.claim()
    assert list(first) == [a.pk] and list(second) == [b.pk]
    assert realtime.claim()[1] == {}


def test_a_failed_batch_releases_its_claim(rt_rule, monkeypatch):
    rt_rule(BUYER)
    c = customer()
    purchases(c, 3)

    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    from rules import diff

    monkeypatch.setattr(services, "apply_rule", boom)  # SQLite's path
    monkeypatch.setattr(diff, "evaluate_and_write_pg_batch", boom)  # PostgreSQL's
    with pytest.raises(RuntimeError):
        realtime.process()
    row = DirtyCustomer.objects.get()
    assert row.claim == "" and row.customer_id == c.pk


def test_rules_reading_other_rules_tags_run_after_them(rt_rule, auto_group):
    buyer = rt_rule(BUYER)
    loyal = rt_rule(
        {"all": [{"tag": buyer.tag_id}, {"event": "purchase", "op": "gte", "value": 1}]}
    )
    vip = rt_rule({"tag": loyal.tag_id})  # reads only a tag: evaluated because loyal was
    c = customer()
    purchases(c, 3)
    [result] = realtime.process()
    assert result.rules == 3
    assert holders(buyer) == holders(loyal) == holders(vip) == {c.pk}


def test_manual_tags_and_attribute_saves_mark(rt_rule, superuser):
    vip_group = TagGroupFactory(name="客户等级")
    vip_tag = TagFactory(group=vip_group, name="VIP")
    has_vip = rt_rule({"tag": vip_tag.pk})
    from_fair = rt_rule({"attribute": "source", "op": "eq", "value": "展会"})
    c = customer(source="官网")
    tagging_services.assign_tags([c], [vip_tag], actor=superuser, source=AssignmentSource.MANUAL)
    assert DirtyCustomer.objects.get().keys == f",tag:{vip_tag.pk},"
    realtime.process()
    assert holders(has_vip) == {c.pk}
    tagging_services.unassign_tags([c], [vip_tag], actor=superuser, source=AssignmentSource.MANUAL)
    c.source = "展会"
    customer_services.save_customer(c, actor=superuser)
    keys = realtime._decode(DirtyCustomer.objects.get().keys)
    assert {f"tag:{vip_tag.pk}", "attr:source"} <= keys
    realtime.process()
    assert holders(has_vip) == set() and holders(from_fair) == {c.pk}


def test_a_new_customer_is_evaluated_for_every_real_time_rule(rt_rule):
    newcomer = rt_rule({"event": "purchase", "op": "eq", "value": 0})
    c, _created = customer_services.upsert_customer(external_userid="wm_new_1", name="新客")
    assert DirtyCustomer.objects.get(customer=c).keys == "*"
    realtime.process()
    assert holders(newcomer) == {c.pk}


def test_nightly_run_reports_nothing_missed_for_event_driven_rules(rt_rule):
    rules = [rt_rule(BUYER), rt_rule(BIG_SPENDER)]
    people = [customer() for _ in range(4)]
    for i, c in enumerate(people):
        purchases(c, i + 1, amount=400)
    realtime.process()
    runs = services.run_rules(trigger=RunTrigger.SCHEDULE)
    for run in runs:
        run.refresh_from_db()
        assert (run.added, run.removed, run.missed) == (0, 0, 0)
    assert holders(rules[0]) == {people[2].pk, people[3].pk}
    assert holders(rules[1]) == {people[2].pk, people[3].pk}


def test_nightly_run_counts_what_real_time_missed(rt_rule, make_rule):
    rule = rt_rule(BUYER)
    nightly = make_rule(BIG_SPENDER)
    seen, unseen, pending = customer(), customer(), customer()
    purchases(seen, 3)
    realtime.process()
    for _ in range(3):  # written behind the services' back: no mark
        CustomerEvent.objects.create(customer=unseen, kind="purchase", occurred_at=timezone.now())
    purchases(pending, 3)  # marked, not evaluated yet: not a miss
    run = services.run_rule(rule, trigger=RunTrigger.SCHEDULE)
    assert (run.added, run.missed) == (2, 1)
    assert services.run_rule(nightly, trigger=RunTrigger.SCHEDULE).missed is None
    assert RuleRun.objects.filter(rule=rule).count() == 1


EVENT_KINDS = ["purchase", "message"]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    stream=st.lists(
        st.tuples(
            st.integers(0, 3),  # customer
            st.sampled_from(EVENT_KINDS),
            st.sampled_from([50, 400, 900]),
            st.booleans(),  # evaluate after this event
        ),
        max_size=25,
    )
)
def test_real_time_equals_nightly_after_random_event_streams(rt_rule, stream):
    TagAssignment.objects.all().delete()
    CustomerEvent.objects.all().delete()
    DirtyCustomer.objects.all().delete()
    customer_services.refresh_aggregates()  # the previous example's totals are gone too
    if not _RULES:  # hypothesis runs every example in one test (one database transaction)
        buyer = rt_rule(BUYER)
        _RULES.extend(
            [
                buyer,
                rt_rule(BIG_SPENDER),
                rt_rule({"all": [{"tag": buyer.tag_id}, {"not": ASKS_PRICE}]}),
                rt_rule(
                    {
                        "any": [
                            {"event": "message", "op": "gte", "value": 2},
                            {
                                "event": "purchase",
                                "agg": "sum",
                                "measure": "amount",
                                "op": "between",
                                "value": [500, 1500],
                            },
                        ]
                    }
                ),
            ]
        )
        _PEOPLE.extend(customer() for _ in range(4))
    for who, kind, amount, evaluate_now in stream:
        c = _PEOPLE[who]
        fields = {"amount": Decimal(amount)} if kind == "purchase" else {"text": "问一下价格"}
        customer_services.record_events(
            [{"customer_id": c.pk, "kind": kind, "occurred_at": timezone.now(), **fields}]
        )
        if evaluate_now:
            realtime.process()
    realtime.process()
    live = {r.pk: holders(r) for r in _RULES}
    runs = services.run_rules(trigger=RunTrigger.SCHEDULE)
    assert {r.pk: holders(r) for r in _RULES} == live
    assert all(run.missed == 0 and run.added == run.removed == 0 for run in runs)


_RULES: list = []
_PEOPLE: list = []


@pytest.fixture(autouse=True)
def _fresh_property_state():
    _RULES.clear()
    _PEOPLE.clear()
    yield
    _RULES.clear()
    _PEOPLE.clear()


def test_stale_claims_are_claimed_again(rt_rule):
    rt_rule(BUYER)
    c = customer()
    purchases(c)
    realtime.claim()
    DirtyCustomer.objects.update(claimed_at=timezone.now() - realtime.STALE_CLAIM - dt.timedelta(1))
    assert list(realtime.claim()[1]) == [c.pk]
