"""The outbox through a real Celery worker on Redis, and a worker killed with SIGKILL mid-drain:
WeCom ends with TagDesk's state and no call is repeated beyond the one in flight."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from django.db import connection

from customers.models import Customer
from tagging import services as tagging_services
from tagging.models import Tag
from tests.conftest import wait_for
from tests.wecom.fake_wecom import Follow
from wecom import tasks
from wecom.models import OutboxStatus, WecomOutbox
from wecom.services import drift, outbox
from wecom.services.contacts import sync_contacts
from wecom.services.library import sync_library


def _seed(fake, wecom, contacts: int):
    fake.add_group("意向", ["高", "中"])
    sync_library(wecom)
    for i in range(contacts):
        fake.add_contact(f"wm{i:03d}", f"客户{i}", [Follow("zhangsan")])
    sync_contacts(wecom)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="needs REDIS_URL (CI sets it)")
def test_a_real_worker_drains_the_outbox(celery_worker, fake_wecom, wecom, employees):
    _seed(fake_wecom, wecom, 3)
    # The assignment commits; its on_commit hook sends wecom.drain_outbox to the Redis broker.
    tagging_services.assign_tags(
        Customer.objects.all(), [Tag.objects.get(name="高")], actor=None, source="api"
    )
    high = fake_wecom.tag_id("意向", "高")
    assert wait_for(
        lambda: all(fake_wecom.relation_tags("zhangsan", f"wm{i:03d}") == {high} for i in range(3))
    )
    assert wait_for(lambda: not WecomOutbox.objects.filter(status=OutboxStatus.PENDING).exists())
    assert len(fake_wecom.calls("externalcontact/mark_tag")) == 3


SENDERS = 3  # mark_tag calls in flight at once in the killed drain


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a second process needs PostgreSQL")
def test_worker_killed_mid_drain_resumes_without_extra_calls(
    fake_wecom, wecom, employees, settings, monkeypatch
):
    count = 30
    _seed(fake_wecom, wecom, count)
    monkeypatch.setattr(tasks, "kick_drain", lambda: None)  # the killed process drains
    tagging_services.assign_tags(
        Customer.objects.all(), [Tag.objects.get(name="高")], actor=None, source="api"
    )
    fake_wecom.latency = 0.05
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "WECOM_CORP_ID": settings.WECOM_CORP_ID,
        "WECOM_SECRET": settings.WECOM_SECRET,
        "WECOM_API_BASE": settings.WECOM_API_BASE,
        "WECOM_OUTBOX_RATE": "1000",
        "WECOM_OUTBOX_CONCURRENCY": str(SENDERS),
    }
    env.pop("REDIS_URL", None)  # its own local cache: the test process' token is not shared
    worker = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from wecom.client import get_wecom; from wecom.services import outbox; outbox.drain(get_wecom())",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    assert wait_for(lambda: len(fake_wecom.calls("externalcontact/mark_tag")) >= 5, timeout=60)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    sent_before = len(fake_wecom.calls("externalcontact/mark_tag"))
    assert sent_before < count
    time.sleep(0.2)  # let the last in-flight request land in the log
    fake_wecom.latency = 0
    outbox.drain(wecom)
    high = fake_wecom.tag_id("意向", "高")
    assert all(fake_wecom.relation_tags("zhangsan", f"wm{i:03d}") == {high} for i in range(count))
    calls = fake_wecom.calls("externalcontact/mark_tag")
    per_relation = {}
    for call in calls:
        per_relation[call.body["external_userid"]] = (
            per_relation.get(call.body["external_userid"], 0) + 1
        )
    # Only the relationships whose calls were in flight at the kill (one per sender) may be
    # sent twice.
    assert len(calls) <= count + SENDERS
    assert sum(1 for n in per_relation.values() if n > 1) <= SENDERS
    assert drift.check(wecom)["drift"] == 0
