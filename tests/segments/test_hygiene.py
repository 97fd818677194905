"""Tag hygiene: unused and small tags, overlapping pairs, near-duplicate names, previews, and
merge following into saved segments and rules."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from customers.models import Customer
from rules.models import Rule
from tagging import hygiene, segments
from tagging.models import (
    HygieneReport,
    Segment,
    Tag,
    TagAssignment,
    TagKind,
    TagStatus,
)
from tagging.services import assign_tags, merge_tags
from tagging.tasks import hygiene_monthly_report_task
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory


@pytest.fixture
def prefs(db):
    group = TagGroupFactory(name="偏好")
    names = ["不吃香菜", "不要香菜", "VIP客", "VIP客户", "喜欢咖啡", "喜欢茶", "高意向", "低意向"]
    return group, {n: TagFactory(group=group, name=n) for n in names}


def test_near_duplicate_names(prefs):
    _group, tags = prefs
    pairs = {(p.a.name, p.b.name) for p in hygiene.near_duplicate_names()}
    assert ("不吃香菜", "不要香菜") in pairs
    assert ("VIP客", "VIP客户") in pairs
    assert ("喜欢咖啡", "喜欢茶") not in pairs  # 0.5 similar
    assert ("高意向", "低意向") not in pairs  # 0.67
    assert hygiene.name_similarity("ＶＩＰ客", "vip客") == 1.0  # folded


def test_near_duplicates_stay_within_a_kind_and_skip_exclusive_alternatives(prefs, superuser):
    personal = TagGroupFactory(name="我的", kind=TagKind.PERSONAL, owner=superuser)
    TagFactory(group=personal, name="不吃香菜!")
    exclusive = TagGroupFactory(name="等级", exclusive=True)
    TagFactory(group=exclusive, name="VIP一级")
    TagFactory(group=exclusive, name="VIP二级")
    names = {(p.a.name, p.b.name) for p in hygiene.near_duplicate_names()}
    assert not any("不吃香菜!" in pair for pair in names)
    assert ("VIP一级", "VIP二级") not in names


def test_overlapping_pairs_by_jaccard(superuser, prefs):
    _group, tags = prefs
    people = CustomerFactory.create_batch(20)
    assign_tags(people, [tags["不吃香菜"]], actor=superuser, source="manual")
    assign_tags(people[:18], [tags["不要香菜"]], actor=superuser, source="manual")  # 18/20 = 0.9
    assign_tags(people[:5], [tags["喜欢茶"]], actor=superuser, source="manual")  # subset, 0.25
    found = hygiene.overlapping_pairs()
    assert [(o.a, o.b) for o in found] == [
        tuple(sorted((tags["不吃香菜"].pk, tags["不要香菜"].pk)))
    ]
    assert found[0].both == 18 and found[0].jaccard == pytest.approx(0.9)
    sql = hygiene.overlapping_pairs_sql([t.pk for t in tags.values()], 0.85)
    assert {(o.a, o.b, o.both) for o in sql if o.jaccard >= 0.85} == {(found[0].a, found[0].b, 18)}


def _overlapping(superuser, group, label, union, both):
    """Tags A (``union`` customers) and B (``both`` of them): Jaccard both / union."""
    people = Customer.objects.bulk_create(
        Customer(external_userid=f"wmOVL{label}{i:03d}") for i in range(union)
    )
    a = TagFactory(group=group, name=f"{label}甲")
    b = TagFactory(group=group, name=f"{label}乙")
    assign_tags(people, [a], actor=superuser, source="manual")
    assign_tags(people[:both], [b], actor=superuser, source="manual")
    return tuple(sorted((a.pk, b.pk)))


def test_overlap_threshold_boundary(superuser):
    """The default threshold is 0.85 inclusive: 0.84 is not a merge candidate, 0.85 and 0.86
    are (each pair on its own customers, so pairs across them share nobody)."""
    group = TagGroupFactory(name="重叠")
    below = _overlapping(superuser, group, "下", 25, 21)  # 21/25 = 0.84
    at = _overlapping(superuser, group, "等", 20, 17)  # 17/20 = 0.85
    above = _overlapping(superuser, group, "上", 50, 43)  # 43/50 = 0.86
    assert hygiene.OVERLAP_THRESHOLD == 0.85
    found = {(o.a, o.b): o.jaccard for o in hygiene.overlapping_pairs()}
    assert found == {above: pytest.approx(0.86), at: pytest.approx(0.85)}
    assert below not in found
    tag_pks = [pk for pair in (below, at, above) for pk in pair]
    by_sql = {
        (o.a, o.b)
        for o in hygiene.overlapping_pairs_sql(tag_pks)
        if o.jaccard >= hygiene.OVERLAP_THRESHOLD
    }
    assert by_sql == {at, above}
    # The threshold is a parameter: at 0.86 only the 0.86 pair is left, at 0.84 all three.
    assert {(o.a, o.b) for o in hygiene.overlapping_pairs(threshold=0.86)} == {above}
    assert {(o.a, o.b) for o in hygiene.overlapping_pairs(threshold=0.84)} == {below, at, above}


def test_unused_for_90_days_boundary(superuser, prefs):
    """Unused = no customer added for 90 days (default): 90 days minus a minute after the last
    addition the tag is in use, 90 days and a minute after it, unused."""
    _group, tags = prefs
    now = timezone.now()
    Tag.objects.filter(pk__in=[t.pk for t in tags.values()]).update(
        created_at=now - dt.timedelta(days=400)
    )
    coffee = tags["喜欢咖啡"]
    assign_tags([CustomerFactory()], [coffee], actor=superuser, source="manual")
    added = TagAssignment.objects.get(tag=coffee).created_at
    assert hygiene.UNUSED_DAYS == 90
    minute = dt.timedelta(minutes=1)
    soon = added + dt.timedelta(days=90) - minute
    later = added + dt.timedelta(days=90) + minute
    assert coffee.pk not in {t.pk for t in hygiene.unused_tags(now=soon)}
    assert coffee.pk in {t.pk for t in hygiene.unused_tags(now=later)}
    # A tag younger than 90 days is never "unused", even with no customer at all.
    young = tags["高意向"]
    Tag.objects.filter(pk=young.pk).update(created_at=later - dt.timedelta(days=90) + minute)
    unused = {t.pk for t in hygiene.unused_tags(now=later)}
    assert young.pk not in unused
    assert tags["低意向"].pk in unused  # 400 days old, never used


def test_small_tags_boundary(superuser, prefs):
    """Small = fewer than N customers (default 5): 4 is small, 5 is not."""
    _group, tags = prefs
    people = CustomerFactory.create_batch(5)
    assign_tags(people[:4], [tags["喜欢茶"]], actor=superuser, source="manual")
    assign_tags(people, [tags["喜欢咖啡"]], actor=superuser, source="manual")
    assert hygiene.SMALL_TAG_CUSTOMERS == 5
    small = {t.name: t.customer_count for t in hygiene.small_tags()}
    assert small["喜欢茶"] == 4
    assert "喜欢咖啡" not in small
    assert "喜欢咖啡" in {t.name for t in hygiene.small_tags(6)}


def test_unused_and_small_tags(superuser, prefs):
    _group, tags = prefs
    old = timezone.now() - dt.timedelta(days=200)
    Tag.objects.filter(pk__in=[t.pk for t in tags.values()]).update(created_at=old)
    people = CustomerFactory.create_batch(6)
    assign_tags(people, [tags["喜欢咖啡"]], actor=superuser, source="manual")
    assign_tags(people[:2], [tags["喜欢茶"]], actor=superuser, source="manual")
    unused = {t.name for t in hygiene.unused_tags(90)}
    assert "喜欢咖啡" not in unused and "喜欢茶" not in unused and "不吃香菜" in unused
    later = timezone.now() + dt.timedelta(days=120)
    assert "喜欢咖啡" in {t.name for t in hygiene.unused_tags(90, now=later)}
    small = {t.name: t.customer_count for t in hygiene.small_tags(5)}
    assert small["喜欢茶"] == 2 and small["不吃香菜"] == 0 and "喜欢咖啡" not in small


def test_merge_preview_then_merge_rewrites_segments_and_rules(superuser, prefs):
    _group, tags = prefs
    a, b = tags["不要香菜"], tags["不吃香菜"]
    people = CustomerFactory.create_batch(5)
    assign_tags(people[:3], [a], actor=superuser, source="manual")
    assign_tags(people[2:], [b], actor=superuser, source="manual")
    seg = Segment.objects.create(
        name="香菜",
        owner=superuser,
        expression=segments.parse("偏好:不要香菜 OR 偏好:不吃香菜", superuser),
    )
    other = Segment.objects.create(
        name="咖啡", owner=superuser, expression={"tag": tags["喜欢咖啡"].pk}
    )
    preview = hygiene.preview_merge([a], b)
    assert preview["customers_moving"] == 3
    assert preview["customers_already_on_target"] == 1
    assert preview["target_customers_after"] == 5
    assert preview["segments_rewritten"] == ["香菜"]
    merge_tags([a], b, actor=superuser)
    seg.refresh_from_db()
    assert seg.expression == {"tag": b.pk}  # "A or B" became "B"
    other.refresh_from_db()
    assert other.expression == {"tag": tags["喜欢咖啡"].pk}
    assert segments.count(seg.expression, superuser) == 5
    a.refresh_from_db()
    assert a.status == TagStatus.ARCHIVED and a.merged_into_id == b.pk


def test_merge_rewrites_rule_trees(superuser, prefs):
    _group, tags = prefs
    a, b = tags["VIP客"], tags["VIP客户"]
    auto = TagFactory(group=TagGroupFactory(name="自动规则", kind=TagKind.AUTO), name="VIP跟进")
    rule = Rule(name="VIP跟进", tag=auto, tree={"tag": a.pk, "op": "has"})
    rule.full_clean()
    rule.save()
    assert hygiene.preview_merge([a], b)["rules_rewritten"] == ["VIP跟进"]
    assert hygiene.preview_archive(a)["rules_naming_it"] == ["VIP跟进"]
    merge_tags([a], b, actor=superuser)
    rule.refresh_from_db()
    assert rule.tree["tag"] == b.pk


def test_monthly_report_task_stores_suggestions(prefs):
    summary = hygiene_monthly_report_task()
    report = HygieneReport.objects.get()
    assert summary == report.summary
    assert report.summary["near_duplicates"] >= 2
    assert {"不吃香菜", "不要香菜"} <= {
        name.split(":")[1]
        for p in report.payload["near_duplicates"]
        for name in (p["a_name"], p["b_name"])
    }
