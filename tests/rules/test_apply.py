"""Applying a rule: exactly the diff, with provenance and audit; idempotent; dry runs write
nothing; exclusive groups stay exclusive; only the rule's own assignments are removed."""

from __future__ import annotations

import datetime as dt

import pytest

from rules.models import Rule
from rules.services import (
    RuleInvalid,
    apply_rule,
    delete_rule,
    preview_tree,
    rewrite_rules_for_merge,
    save_rule,
)
from tagging.models import AuditAction, AuditEntry, TagAssignment, TagKind
from tagging.services import merge_tags
from tests.factories import TagFactory, TagGroupFactory
from tests.rules.conftest import NOW, customer, event

pytestmark = pytest.mark.django_db

RICH = {"attribute": "total_spend", "op": "gt", "value": 1000}


def holders(tag):
    return set(TagAssignment.objects.filter(tag=tag).values_list("customer_id", flat=True))


def audits(action, tag):
    return set(
        AuditEntry.objects.filter(action=action, tag=tag).values_list("customer_id", flat=True)
    )


def test_apply_adds_and_removes_exactly_the_diff(make_rule, auto_tag):
    stays, leaves, arrives, never = (customer(total_spend=v) for v in (5000, 5000, 10, 10))
    rule = make_rule(RICH, tag=auto_tag)
    first = apply_rule(rule, now=NOW)
    assert (first.matched, first.added, first.removed) == (2, 2, 0)
    assert holders(auto_tag) == {stays.pk, leaves.pk}

    type(leaves).objects.filter(pk=leaves.pk).update(total_spend=0)
    type(arrives).objects.filter(pk=arrives.pk).update(total_spend=3000)
    second = apply_rule(rule, now=NOW)
    assert (second.matched, second.added, second.removed) == (2, 1, 1)
    assert holders(auto_tag) == {stays.pk, arrives.pk}
    assert audits(AuditAction.ASSIGNMENT_ADDED, auto_tag) == {stays.pk, leaves.pk, arrives.pk}
    assert audits(AuditAction.ASSIGNMENT_REMOVED, auto_tag) == {leaves.pk}
    assert never.pk not in holders(auto_tag)


def test_rerun_changes_nothing(make_rule, auto_tag):
    for v in (5000, 10, 3000):
        customer(total_spend=v)
    rule = make_rule(RICH, tag=auto_tag)
    apply_rule(rule, now=NOW)
    before_rows = list(TagAssignment.objects.values_list("pk", "customer_id", "created_at"))
    before_audit = AuditEntry.objects.count()
    again = apply_rule(rule, now=NOW)
    assert (again.added, again.removed, again.matched) == (0, 0, 2)
    assert list(TagAssignment.objects.values_list("pk", "customer_id", "created_at")) == before_rows
    assert AuditEntry.objects.count() == before_audit


def test_provenance_and_audit_rows(make_rule, auto_tag):
    rich = customer(total_spend=5000)
    rule = make_rule(RICH, tag=auto_tag)
    apply_rule(rule, now=NOW)
    assignment = TagAssignment.objects.get(customer=rich, tag=auto_tag)
    assert (assignment.source, assignment.rule_id, assignment.actor_id) == ("rule", rule.pk, None)
    entry = AuditEntry.objects.get(action=AuditAction.ASSIGNMENT_ADDED, customer=rich)
    assert (entry.source, entry.rule_id, entry.tag_id, entry.group_id) == (
        "rule",
        rule.pk,
        auto_tag.pk,
        auto_tag.group_id,
    )
    assert entry.object_repr == str(auto_tag)


def test_only_the_rules_own_assignments_are_removed(make_rule, auto_tag):
    leftover = customer(total_spend=0)  # carries the tag from before this rule existed
    TagAssignment.objects.create(customer=leftover, tag=auto_tag, source="rule", rule=None)
    rule = make_rule(RICH, tag=auto_tag)
    outcome = apply_rule(rule, now=NOW)
    assert outcome.removed == 0
    assert leftover.pk in holders(auto_tag)


def test_dry_run_and_preview_write_nothing(make_rule, auto_tag):
    rich, poor = customer(total_spend=5000, name="富"), customer(total_spend=1, name="穷")
    rule = make_rule(RICH, tag=auto_tag)
    audit_before = AuditEntry.objects.count()
    outcome = apply_rule(rule, dry_run=True, now=NOW)
    assert (outcome.matched, outcome.added, outcome.removed, outcome.dry_run) == (1, 1, 0, True)
    assert [s["id"] for s in outcome.samples["to_add"]] == [rich.pk]
    assert outcome.samples["to_add"][0]["name"] == "富"
    assert not TagAssignment.objects.exists()
    assert AuditEntry.objects.count() == audit_before

    apply_rule(rule, now=NOW)
    preview = preview_tree(
        {"attribute": "total_spend", "op": "lt", "value": 10}, tag=auto_tag, rule=rule, now=NOW
    )
    assert (preview.matched, preview.added, preview.removed) == (1, 1, 1)
    assert [s["id"] for s in preview.samples["to_add"]] == [poor.pk]
    assert [s["id"] for s in preview.samples["to_remove"]] == [rich.pk]
    assert holders(auto_tag) == {rich.pk}


def test_preview_without_a_tag_counts_matches(db):
    customer(total_spend=5000)
    outcome = preview_tree(RICH, tag=None, now=NOW)
    assert outcome.matched == 1


def test_invalid_rule_is_rejected_and_changes_nothing(make_rule, auto_tag):
    rich = customer(total_spend=5000)
    rule = make_rule(RICH, tag=auto_tag)
    apply_rule(rule, now=NOW)
    Rule.objects.filter(pk=rule.pk).update(tree={"all": []})  # e.g. edited behind the admin's back
    with pytest.raises(RuleInvalid):
        apply_rule(rule, now=NOW)
    assert holders(auto_tag) == {rich.pk}  # not "matches nobody, remove everyone"


def test_archived_target_cannot_gain_customers(make_rule, auto_tag):
    customer(total_spend=5000)
    rule = make_rule(RICH, tag=auto_tag)
    type(auto_tag).objects.filter(pk=auto_tag.pk).update(status="archived")
    with pytest.raises(RuleInvalid, match="archived"):
        apply_rule(rule, now=NOW)
    assert not TagAssignment.objects.exists()


def test_exclusive_auto_group_keeps_one_tag_per_customer(make_rule):
    group = TagGroupFactory(name="RFM分层", kind=TagKind.AUTO, exclusive=True)
    high, low = TagFactory(group=group, name="高价值"), TagFactory(group=group, name="低价值")
    rich_rule = make_rule(RICH, tag=high)
    poor_rule = make_rule({"not": RICH}, tag=low)
    mover, poor = customer(total_spend=5000), customer(total_spend=0)
    for rule in (rich_rule, poor_rule):
        apply_rule(rule, now=NOW)
    assert holders(high) == {mover.pk} and holders(low) == {poor.pk}

    type(mover).objects.filter(pk=mover.pk).update(total_spend=0)
    # The newcomer's rule runs first: it replaces the old tag, audited as a removal.
    outcome = apply_rule(poor_rule, now=NOW)
    assert (outcome.added, outcome.replaced) == (1, 1)
    assert holders(low) == {mover.pk, poor.pk} and holders(high) == set()
    replaced = AuditEntry.objects.get(action=AuditAction.ASSIGNMENT_REMOVED, tag=high)
    assert (replaced.customer_id, replaced.rule_id) == (mover.pk, poor_rule.pk)
    assert apply_rule(rich_rule, now=NOW).removed == 0  # nothing left to remove
    per_customer = TagAssignment.objects.filter(tag__group=group).values_list(
        "customer_id", flat=True
    )
    assert sorted(per_customer) == sorted({mover.pk, poor.pk})


def test_rules_building_on_tags(make_rule, auto_group):
    vip, dormant = (
        TagFactory(group=auto_group, name="VIP"),
        TagFactory(group=auto_group, name="VIP-待激活"),
    )
    vip_rule = make_rule(RICH, tag=vip)
    dormant_rule = make_rule(
        {
            "all": [
                {"tag": vip.pk, "op": "has"},
                {"attribute": "days_since_last_order", "op": "gte", "value": 180},
            ]
        },
        tag=dormant,
    )
    sleeping = customer(total_spend=5000, last_order_at=NOW - dt.timedelta(days=200))
    customer(total_spend=5000, last_order_at=NOW - dt.timedelta(days=2))
    customer(total_spend=0, last_order_at=NOW - dt.timedelta(days=200))
    apply_rule(vip_rule, now=NOW)
    apply_rule(dormant_rule, now=NOW)
    assert holders(dormant) == {sleeping.pk}


def test_save_and_delete_are_audited(superuser, auto_tag):
    rich = customer(total_spend=5000)
    rule = save_rule(Rule(name="高消费", tag=auto_tag, tree=RICH), actor=superuser)
    assert AuditEntry.objects.filter(action=AuditAction.RULE_CREATED, rule_id=rule.pk).exists()
    rule.tree = {"attribute": "total_spend", "op": "gt", "value": 2000}
    save_rule(rule, actor=superuser)
    change = AuditEntry.objects.get(action=AuditAction.RULE_UPDATED, rule_id=rule.pk)
    assert change.before["tree"] == RICH and change.after["tree"]["value"] == 2000
    apply_rule(rule, now=NOW)
    rule_id = rule.pk
    assert delete_rule(rule, actor=superuser) == 1
    assert not TagAssignment.objects.filter(customer=rich).exists()
    assert AuditEntry.objects.filter(action=AuditAction.RULE_DELETED, rule_id=rule_id).exists()
    assert AuditEntry.objects.filter(
        action=AuditAction.ASSIGNMENT_REMOVED, customer=rich, rule_id=rule_id
    ).exists()


def test_merged_tags_are_rewritten_in_rules(superuser, make_rule, auto_group):
    group = TagGroupFactory(name="会员")
    old, new = TagFactory(group=group, name="VIP"), TagFactory(group=group, name="VIP会员")
    rule = make_rule(
        {"all": [{"tag": old.pk, "op": "has"}, RICH]}, tag=TagFactory(group=auto_group)
    )
    assert rewrite_rules_for_merge([old.pk], new.pk) == 1
    rule.refresh_from_db()
    assert rule.tree["all"][0] == {"tag": new.pk, "op": "has"}
    assert AuditEntry.objects.filter(action=AuditAction.RULE_UPDATED, rule_id=rule.pk).exists()
    # merge_tags calls it: after a merge, rules read the target tag.
    newest = TagFactory(group=group, name="超级VIP")
    merge_tags([new], newest, actor=superuser)
    rule.refresh_from_db()
    assert rule.tree["all"][0]["tag"] == newest.pk
    rule.full_clean()


def test_events_drive_rules(make_rule, auto_tag):
    buyer = customer()
    event(buyer, amount=10, days_ago=3)
    event(buyer, amount=10, days_ago=10)
    rule = make_rule(
        {"event": "purchase", "window": {"days": 30}, "op": "gte", "value": 2}, tag=auto_tag
    )
    assert apply_rule(rule, now=NOW).added == 1
    assert apply_rule(rule, now=NOW + dt.timedelta(days=25)).removed == 1


def test_set_shaped_rules_select_from_the_set_directly(make_rule, auto_tag, superuser):
    """A rule that is one "in this set" condition skips the scan of all customers; the result
    is the same (distinct customers, whatever the number of events)."""
    from rules import dsl
    from rules.diff import matching_ids

    buyer, other = customer(), customer()
    for _ in range(3):
        event(buyer, days_ago=2)
    any_purchase = {"event": "purchase", "op": "gte", "value": 1}
    query = matching_ids(dsl.parse_tree(any_purchase), NOW)
    assert '"customers_customer"' not in str(query.query)
    assert sorted(query.values_list("customer_id", flat=True)) == [buyer.pk]
    rule = make_rule(any_purchase, tag=auto_tag)
    assert (apply_rule(rule, now=NOW).matched, apply_rule(rule, now=NOW).added) == (1, 0)
    # A negated set is not one: it goes through the customers.
    negated = matching_ids(dsl.parse_tree({"not": any_purchase}), NOW)
    assert sorted(negated.values_list("pk", flat=True)) == [other.pk]
