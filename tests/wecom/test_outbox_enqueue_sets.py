"""The outbox's set-based enqueue (one ``INSERT … SELECT`` per 5,000 customers) writes exactly the
rows the per-row code wrote: one per relationship and part, the parts of delayed groups held,
each row due no earlier than the holds before it on its relationship (queued already or earlier
in the same batch), in the same order. The per-row code is kept here as the oracle and both are
run on random cases: followers with different tags, several delayed groups, held rows already
queued (some expired, some sent), additions and removals mixed."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers.models import Customer
from tagging.models import Tag, TagGroup
from wecom.models import OutboxStatus, WecomGroupRule, WecomOutbox, WecomRelation
from wecom.services import delays, outbox
from wecom.services.common import synced_tag_info
from wecom.services.library import sync_library

pytestmark = pytest.mark.django_db

FIELDS = (
    "userid",
    "external_userid",
    "customer_id",
    "change",
    "status",
    "attempts",
    "error",
    "created_at",
    "next_attempt_at",
    "held_group_id",
    "held_until",
)


def _old_enqueue_customers(changes, info, now) -> list[WecomOutbox]:
    """The per-row code the set-based enqueue replaced: the rows it would have inserted."""
    rows = [
        WecomOutbox(
            userid=userid,
            external_userid=ext,
            customer_id=customer_id,
            change=change,
            created_at=now,
            next_attempt_at=now + timedelta(minutes=delay),
            held_group_id=group_id,
            held_until=now + timedelta(minutes=delay) if delay else None,
        )
        for customer_id, userid, ext in WecomRelation.objects.filter(customer_id__in=list(changes))
        .order_by("id")
        .values_list("customer_id", "userid", "external_userid")
        for (group_id, delay), change in outbox._split_by_delay(changes[customer_id], info).items()
    ]
    delays.wait_behind_holds(rows, now)
    return rows


def _old_enqueue_relations(relations, reason, now) -> list[WecomOutbox]:
    rows = [
        WecomOutbox(
            userid=r.userid,
            external_userid=r.external_userid,
            customer_id=r.customer_id,
            change={"reason": reason},
            created_at=now,
            next_attempt_at=now,
        )
        for r in relations
    ]
    delays.wait_behind_holds(rows, now)
    return rows


def _as_tuples(rows) -> list[tuple]:
    return [tuple(getattr(r, f) for f in FIELDS) for r in rows]


def _written_since(last_id: int) -> list[tuple]:
    return _as_tuples(WecomOutbox.objects.filter(pk__gt=last_id).order_by("id"))


@pytest.fixture
def world(fake_wecom, wecom, employees):
    fake_wecom.add_group("投诉客户", ["已投诉", "已解决"])
    fake_wecom.add_group("敏感", ["黑名单"])
    fake_wecom.add_group("意向", ["高", "中"])
    sync_library(wecom)
    WecomGroupRule.objects.create(group=TagGroup.objects.get(name="投诉客户"), delay_minutes=120)
    WecomGroupRule.objects.create(group=TagGroup.objects.get(name="敏感"), delay_minutes=30)
    zhang, li = employees["zhangsan"], employees["lisi"]

    def relate(customer, employee):
        WecomRelation.objects.create(
            customer=customer,
            employee=employee,
            userid=employee.wecom_userid,
            external_userid=customer.external_userid,
        )

    customers = []
    for i in range(12):
        customer = Customer.objects.create(external_userid=f"wmE{i:02d}", name=f"客户{i}")
        customers.append(customer)
        relate(customer, zhang)
        if i % 3 == 1:
            relate(customer, li)
    for customer in customers[::3]:  # followers added later: ids out of customer order
        relate(customer, li)
    # customers[2], [5]…: one follower; the others two
    return {"customers": customers, "tags": list(Tag.objects.order_by("pk"))}


def _queue_existing(rng: random.Random, now) -> None:
    """Rows already queued: held (some long, some nearly done), expired holds, sent rows."""
    relations = list(WecomRelation.objects.all())
    group = TagGroup.objects.get(name="投诉客户")
    for r in rng.sample(relations, k=rng.randint(0, len(relations))):
        kind = rng.choice(["held", "held", "expired", "done", "plain"])
        minutes = rng.choice([1, 45, 119, 240])
        until = now + timedelta(minutes=minutes) if kind != "expired" else now - timedelta(1)
        WecomOutbox.objects.create(
            userid=r.userid,
            external_userid=r.external_userid,
            customer_id=r.customer_id,
            change={"add": [], "remove": []},
            status=OutboxStatus.DONE if kind == "done" else OutboxStatus.PENDING,
            held_until=None if kind == "plain" else until,
            held_group=None if kind == "plain" else group,
            next_attempt_at=until if kind != "plain" else now,
        )


def _random_changes(rng: random.Random, world) -> dict[int, dict]:
    changes = {}
    for customer in rng.sample(world["customers"], k=rng.randint(1, len(world["customers"]))):
        tags = rng.sample(world["tags"], k=rng.randint(1, 4))
        change: dict[str, list[int]] = {"add": [], "remove": []}
        for t in tags:
            change[rng.choice(["add", "remove"])].append(t.pk)
        changes[customer.pk] = change
    return changes


def test_enqueue_customers_writes_the_rows_of_the_per_row_code(world, clock):
    rng = random.Random(10)
    for _case in range(40):
        WecomOutbox.objects.all().delete()
        _queue_existing(rng, clock.now)
        changes = _random_changes(rng, world)
        info = synced_tag_info({t for c in changes.values() for op in c.values() for t in op})
        expected = _as_tuples(_old_enqueue_customers(changes, info, clock.now))
        last = WecomOutbox.objects.order_by("-id").values_list("id", flat=True).first() or 0
        assert outbox.enqueue_customers(changes) == len(expected)
        assert _written_since(last) == expected
        clock.advance(minutes=rng.choice([0, 1, 50]))
    # The cases covered what matters: held parts behind held parts, rows behind queued holds.
    assert any(t.held_until for t in WecomOutbox.objects.all())


def test_enqueue_relations_writes_the_rows_of_the_per_row_code(world, clock):
    rng = random.Random(11)
    for _case in range(20):
        WecomOutbox.objects.all().delete()
        _queue_existing(rng, clock.now)
        relations = list(WecomRelation.objects.all())
        rng.shuffle(relations)  # the order given is the order written
        relations = relations[: rng.randint(1, len(relations))]
        expected = _as_tuples(_old_enqueue_relations(relations, "sync", clock.now))
        last = WecomOutbox.objects.order_by("-id").values_list("id", flat=True).first() or 0
        assert outbox.enqueue_relations(relations, "sync") == len(expected)
        assert _written_since(last) == expected


def test_a_held_part_waits_for_the_held_parts_before_it_and_for_queued_holds(world, clock):
    """The table case behind the random ones: a 30-minute part after a 120-minute part of the
    same change waits 120 minutes; a relationship with a 240-minute hold queued waits 240."""
    complaint, sensitive, high = (Tag.objects.get(name=n) for n in ("已投诉", "黑名单", "高"))
    customer = world["customers"][1]  # both followers, zhangsan's relationship first
    zhang = WecomRelation.objects.get(customer=customer, userid="zhangsan")
    WecomOutbox.objects.create(
        userid=zhang.userid,
        external_userid=zhang.external_userid,
        customer=customer,
        held_until=clock.now + timedelta(minutes=240),
        next_attempt_at=clock.now + timedelta(minutes=240),
    )
    last = WecomOutbox.objects.order_by("-id").values_list("id", flat=True).first()
    change = {"add": [high.pk, complaint.pk], "remove": [sensitive.pk]}
    assert outbox.enqueue_customers({customer.pk: change}) == 6
    rows = list(WecomOutbox.objects.filter(pk__gt=last).order_by("id"))
    minutes = [
        (r.userid, r.change, (r.next_attempt_at - clock.now) / timedelta(minutes=1)) for r in rows
    ]
    assert minutes == [
        ("zhangsan", {"add": [high.pk], "remove": []}, 240),
        ("zhangsan", {"add": [complaint.pk], "remove": []}, 240),
        ("zhangsan", {"add": [], "remove": [sensitive.pk]}, 240),
        ("lisi", {"add": [high.pk], "remove": []}, 0),
        ("lisi", {"add": [complaint.pk], "remove": []}, 120),
        ("lisi", {"add": [], "remove": [sensitive.pk]}, 120),  # behind the 120-minute part
    ]
    assert [r.held_until and (r.held_until - clock.now) for r in rows[3:]] == [
        None,
        timedelta(minutes=120),
        timedelta(minutes=30),  # its own hold is its group's
    ]


def test_enqueue_is_one_statement_however_many_customers(world, clock):
    tag = Tag.objects.get(name="高")
    few = {c.pk: {"add": [tag.pk], "remove": []} for c in world["customers"][:2]}
    many = {c.pk: {"add": [tag.pk], "remove": []} for c in world["customers"]}
    info = synced_tag_info([tag.pk])
    counts = []
    for changes in (few, many):
        with CaptureQueriesContext(connection) as ctx:
            outbox.enqueue_customers(changes, info)
        counts.append(len(ctx.captured_queries))
    assert counts == [1, 1]
    relations = list(WecomRelation.objects.all())
    with CaptureQueriesContext(connection) as ctx:
        assert outbox.enqueue_relations(relations, "repair") == len(relations)
    assert len(ctx.captured_queries) == 1
    assert timezone.now() == clock.now
