"""Customer fields that must never leave TagDesk (phone, remark_mobiles, remark, name,
company): checked on every request the fake WeCom received during a full round of syncs,
pushes, callbacks, outbox retries and a repair."""

from __future__ import annotations

import json

import pytest

from customers.models import Customer
from customers.services import upsert_customer
from tagging import services as tagging_services
from tagging.models import Tag
from tests.factories import TagFactory, TagGroupFactory
from tests.wecom.fake_wecom import Follow
from wecom.client import get_wecom
from wecom.services import drift, outbox
from wecom.services.runs import full_sync

pytestmark = pytest.mark.django_db

SECRETS = ["13800138000", "8613800138000", "13900139000", "VIP老客户备注", "神秘公司", "张秘密"]


def test_no_request_to_wecom_carries_a_protected_field(fake_wecom, employees):
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
    customer = Customer.objects.get(external_userid="wmA")
    tagging_services.assign_tags(
        [customer], list(Tag.objects.filter(name__in=["高", "官网"])), actor=None, source="api"
    )
    fake_wecom.fail_next("externalcontact/mark_tag", 45009)
    wecom = get_wecom()
    outbox.drain(wecom)
    fake_wecom.contacts["wmA"]["follows"]["zhangsan"].tags.clear()
    drift.check(wecom, repair=True)
    assert len(fake_wecom.requests) > 10
    for request in fake_wecom.requests:
        sent = json.dumps([request.params, request.body], ensure_ascii=False)
        for secret in SECRETS:
            assert secret not in sent, (request.endpoint, secret)
    assert any(r.endpoint == "externalcontact/mark_tag" for r in fake_wecom.requests)
