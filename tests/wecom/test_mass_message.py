"""群发 to a segment: one message per follower, split at WeCom's limit, scoped, results."""

from __future__ import annotations

import pytest
from django.urls import reverse

from customers.models import Customer
from tagging import services as tagging_services
from tagging.models import Segment, Tag
from tests.wecom.fake_wecom import Follow
from wecom.models import MassMessageStatus, WecomMassMessage
from wecom.services import mass
from wecom.services.contacts import sync_contacts
from wecom.services.library import sync_library

pytestmark = pytest.mark.django_db


@pytest.fixture
def segment(fake_wecom, wecom, employees, superuser):
    fake_wecom.add_group("意向", ["高"])
    sync_library(wecom)
    for i in range(5):
        follows = [Follow("zhangsan")] if i < 3 else [Follow("lisi")]
        if i == 0:
            follows.append(Follow("lisi"))  # two followers: receives it once, from zhangsan
        fake_wecom.add_contact(f"wm{i}", f"客户{i}", follows)
    sync_contacts(wecom)
    high = Tag.objects.get(name="高")
    tagging_services.assign_tags(Customer.objects.all(), [high], actor=None, source="api")
    return Segment.objects.create(name="高意向", expression={"tag": high.pk}, owner=superuser)


def test_one_message_per_follower_with_their_customers(segment, fake_wecom, wecom, superuser):
    message = mass.create_mass_message(
        segment,
        actor=superuser,
        text="双11 优惠",
        link_title="活动",
        link_url="https://example.com/a",
    )
    parts = {p.sender: sorted(p.external_userids) for p in message.parts.all()}
    assert parts == {"zhangsan": ["wm0", "wm1", "wm2"], "lisi": ["wm3", "wm4"]}
    assert message.customers == 5
    mass.send(message, wecom)
    assert message.status == MassMessageStatus.SENT
    calls = fake_wecom.calls("externalcontact/add_msg_template")
    assert len(calls) == 2
    assert calls[0].body["text"]["content"] == "双11 优惠"
    assert calls[0].body["attachments"][0]["link"]["url"] == "https://example.com/a"
    for part in message.parts.all():
        fake_wecom.confirm_mass_message(part.msgid)
    assert mass.fetch_results(message, wecom) == {"sent": 5}


def test_split_at_the_per_call_limit(segment, wecom, superuser, monkeypatch):
    monkeypatch.setattr(mass, "MAX_PER_CALL", 2)
    message = mass.create_mass_message(segment, actor=superuser, text="hi")
    sizes = sorted((p.sender, len(p.external_userids)) for p in message.parts.all())
    assert sizes == [("lisi", 2), ("zhangsan", 1), ("zhangsan", 2)]


def test_only_customers_the_user_may_see(segment, sales_operator, superuser):
    segment.shared = True
    segment.save()
    with pytest.raises(Exception) as exc:
        mass.create_mass_message(segment, actor=sales_operator, text="hi")
    assert "No customer" in str(exc.value)  # none of these customers is in 销售部's scope


def test_refusals(segment, superuser, outsider):
    from tagging.errors import NotFound, TaggingError

    with pytest.raises(TaggingError):
        mass.create_mass_message(segment, actor=superuser, text="  ")
    with pytest.raises(TaggingError):
        mass.create_mass_message(segment, actor=superuser, text="x", link_url="https://e.com")
    with pytest.raises(NotFound):
        mass.create_mass_message(segment, actor=outsider, text="x")


def test_wecom_failure_is_recorded_and_resent(segment, fake_wecom, wecom, superuser):
    message = mass.create_mass_message(segment, actor=superuser, text="hi")
    fake_wecom.fail_next("externalcontact/add_msg_template", 41048)
    mass.send(message, wecom)
    assert message.status == MassMessageStatus.PARTLY_FAILED
    assert message.parts.filter(errcode=41048).count() == 1
    mass.send(message, wecom)
    assert message.status == MassMessageStatus.SENT
    assert len(fake_wecom.calls("externalcontact/add_msg_template")) == 3


def test_admin_creates_and_sends(
    client, segment, fake_wecom, superuser, django_capture_on_commit_callbacks
):
    superuser.is_staff = True
    superuser.save()
    client.force_login(superuser)
    url = reverse("admin:wecom_wecommassmessage_add")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            url, {"segment": segment.pk, "text": "你好", "link_title": "", "link_url": ""}
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    message = WecomMassMessage.objects.get()
    assert message.status == MassMessageStatus.SENT
    bad = client.post(url, {"segment": segment.pk, "text": "x", "link_title": "t", "link_url": ""})
    assert bad.status_code == 200 and "both a title and a URL" in bad.content.decode()
