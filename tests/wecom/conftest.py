"""The fake WeCom server and the settings that point TagDesk at it."""

from __future__ import annotations

import pytest

from tests.factories import UserFactory
from tests.wecom.fake_wecom import FakeWecom


@pytest.fixture
def fake_wecom(settings):
    fake = FakeWecom().start()
    settings.WECOM_CORP_ID = fake.corp_id
    settings.WECOM_SECRET = fake.secret
    settings.WECOM_CALLBACK_TOKEN = fake.callback_token
    settings.WECOM_CALLBACK_AES_KEY = fake.aes_key
    settings.WECOM_API_BASE = fake.url
    settings.WECOM_HTTP_TIMEOUT = 2
    settings.WECOM_OUTBOX_RATE = 1000
    settings.WECOM_OUTBOX_RETRY_SECONDS = 0
    yield fake
    fake.stop()


@pytest.fixture
def wecom(fake_wecom):
    from wecom.client import get_wecom

    return get_wecom()


@pytest.fixture
def employees(db):
    return {
        "zhangsan": UserFactory(username="zhangsan", wecom_userid="zhangsan"),
        "lisi": UserFactory(username="lisi", wecom_userid="lisi"),
    }


@pytest.fixture
def receiver(settings):
    """A local CRM on 127.0.0.1 (ephemeral port) that verifies every webhook's signature."""
    from tests.wecom.fake_receiver import FakeReceiver

    settings.CRM_WEBHOOK_ENABLED = True
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = True  # the receiver listens on loopback
    settings.CRM_WEBHOOK_TIMEOUT = 0.5
    settings.CRM_WEBHOOK_RETRY_SECONDS = 0
    fake = FakeReceiver().start()
    yield fake
    fake.stop()


class Clock:
    """A controllable ``django.utils.timezone.now``: time moves only when a test says so."""

    def __init__(self) -> None:
        from django.utils import timezone

        self.now = timezone.now()

    def __call__(self):
        return self.now

    def advance(self, **delta) -> None:
        from datetime import timedelta

        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch):
    from django.utils import timezone

    fake = Clock()
    monkeypatch.setattr(timezone, "now", fake)
    return fake


@pytest.fixture
def level(db):
    """A tag group 会员等级 with 黄金会员 and 白银会员 (the CRM webhook tests)."""
    from tests.factories import TagFactory, TagGroupFactory

    group = TagGroupFactory(name="会员等级")
    return {
        "group": group,
        "gold": TagFactory(group=group, name="黄金会员"),
        "silver": TagFactory(group=group, name="白银会员"),
    }


@pytest.fixture
def endpoint(receiver, level):
    """A webhook endpoint on the fake CRM receiving 会员等级's changes."""
    from wecom.models import WebhookEndpoint

    ep = WebhookEndpoint.objects.create(name="CRM", url=receiver.url, secret=receiver.secret)
    ep.groups.add(level["group"])
    return ep


@pytest.fixture
def admin_client(client, tag_admin):
    """The admin as a staff tag admin (not a superuser), for the WeCom admin pages that tag
    admins run; replaces pytest-django's superuser ``admin_client`` in these tests."""
    tag_admin.is_staff = True
    tag_admin.save()
    client.force_login(tag_admin)
    return client
