"""The protection lock (docs/wecom.md#protection-lock--保护锁): locked customer fields (by
default every personal one: phone = remark_mobiles, remark, name, company, followers'
remarks...) never leave TagDesk. Checked on every request the fake WeCom and the fake CRM
received during a full round of syncs, pushes, callbacks, outbox retries, a repair, a 群发 and
webhook deliveries; and the guard refuses a body that would carry one."""

from __future__ import annotations

import json

import pytest

from customers.models import Customer
from customers.services import upsert_customer
from tagging import services as tagging_services
from tagging.models import Segment, Tag, TagGroup
from tests.factories import TagFactory, TagGroupFactory
from tests.wecom.fake_wecom import Follow
from wecom.client import get_wecom
from wecom.models import OutboxStatus, WebhookEndpoint, WecomOutbox
from wecom.services import drift, mass, outbox, protection, webhook
from wecom.services.runs import full_sync

pytestmark = pytest.mark.django_db

SECRETS = ["13800138000", "8613800138000", "13900139000", "VIP老客户备注", "神秘公司", "张秘密"]


def everything_leaves(fake_wecom, receiver, superuser):
    """Every outbound path once: library push, contact sync, mark_tag with a retry, a repair,
    a 群发 and CRM webhook deliveries (one with a retry)."""
    fake_wecom.add_group("意向", ["高", "中"])
    fake_wecom.add_contact(
        "wmA",
        "张秘密",
        [Follow("zhangsan", remark="VIP老客户备注", remark_mobiles=["13800138000"])],
    )
    upsert_customer(
        phone="13900139000", name="李", remark="VIP老客户备注", company="神秘公司", via="api"
    )
    TagFactory(group=TagGroupFactory(name="来源"), name="官网")
    full_sync(library=True, contacts=True, chats=True)
    endpoint = WebhookEndpoint.objects.create(name="CRM", url=receiver.url, secret=receiver.secret)
    endpoint.groups.set(TagGroup.objects.all())
    customers = list(Customer.objects.all())
    receiver.answer(503)
    tagging_services.assign_tags(
        customers, list(Tag.objects.filter(name__in=["高", "官网"])), actor=None, source="api"
    )
    fake_wecom.fail_next("externalcontact/mark_tag", 45009)
    wecom = get_wecom()
    outbox.drain(wecom)
    fake_wecom.contacts["wmA"]["follows"]["zhangsan"].tags.clear()
    drift.check(wecom, repair=True)
    high = Tag.objects.get(name="高")
    segment = Segment.objects.create(name="高意向", expression={"tag": high.pk}, owner=superuser)
    mass.send(mass.create_mass_message(segment, actor=superuser, text="双11 优惠"), wecom)
    assert webhook.drain()["sent"] == 1


def assert_nothing_leaks(fake_wecom, receiver):
    assert len(fake_wecom.requests) > 10
    for request in fake_wecom.requests:
        sent = json.dumps([request.params, request.body], ensure_ascii=False)
        for secret in SECRETS:
            assert secret not in sent, (request.endpoint, secret)
    for request in receiver.requests:
        sent = request.body.decode() + json.dumps(request.headers, ensure_ascii=False)
        for secret in SECRETS:
            assert secret not in sent, ("webhook", secret)
    endpoints = {r.endpoint for r in fake_wecom.requests}
    assert {"externalcontact/mark_tag", "externalcontact/add_msg_template"} <= endpoints
    assert len(receiver.requests) == 2  # a 503, then the delivery


def test_no_request_to_wecom_or_the_crm_carries_a_locked_field(
    fake_wecom, receiver, employees, superuser
):
    everything_leaves(fake_wecom, receiver, superuser)
    assert_nothing_leaks(fake_wecom, receiver)
    customers = receiver.requests[-1].json["changes"]
    assert all(set(c["customer"]) == {"id", "external_userid"} for c in customers)


def test_released_fields_reach_only_the_webhook(fake_wecom, receiver, employees, superuser):
    protection.set_locked_fields(
        [f for f in protection.LOCKABLE_FIELDS if f != "company"], actor=None
    )
    everything_leaves(fake_wecom, receiver, superuser)
    companies = [c["customer"].get("company") for c in receiver.requests[-1].json["changes"]]
    assert "神秘公司" in companies  # released: the CRM gets it
    SECRETS.remove("神秘公司")
    try:
        assert_nothing_leaks(fake_wecom, receiver)
    finally:
        SECRETS.append("神秘公司")
    for request in fake_wecom.requests:  # WeCom calls never carry customer fields at all
        assert "神秘公司" not in json.dumps(request.body, ensure_ascii=False)


def test_a_mark_tag_carrying_a_locked_value_is_a_dead_letter(fake_wecom, wecom, employees):
    fake_wecom.add_group("意向", ["高"])
    fake_wecom.add_contact("wmA", "甲", [Follow("zhangsan")])
    full_sync(library=True, contacts=True, chats=False)
    outbox.drain(wecom)
    customer = Customer.objects.get(external_userid="wmA")
    customer.name = "wmA"  # a locked value equal to a string of the body
    customer.save()
    fake_wecom.requests.clear()
    tagging_services.assign_tags([customer], [Tag.objects.get(name="高")], actor=None, source="api")
    assert outbox.drain(wecom)["dead"] == 1
    row = WecomOutbox.objects.get(status=OutboxStatus.DEAD)
    assert "protection lock" in row.error and "name" in row.error
    assert not fake_wecom.calls("externalcontact/mark_tag")


def test_a_mass_message_naming_a_customers_phone_is_refused(
    fake_wecom, wecom, employees, superuser
):
    fake_wecom.add_group("意向", ["高"])
    fake_wecom.add_contact("wmA", "甲", [Follow("zhangsan", remark_mobiles=["13800138000"])])
    full_sync(library=True, contacts=True, chats=False)
    high = Tag.objects.get(name="高")
    tagging_services.assign_tags(Customer.objects.all(), [high], actor=None, source="api")
    segment = Segment.objects.create(name="高意向", expression={"tag": high.pk}, owner=superuser)
    message = mass.create_mass_message(segment, actor=superuser, text="您的号码 13800138000 已登记")
    mass.send(message, wecom)
    part = message.parts.get()
    assert part.msgid == "" and "protection lock" in part.error
    assert not fake_wecom.calls("externalcontact/add_msg_template")


def test_guard_rules():
    from tests.factories import CustomerFactory

    a = CustomerFactory(name="高", remark="备注很长的一段")
    protection.guard({"tag": "高意向"}, [a.pk])  # a one-character name only matches whole
    with pytest.raises(protection.ProtectedFieldError):
        protection.guard({"x": ["高"]}, [a.pk])
    with pytest.raises(protection.ProtectedFieldError):
        protection.guard({"text": "见 备注很长的一段 吧"}, [a.pk])
    with pytest.raises(protection.ProtectedFieldError):
        protection.guard({"m": a.phone[3:]}, [a.pk])  # the national form of +86 phones
    protection.set_locked_fields([], actor=None)
    protection.guard({"x": ["高", a.phone]}, [a.pk])  # everything released: nothing refused
