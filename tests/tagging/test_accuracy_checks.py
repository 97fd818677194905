"""Accuracy checks (每周抽检5%的客户标签): a reproducible seeded sample of a group's or a
segment's customers, reviews marking tags correct / wrong / missing, per-tag error rates with
a Wilson interval, fixes through the assignment service; tag admins start them."""

from __future__ import annotations

import math

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from tagging import accuracy, services
from tagging.errors import TaggingError
from tagging.models import (
    AccuracyCheck,
    AccuracyMark,
    AuditAction,
    AuditEntry,
    Segment,
    TagAssignment,
)
from tests.conftest import tag
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def population(superuser, intent_group):
    people = CustomerFactory.create_batch(40)
    services.assign_tags(people[:30], [tag(intent_group, "高")], actor=superuser, source="manual")
    services.assign_tags(people[30:], [tag(intent_group, "低")], actor=superuser, source="manual")
    return people


def test_sample_size_rounds_up_and_is_bounded(settings):
    settings.TAGDESK_ACCURACY_SAMPLE_MAX = 50
    from tagging.accuracy import sample_size

    assert sample_size(0, 5) == 0
    assert sample_size(1, 5) == 1
    assert sample_size(40, 5) == 2
    assert sample_size(41, 5) == 3
    assert sample_size(100000, 5) == 50


def test_the_same_seed_draws_the_same_sample():
    ids = list(range(1, 1001))
    first = accuracy.draw_sample(ids, 5, seed=42)
    assert len(first) == 50
    assert accuracy.draw_sample(list(reversed(ids)), 5, seed=42) == first
    assert accuracy.draw_sample(ids, 5, seed=43) != first


def test_start_a_group_check(tag_admin, population, intent_group):
    check = accuracy.start_check(
        name="每周抽检", group=intent_group, percent=10, seed=7, actor=tag_admin
    )
    assert check.population == 40
    assert check.items.count() == 4
    again = accuracy.start_check(
        name="复查", group=intent_group, percent=10, seed=7, actor=tag_admin
    )
    assert list(again.items.values_list("customer_id", flat=True)) == list(
        check.items.values_list("customer_id", flat=True)
    )
    assert AuditEntry.objects.filter(action=AuditAction.ACCURACY_STARTED).count() == 2


def test_start_a_segment_check(tag_admin, population, intent_group):
    high = tag(intent_group, "高")
    segment = Segment.objects.create(name="高意向", expression={"tag": high.pk}, owner=tag_admin)
    check = accuracy.start_check(
        name="分群抽检", segment=segment, percent=100, seed=1, actor=tag_admin
    )
    assert check.population == 30 and list(check.tags.all()) == [high]


def test_refusals(tag_admin, intent_group, source_group):
    with pytest.raises(TaggingError):
        accuracy.start_check(name="x", actor=tag_admin)  # neither group nor segment
    with pytest.raises(TaggingError, match="nothing to sample"):
        accuracy.start_check(name="x", group=source_group, actor=tag_admin)
    with pytest.raises(TaggingError):
        accuracy.start_check(name="x", group=intent_group, percent=0, actor=tag_admin)


def test_review_report_and_fixes(tag_admin, population, intent_group):
    check = accuracy.start_check(
        name="抽检", group=intent_group, percent=100, seed=3, actor=tag_admin
    )
    high, low = tag(intent_group, "高"), tag(intent_group, "低")
    items = list(check.items.select_related("customer"))
    with_high = [
        i for i in items if TagAssignment.objects.filter(customer=i.customer, tag=high).exists()
    ]
    # 9 correct, 1 wrong (fixed: removed and low added as missing)
    for item in with_high[:9]:
        accuracy.record_review(item, {high.pk: "correct"}, actor=tag_admin, apply_fixes=False)
    wrong = with_high[9]
    result = accuracy.record_review(
        wrong, {high.pk: "wrong", low.pk: "missing"}, actor=tag_admin, apply_fixes=True
    )
    assert (result.removed, result.added) == (1, 1)
    held = set(
        TagAssignment.objects.filter(customer=wrong.customer).values_list("tag_id", flat=True)
    )
    assert held == {low.pk}
    report = accuracy.check_report(check)
    row = next(r for r in report["rows"] if r["tag"] == high)
    assert (row["correct"], row["wrong"], row["missing"], row["fixed"]) == (9, 1, 0, 1)
    assert row["error_rate"] == pytest.approx(0.1)
    assert row["low"] == pytest.approx(0.0179, abs=1e-3)
    assert row["high"] == pytest.approx(0.4042, abs=1e-3)
    assert report["reviewed"] == 10 and report["sampled"] == 40
    assert AuditEntry.objects.filter(action=AuditAction.ACCURACY_REVIEWED).count() == 10


def test_verdicts_must_fit_the_customer(tag_admin, population, intent_group):
    check = accuracy.start_check(
        name="抽检", group=intent_group, percent=100, seed=3, actor=tag_admin
    )
    high = tag(intent_group, "高")
    item = next(
        i
        for i in check.items.all()
        if TagAssignment.objects.filter(customer=i.customer, tag=high).exists()
    )
    with pytest.raises(TaggingError, match="cannot be missing"):
        accuracy.record_review(item, {high.pk: "missing"}, actor=tag_admin, apply_fixes=False)
    with pytest.raises(TaggingError):
        accuracy.record_review(item, {high.pk: "maybe"}, actor=tag_admin, apply_fixes=False)
    with pytest.raises(TaggingError, match="not part of this check"):
        accuracy.record_review(item, {999999: "correct"}, actor=tag_admin, apply_fixes=False)
    assert not AccuracyMark.objects.exists()


def test_wilson_interval_edges():
    assert accuracy.wilson_interval(0, 0) == (0.0, 0.0)
    low, high = accuracy.wilson_interval(0, 20)
    assert low == 0.0 and 0.15 < high < 0.17
    low, high = accuracy.wilson_interval(20, 20)
    assert high == 1.0 and 0.83 < low < 0.85
    assert math.isclose(sum(accuracy.wilson_interval(5, 10)), 1.0)


def test_admin_start_and_review(client, tag_admin, population, intent_group):
    client.force_login(tag_admin)
    response = client.post(
        reverse("admin:tagging_accuracycheck_add"),
        {"name": "每周抽检", "group": intent_group.pk, "percent": "5", "seed": "11"},
    )
    check = AccuracyCheck.objects.get()
    assert response.status_code == 302
    page = client.get(reverse("admin:tagging_accuracycheck_change", args=[check.pk]))
    body = page.content.decode()
    assert "95% confidence interval" in body and "seed 11" in body
    item = check.items.first()
    held = TagAssignment.objects.get(customer=item.customer, tag__group=intent_group).tag
    response = client.post(
        reverse("admin:tagging_accuracycheck_change", args=[check.pk]),
        {"item": item.pk, f"tag_{held.pk}": "correct"},
    )
    assert response.status_code == 302
    assert AccuracyMark.objects.get().verdict == "correct"


def test_operators_cannot_start_checks(client, sales_operator, intent_group):
    client.force_login(sales_operator)
    assert client.get(reverse("admin:tagging_accuracycheck_add")).status_code == 403


def test_check_list_queries_do_not_grow(client, tag_admin, population, intent_group):
    client.force_login(tag_admin)
    url = reverse("admin:tagging_accuracycheck_changelist")

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    accuracy.start_check(name="a", group=intent_group, percent=10, seed=1, actor=tag_admin)
    few = queries()
    for i in range(5):
        accuracy.start_check(
            name=f"b{i}", group=intent_group, percent=10, seed=i + 2, actor=tag_admin
        )
    assert queries() == few


def test_review_page_queries_do_not_grow_with_items(client, tag_admin, population, intent_group):
    client.force_login(tag_admin)
    small = accuracy.start_check(name="a", group=intent_group, percent=5, seed=1, actor=tag_admin)
    big = accuracy.start_check(name="b", group=intent_group, percent=50, seed=1, actor=tag_admin)

    def queries(check):
        with CaptureQueriesContext(connection) as ctx:
            url = reverse("admin:tagging_accuracycheck_change", args=[check.pk])
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    assert queries(small) == queries(big)


def test_reviewers_are_editors_of_the_group_within_their_scope(
    client, tag_admin, superuser, sales_operator, finance_operator, departments, intent_group
):
    from permissions import services as grants
    from permissions.policy import Level

    grants.grant(intent_group, actor=superuser, level=Level.EDIT, department=departments["销售部"])
    mine = CustomerFactory.create_batch(3, department=departments["销售部"])
    theirs = CustomerFactory.create_batch(3, department=departments["财务部"])
    services.assign_tags(mine + theirs, [tag(intent_group, "高")], actor=superuser, source="manual")
    check = accuracy.start_check(
        name="抽检", group=intent_group, percent=100, seed=5, actor=tag_admin
    )
    url = reverse("admin:tagging_accuracycheck_change", args=[check.pk])
    client.force_login(sales_operator)
    body = client.get(url).content.decode()
    assert all(str(c) in body for c in mine)
    assert not any(f"/customers/customer/{c.pk}/" in body for c in theirs)
    outside = check.items.get(customer=theirs[0])
    response = client.post(
        url, {"item": outside.pk, f"tag_{tag(intent_group, '高').pk}": "correct"}
    )
    assert response.status_code == 404
    client.force_login(finance_operator)  # may not edit 意向: the check does not exist for them
    assert client.get(url).status_code == 404
