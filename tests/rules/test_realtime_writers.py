"""The set-based writers mark what real-time rules read, in their own transaction: erasure
leaves no dirty row and no new assignment, an import marks every column it writes, a rule's
nightly / "run now" diff and a rule's deletion mark the customers whose tags they changed, and a
real-time evaluation replacing a tag of an exclusive group marks the replaced tag."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from customers import services as customer_services
from customers.importing import import_file
from rules import realtime, services
from rules.models import DirtyCustomer
from tagging.models import TagAssignment, TagKind
from tests.factories import TagFactory, TagGroupFactory, UserFactory
from tests.rules.conftest import customer

pytestmark = pytest.mark.django_db

BUYER = {"event": "purchase", "op": "gte", "value": 1}


def buy(c):
    customer_services.record_events(
        [{"customer_id": c.pk, "kind": "purchase", "occurred_at": timezone.now(), "amount": 10}]
    )


def holders(rule):
    return set(TagAssignment.objects.filter(tag=rule.tag).values_list("customer_id", flat=True))


def dirty_keys(c):
    row = DirtyCustomer.objects.filter(customer_id=c.pk).first()
    return realtime._decode(row.keys) if row else None


def test_erasure_leaves_no_dirty_row(rt_rule, superuser):
    rule = rt_rule(BUYER)
    gone, kept = customer(), customer()
    buy(gone)
    buy(kept)
    customer_services.erase_customers([gone.pk], actor=superuser, reason="PIPL-1")
    assert set(DirtyCustomer.objects.values_list("customer_id", flat=True)) == {kept.pk}
    [result] = realtime.process()
    assert result.customers == 1 and holders(rule) == {kept.pk}


def test_a_batch_claimed_before_an_erasure_tags_only_the_survivors(rt_rule, superuser):
    rule = rt_rule(BUYER)
    gone, kept = customer(), customer()
    buy(gone)
    buy(kept)
    token, batch = realtime.claim()
    assert set(batch) == {gone.pk, kept.pk}
    customer_services.erase_customers([gone.pk], actor=superuser, reason="PIPL-2")
    result = realtime.evaluate(token, batch)  # no foreign-key failure, no erased assignment
    assert result.added == 1 and holders(rule) == {kept.pk}
    assert not DirtyCustomer.objects.exists()


def test_an_import_marks_every_column_it_writes(rt_rule, superuser):
    seller = UserFactory(username="seller1")
    owned = rt_rule({"attribute": "owner", "op": "eq", "value": seller.pk})
    c = customer(external_userid="wm_imp_1", name="张三")
    DirtyCustomer.objects.all().delete()
    report = import_file(
        b"external_userid,name,owner\nwm_imp_1,\xe5\xbc\xa0\xe4\xb8\x89,seller1\n",
        filename="owners.csv",
        user=superuser,
    )
    assert report.customers_updated == 1, report.errors
    assert "attr:owner_id" in dirty_keys(c)
    realtime.process()
    assert holders(owned) == {c.pk}


def test_run_now_marks_the_customers_whose_tag_it_changed(make_rule, rt_rule):
    nightly = make_rule(BUYER)  # nightly only: "run now" / the nightly run writes its tag
    reads_it = rt_rule({"tag": nightly.tag_id})
    c, other = customer(), customer()
    buy(c)  # marks nothing: no real-time rule reads purchases
    assert not DirtyCustomer.objects.exists()
    outcome = services.apply_rule(nightly)
    assert outcome.added == 1 and outcome.marked == 1
    assert dirty_keys(c) == {f"tag:{nightly.tag_id}"} and dirty_keys(other) is None
    realtime.process()
    assert holders(reads_it) == {c.pk}
    # Removal marks too: the purchase is gone, the next run removes the tag.
    c.events.all().delete()
    customer_services.refresh_aggregates([c.pk])
    assert services.apply_rule(nightly).removed == 1
    assert dirty_keys(c) == {f"tag:{nightly.tag_id}"}
    realtime.process()
    assert holders(reads_it) == set()


def test_a_dry_run_and_an_unread_tag_mark_nothing(make_rule):
    nightly = make_rule(BUYER)
    c = customer()
    buy(c)
    assert services.apply_rule(nightly, dry_run=True).added == 1
    assert services.apply_rule(nightly).marked == 0  # no real-time rule reads its tag
    assert not DirtyCustomer.objects.exists()


def test_deleting_a_rule_marks_the_customers_it_had_tagged(make_rule, rt_rule, superuser):
    nightly = make_rule(BUYER)
    reads_it = rt_rule({"tag": nightly.tag_id})
    c = customer()
    buy(c)
    services.apply_rule(nightly)
    realtime.process()
    assert holders(reads_it) == {c.pk}
    services.delete_rule(nightly, actor=superuser)
    assert dirty_keys(c) == {f"tag:{nightly.tag_id}"}
    realtime.process()
    assert holders(reads_it) == set()


def test_a_real_time_replacement_in_an_exclusive_group_marks_the_replaced_tag(make_rule, rt_rule):
    level = TagGroupFactory(name="等级", kind=TagKind.AUTO, exclusive=True)
    bronze, gold = TagFactory(group=level, name="铜"), TagFactory(group=level, name="金")
    nightly_bronze = make_rule({"event": "purchase", "op": "eq", "value": 0}, tag=bronze)
    rt_rule(BUYER, tag=gold)
    has_bronze = rt_rule({"tag": bronze.pk})
    c = customer()
    services.apply_rule(nightly_bronze)
    realtime.process()
    assert holders(has_bronze) == {c.pk}
    buy(c)  # the batch gives gold, which replaces bronze; only that replacement marks bronze
    realtime.process()
    assert set(TagAssignment.objects.filter(customer=c).values_list("tag_id", flat=True)) == {
        gold.pk
    }
    assert holders(has_bronze) == set()
    assert not DirtyCustomer.objects.exists()


def test_a_real_time_compile_restricts_every_subquery_to_the_batch(now):
    from rules import diff, dsl

    node = dsl.parse_tree(
        {
            "all": [
                {"event": "purchase", "window": {"days": 30}, "op": "gte", "value": 2},
                {"tag": 7},
            ]
        }
    )
    sql, params = diff._match_sql(node, now, [11, 12])
    # the outer filter, the grouped events subquery and the assignments subquery; on
    # PostgreSQL each as ONE array parameter (rules.compiler.InBatch)
    if connection.vendor == "postgresql":
        assert sql.count('"customer_id" = ANY(%s::bigint[])') == 2
        assert params.count([11, 12]) == 3
    else:
        assert sql.count('"customer_id" IN (') == 2 and params.count(11) == 3
    full, _params = diff._match_sql(node, now)
    assert '"customer_id" IN (%s' not in full and "ANY(" not in full
