"""The drain's concurrent senders (PostgreSQL, outside a transaction): every relationship gets
its final state in one call, none is sent twice, order per relationship holds."""

from __future__ import annotations

import pytest
from django.db import connection

from customers.models import Customer
from tagging import services as tagging_services
from tagging.models import Tag
from tests.wecom.fake_wecom import Follow
from wecom import tasks
from wecom.models import OutboxStatus, WecomOutbox
from wecom.services import outbox
from wecom.services.contacts import sync_contacts
from wecom.services.library import sync_library

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="senders need PostgreSQL"),
]


def test_concurrent_senders_send_each_relationship_once_in_order(
    fake_wecom, wecom, employees, settings, monkeypatch
):
    settings.WECOM_OUTBOX_CONCURRENCY = 4
    monkeypatch.setattr(tasks, "kick_drain", lambda: None)  # the drain below sends it all
    fake_wecom.add_group("意向", ["高", "中"])
    sync_library(wecom)
    for i in range(24):
        fake_wecom.add_contact(f"wm{i:03d}", f"客户{i}", [Follow("zhangsan"), Follow("lisi")])
    sync_contacts(wecom)
    high, middle = Tag.objects.get(name="高"), Tag.objects.get(name="中")
    everyone = Customer.objects.all()
    tagging_services.assign_tags(everyone, [high], actor=None, source="api")
    tagging_services.assign_tags(everyone, [middle], actor=None, source="api")
    first_six = list(everyone.order_by("id")[:6])
    tagging_services.unassign_tags(first_six, [high], actor=None, source="api")
    fake_wecom.latency = 0.01
    fake_wecom.requests.clear()
    counts = outbox.drain(wecom)
    assert counts["sent"] == 48
    assert not WecomOutbox.objects.filter(status=OutboxStatus.PENDING).exists()
    calls = fake_wecom.calls("externalcontact/mark_tag")
    pairs = [(c.body["userid"], c.body["external_userid"]) for c in calls]
    assert len(pairs) == len(set(pairs)) == 48  # one call per relationship: the final state
    dropped = {c.external_userid for c in first_six}
    h, m = fake_wecom.tag_id("意向", "高"), fake_wecom.tag_id("意向", "中")
    for i in range(24):
        want = {m} if f"wm{i:03d}" in dropped else {h, m}
        assert fake_wecom.relation_tags("zhangsan", f"wm{i:03d}") == want
        assert fake_wecom.relation_tags("lisi", f"wm{i:03d}") == want
    assert outbox.drain(wecom)["sent"] == 0


def test_concurrent_senders_hold_delayed_changes_and_what_is_behind_them(
    fake_wecom, wecom, employees, settings, monkeypatch, clock
):
    """docs/wecom.md#sync-delay--同步延迟: with four senders, a held row and every later row of
    its relationship wait for the due time; the other relationships go at once."""
    from tagging.models import TagGroup
    from wecom.models import WecomGroupRule

    settings.WECOM_OUTBOX_CONCURRENCY = 4
    monkeypatch.setattr(tasks, "kick_drain", lambda: None)
    fake_wecom.add_group("投诉客户", ["已投诉"])
    fake_wecom.add_group("意向", ["高"])
    sync_library(wecom)
    for i in range(24):
        fake_wecom.add_contact(f"wm{i:03d}", f"客户{i}", [Follow("zhangsan"), Follow("lisi")])
    sync_contacts(wecom)
    outbox.drain(wecom)
    WecomGroupRule.objects.create(group=TagGroup.objects.get(name="投诉客户"), delay_minutes=60)
    complaint, high = Tag.objects.get(name="已投诉"), Tag.objects.get(name="高")
    everyone = Customer.objects.order_by("id")
    held = list(everyone[:12])
    tagging_services.assign_tags(held, [complaint], actor=None, source="api")
    tagging_services.assign_tags(everyone, [high], actor=None, source="api")
    fake_wecom.latency = 0.01
    fake_wecom.requests.clear()
    assert outbox.drain(wecom)["sent"] == 24  # the 12 customers without a hold, 2 followers each
    calls = fake_wecom.calls("externalcontact/mark_tag")
    waiting = {c.external_userid for c in held}
    assert not [c for c in calls if c.body["external_userid"] in waiting]
    assert WecomOutbox.objects.filter(status=OutboxStatus.PENDING).count() == 48
    clock.advance(minutes=60)
    fake_wecom.requests.clear()
    assert outbox.drain(wecom)["sent"] == 24
    calls = fake_wecom.calls("externalcontact/mark_tag")
    pairs = [(c.body["userid"], c.body["external_userid"]) for c in calls]
    assert len(pairs) == len(set(pairs)) == 24  # held and later change together, once
    c, h = fake_wecom.tag_id("投诉客户", "已投诉"), fake_wecom.tag_id("意向", "高")
    for i in range(24):
        want = {c, h} if f"wm{i:03d}" in waiting else {h}
        assert fake_wecom.relation_tags("zhangsan", f"wm{i:03d}") == want
    assert not WecomOutbox.objects.filter(status=OutboxStatus.PENDING).exists()
