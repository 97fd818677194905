"""Personal-tag hygiene: personal tags no customer has been given for N days are listed monthly
for their owner, who keeps or archives them; audited; only the owner sees and decides."""

from __future__ import annotations

import datetime as dt

import pytest
from django.conf import settings
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tagging import services
from tagging.models import (
    AuditAction,
    AuditEntry,
    PersonalTagReview,
    Tag,
    TagAssignment,
    TagKind,
    TagStatus,
)
from tagging.tasks import list_stale_personal_tags_task
from tests.factories import TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db

LATER = dt.timedelta(days=31)


def personal(owner, name, group=None):
    group = group or TagGroupFactory(name="我的标签", kind=TagKind.PERSONAL, owner=owner)
    return TagFactory(group=group, name=name)


def test_monthly_task_is_scheduled():
    entry = settings.CELERY_BEAT_SCHEDULE["personal-tag-review-monthly"]
    assert entry["task"] == list_stale_personal_tags_task.name


def test_unused_personal_tags_are_listed_for_their_owner(sales_operator, customers):
    unused = personal(sales_operator, "周末可约")
    used = personal(sales_operator, "爱砍价", unused.group)
    services.assign_tags(customers[:1], [used], actor=sales_operator, source="manual")
    now = timezone.now() + LATER
    TagAssignment.objects.filter(tag=used).update(created_at=now - dt.timedelta(days=1))
    assert services.list_stale_personal_tags(now) == 1
    review = PersonalTagReview.objects.get()
    assert (review.tag, review.owner, review.customers) == (unused, sales_operator, 0)
    assert AuditEntry.objects.filter(action=AuditAction.TAG_REVIEW_LISTED, tag=unused).exists()
    # listed once: a second run changes nothing
    assert services.list_stale_personal_tags(now) == 0


def test_boundary_of_the_stale_period(sales_operator, settings):
    settings.TAGDESK_PERSONAL_TAG_STALE_DAYS = 30
    tag = personal(sales_operator, "新标签")
    created = Tag.objects.get(pk=tag.pk).created_at
    assert services.list_stale_personal_tags(created + dt.timedelta(days=30)) == 0
    assert services.list_stale_personal_tags(created + dt.timedelta(days=30, seconds=1)) == 1


def test_corporate_and_archived_tags_are_never_listed(sales_operator, source_group):
    archived = personal(sales_operator, "旧")
    Tag.objects.filter(pk=archived.pk).update(status=TagStatus.ARCHIVED)
    assert services.list_stale_personal_tags(timezone.now() + LATER) == 0


def test_keep_then_not_listed_again_until_another_period(sales_operator):
    tag = personal(sales_operator, "周末可约")
    Tag.objects.filter(pk=tag.pk).update(created_at=timezone.now() - LATER - LATER)
    assert services.list_stale_personal_tags() == 1
    review = PersonalTagReview.objects.get()
    services.keep_personal_tag(review, actor=sales_operator)  # decided now
    assert AuditEntry.objects.filter(action=AuditAction.TAG_KEPT, actor=sales_operator).exists()
    assert services.list_stale_personal_tags() == 0
    assert services.list_stale_personal_tags(timezone.now() + dt.timedelta(days=29)) == 0
    assert services.list_stale_personal_tags(timezone.now() + LATER) == 1


def test_archive_archives_the_tag_and_keeps_history(sales_operator, customers):
    tag = personal(sales_operator, "周末可约")
    services.assign_tags(customers[:2], [tag], actor=sales_operator, source="manual")
    TagAssignment.objects.update(created_at=timezone.now() - LATER)
    Tag.objects.filter(pk=tag.pk).update(created_at=timezone.now() - LATER)
    services.list_stale_personal_tags()
    review = PersonalTagReview.objects.get()
    assert review.customers == 2
    services.archive_personal_tag(review, actor=sales_operator)
    tag.refresh_from_db()
    assert tag.status == TagStatus.ARCHIVED
    assert TagAssignment.objects.filter(tag=tag).count() == 2
    assert AuditEntry.objects.filter(action=AuditAction.TAG_ARCHIVED, tag=tag).exists()


def test_only_the_owner_decides(sales_operator, tag_admin):
    from tagging.errors import NotFound, TaggingError

    personal(sales_operator, "周末可约")
    services.list_stale_personal_tags(timezone.now() + LATER)
    review = PersonalTagReview.objects.get()
    with pytest.raises(NotFound):
        services.keep_personal_tag(review, actor=tag_admin)
    services.keep_personal_tag(review, actor=sales_operator)
    with pytest.raises(TaggingError):
        services.archive_personal_tag(review, actor=sales_operator)


def test_admin_list_shows_only_my_reviews_and_acts(client, sales_operator, finance_operator):
    personal(sales_operator, "周末可约")
    personal(finance_operator, "财务私标")
    services.list_stale_personal_tags(timezone.now() + LATER)
    client.force_login(sales_operator)
    url = reverse("admin:tagging_personaltagreview_changelist")
    body = client.get(url).content.decode()
    assert "周末可约" in body and "财务私标" not in body
    mine = PersonalTagReview.objects.get(owner=sales_operator)
    theirs = PersonalTagReview.objects.get(owner=finance_operator)
    response = client.post(
        url, {"action": "archive", "_selected_action": [mine.pk, theirs.pk]}, follow=True
    )
    assert "1 tag archived." in response.content.decode()
    theirs.refresh_from_db()
    assert theirs.status == PersonalTagReview.Status.OPEN


def test_admin_list_queries_do_not_grow(client, sales_operator):
    group = TagGroupFactory(name="我的标签", kind=TagKind.PERSONAL, owner=sales_operator)
    client.force_login(sales_operator)
    url = reverse("admin:tagging_personaltagreview_changelist")

    def queries():
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    TagFactory(group=group, name="一")
    services.list_stale_personal_tags(timezone.now() + LATER)
    few = queries()
    for i in range(10):
        TagFactory(group=group, name=f"标签{i}")
    services.list_stale_personal_tags(timezone.now() + LATER)
    assert PersonalTagReview.objects.count() == 11
    assert queries() == few


def test_admin_index_points_the_owner_to_the_list(client, sales_operator, finance_operator):
    personal(sales_operator, "周末可约")
    services.list_stale_personal_tags(timezone.now() + LATER)
    client.force_login(sales_operator)
    body = client.get(reverse("admin:index")).content.decode()
    assert "1 of your personal tags has not been used lately" in body
    client.force_login(finance_operator)
    assert "not been used lately" not in client.get(reverse("admin:index")).content.decode()
