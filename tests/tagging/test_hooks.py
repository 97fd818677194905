"""tagging.hooks: a merge announces itself to the registered handlers (rules, segments) inside
its own transaction, so a failing handler leaves the taxonomy as it was."""

from __future__ import annotations

import pytest
from django.db import transaction

from rules.services import rewrite_rules_for_merge
from tagging import hooks, services
from tagging.models import AuditAction, AuditEntry, Segment, Tag, TagAssignment, TagStatus
from tagging.segments import rewrite_segments_for_merge
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory


@pytest.fixture
def pair(db):
    group = TagGroupFactory(name="饮食偏好")
    return TagFactory(group=group, name="不吃香菜"), TagFactory(group=group, name="不要香菜")


def test_rules_and_segments_register_in_their_app_configs():
    handlers = hooks.tags_merged_handlers()
    assert rewrite_segments_for_merge in handlers
    assert rewrite_rules_for_merge in handlers


def test_registering_twice_keeps_one_registration(monkeypatch):
    monkeypatch.setattr(hooks, "_tags_merged", [])

    def handler(source_ids, target_id):
        return None

    assert hooks.on_tags_merged(handler) is handler
    hooks.on_tags_merged(handler)
    assert hooks.tags_merged_handlers() == (handler,)


def test_handlers_see_the_merge_and_its_ids(monkeypatch, superuser, pair):
    source, target = pair
    seen = []

    def handler(source_ids, target_id):
        # Runs after the merge's writes, in the same transaction.
        seen.append((list(source_ids), target_id, Tag.objects.get(pk=source.pk).status))

    monkeypatch.setattr(hooks, "_tags_merged", [*hooks.tags_merged_handlers(), handler])
    services.merge_tags([source], target, actor=superuser)
    assert seen == [([source.pk], target.pk, TagStatus.ARCHIVED)]


def test_a_failing_handler_rolls_the_whole_merge_back(monkeypatch, superuser, pair):
    source, target = pair
    customer = CustomerFactory()
    services.assign_tags([customer], [source], actor=superuser, source="manual")
    segment = Segment.objects.create(name="香菜", owner=superuser, expression={"tag": source.pk})
    audits = AuditEntry.objects.count()

    def boom(source_ids, target_id):
        raise RuntimeError("handler failed")

    # The real handlers run first (the segment is rewritten), then the failing one.
    monkeypatch.setattr(hooks, "_tags_merged", [*hooks.tags_merged_handlers(), boom])
    with pytest.raises(RuntimeError, match="handler failed"):
        services.merge_tags([source], target, actor=superuser)
    source.refresh_from_db()
    segment.refresh_from_db()
    assert source.status == TagStatus.ACTIVE and source.merged_into_id is None
    assert list(TagAssignment.objects.values_list("customer_id", "tag_id")) == [
        (customer.pk, source.pk)
    ]
    assert segment.expression == {"tag": source.pk}
    assert AuditEntry.objects.count() == audits
    assert not AuditEntry.objects.filter(action=AuditAction.TAG_MERGED).exists()


@pytest.mark.django_db(transaction=True)
def test_running_the_hooks_outside_a_transaction_is_refused(monkeypatch):
    called = []
    monkeypatch.setattr(hooks, "_tags_merged", [lambda s, t: called.append(s)])
    with pytest.raises(RuntimeError, match="inside the merge's transaction"):
        hooks.tags_merged([1], 2)
    assert called == []
    with transaction.atomic():
        hooks.tags_merged([1], 2)
    assert called == [[1]]
