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
