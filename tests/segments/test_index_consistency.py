"""The bitmap index (PostgreSQL) always equals tagging_tagassignment: after every writer —
assign, exclusive replacement, unassign, merge, delete, expiry, customer deletion, set-based
import and rule runs — and under concurrent writers on separate connections. On SQLite there is
no index (segments use EXISTS) and ``verify_index`` has nothing to compare."""

from __future__ import annotations

import datetime as dt
import random
import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from customers.importing import import_file
from customers.models import Customer
from rules.models import Rule
from rules.services import apply_rule
from tagging import bitmaps, segments
from tagging.models import TagAssignment, TagGroup, TagKind
from tagging.services import (
    assign_tags,
    delete_tag,
    merge_tags,
    remove_expired_assignments,
    unassign_tags,
)
from tests.conftest import tag
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the bitmap index exists only on PostgreSQL"
)


def holders(t) -> set[int]:
    return set(TagAssignment.objects.filter(tag=t).values_list("customer_id", flat=True))


def segment_ids(superuser, t) -> set[int]:
    return set(segments.customer_ids({"tag": t.pk}, superuser))


@pytest.mark.parametrize(
    "array_max", [bitmaps.ARRAY_MAX, 1], ids=["array-containers", "bitmap-containers"]
)
def test_every_service_writer_keeps_the_index_exact(
    superuser, intent_group, source_group, customers, index_consistent, monkeypatch, array_max
):
    monkeypatch.setattr(bitmaps, "ARRAY_MAX", array_max)
    high, mid = tag(intent_group, "高"), tag(intent_group, "中")
    web, fair = tag(source_group, "官网"), tag(source_group, "展会")
    assign_tags(customers, [high, web], actor=superuser, source="manual")
    index_consistent()
    assign_tags(customers[:2], [mid], actor=superuser, source="manual")  # replaces 高 (exclusive)
    assert segment_ids(superuser, high) == holders(high)
    index_consistent()
    unassign_tags(customers[3:], [web], actor=superuser, source="manual")
    assign_tags(customers[3:], [fair], actor=superuser, source="manual")
    index_consistent()
    merge_tags([fair], web, actor=superuser)
    assert segment_ids(superuser, web) == {c.pk for c in customers}
    assert segment_ids(superuser, fair) == set()
    index_consistent()
    assign_tags(
        customers[:1],
        [tag(source_group, "转介绍")],
        actor=superuser,
        source="manual",
        expires_at=timezone.now() + dt.timedelta(minutes=1),
    )
    assert remove_expired_assignments(timezone.now() + dt.timedelta(minutes=2)) == 1
    delete_tag(mid, actor=superuser, confirm=True)
    index_consistent()
    Customer.objects.filter(pk=customers[4].pk).delete()
    CustomerFactory()
    index_consistent()
    assert segments.count({"not": {"tag": web.pk}}, superuser) == 1


def test_set_based_import_keeps_the_index_exact(
    superuser, source_group, customers, index_consistent
):
    web = tag(source_group, "官网")
    assign_tags(customers[:1], [web], actor=superuser, source="manual")
    rows = ["external_userid,phone,name,tags"]
    rows += [f"{c.external_userid},,{c.name},客户来源:展会;客户来源:官网" for c in customers[1:]]
    rows += [f"wmNEW{i:04d},,新客户{i},客户来源:转介绍" for i in range(30)]
    report = import_file("\n".join(rows).encode(), filename="tags.csv", user=superuser)
    assert report.applied, report.errors
    assert segment_ids(superuser, web) == {c.pk for c in customers}
    assert len(segment_ids(superuser, tag(source_group, "转介绍"))) == 30
    index_consistent()


def test_rule_runs_keep_the_index_exact(superuser, customers, index_consistent):
    auto = TagFactory(group=TagGroupFactory(name="自动", kind=TagKind.AUTO), name="高消费")
    rule = Rule(
        name="高消费", tag=auto, tree={"attribute": "total_spend", "op": "gt", "value": 1000}
    )
    rule.full_clean()
    rule.save()
    Customer.objects.filter(pk__in=[c.pk for c in customers[:3]]).update(total_spend=5000)
    apply_rule(rule)
    assert segment_ids(superuser, auto) == {c.pk for c in customers[:3]}
    index_consistent()
    Customer.objects.filter(pk=customers[0].pk).update(total_spend=0)
    Customer.objects.filter(pk=customers[4].pk).update(total_spend=9000)
    apply_rule(rule)
    assert segment_ids(superuser, auto) == {customers[1].pk, customers[2].pk, customers[4].pk}
    index_consistent()


@postgres_only
def test_rebuild_after_a_bulk_load_with_triggers_off(superuser, source_group, customers):
    web = tag(source_group, "官网")
    with connection.cursor() as cursor:
        cursor.execute("ALTER TABLE tagging_tagassignment DISABLE TRIGGER USER")
        cursor.execute(
            "INSERT INTO tagging_tagassignment (customer_id, tag_id, source, created_at)"
            " SELECT id, %s, 'import', now() FROM customers_customer",
            [web.pk],
        )
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending FK events before ALTER
        cursor.execute("ALTER TABLE tagging_tagassignment ENABLE TRIGGER USER")
    assert bitmaps.verify_index()  # the loader skipped the triggers: the index is behind
    bitmaps.ARRAY_MAX, saved = 2, bitmaps.ARRAY_MAX  # every chunk a bitmap container
    try:
        counts = bitmaps.rebuild_index()
    finally:
        bitmaps.ARRAY_MAX = saved
    assert counts["assignments"] == len(customers)
    assert bitmaps.verify_index() == []
    assert segment_ids(superuser, web) == {c.pk for c in customers}


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_on_separate_connections(django_db_blocker):
    """Two threads, each with its own connection, assign and unassign the same tags on the same
    customers (raw SQL, as a set-based writer would, and through the service) while a third
    compacts the log; afterwards the index equals the table exactly."""
    from tests.factories import UserFactory

    root = UserFactory(username="concurrency_root", is_superuser=True)
    group = TagGroupFactory(name="并发")
    tags = [TagFactory(group=group, name=f"并发{i}") for i in range(4)]
    people = [CustomerFactory() for _ in range(40)]
    errors: list[BaseException] = []
    stop = threading.Event()

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(60):
                chosen = rng.sample(people, 8)
                picked = rng.sample(tags, 2)
                if rng.random() < 0.5:
                    assign_tags(chosen, picked, actor=root, source="api")
                else:
                    unassign_tags(chosen, picked, actor=root, source="api")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    def compactor() -> None:
        try:
            while not stop.is_set():
                bitmaps.compact_index(limit=50)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(s,)) for s in (1, 2)]
    helper = threading.Thread(target=compactor)
    for t in [*threads, helper]:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    helper.join()
    assert errors == []
    assert bitmaps.verify_index() == []
    bitmaps.compact_index()
    assert bitmaps.verify_index() == []
    for t in tags:
        assert set(segments.customer_ids({"tag": t.pk}, root)) == holders(t)
    assert TagGroup.objects.filter(pk=group.pk).exists()


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_a_reader_folds_a_long_change_log_when_no_worker_does(monkeypatch):
    from tests.factories import UserFactory

    root = UserFactory(username="fold_root", is_superuser=True)
    web = TagFactory(group=TagGroupFactory(name="来源"), name="官网")
    people = CustomerFactory.create_batch(6)
    assign_tags(people, [web], actor=root, source="manual")
    monkeypatch.setattr(bitmaps, "COMPACT_AFTER", 3)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM tagging_tagbitmapdelta WHERE key = %s", [web.pk])
        assert cursor.fetchone()[0] == 6
        assert segments.count({"tag": web.pk}, root) == 6
        cursor.execute("SELECT count(*) FROM tagging_tagbitmapdelta")
        assert cursor.fetchone()[0] == 0
    assert bitmaps.verify_index() == []
    assert segments.count({"tag": web.pk}, root) == 6
