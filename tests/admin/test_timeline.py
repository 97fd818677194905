"""The customer change page shows current tags, the tag timeline, followers and events."""

from __future__ import annotations

import pytest
from django.urls import reverse

from customers.models import Customer
from rules.models import Rule
from tagging import services
from tagging.models import AssignmentSource, TagKind
from tests.admin.conftest import assign
from tests.conftest import tag
from tests.factories import EventFactory, FollowerFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db


def test_timeline_shows_who_when_what_source_and_reason(
    root_client, superuser, customers, intent_group
):
    customer = customers[0]
    assign([customer], [tag(intent_group, "低")], superuser, reason="首次沟通")
    assign([customer], [tag(intent_group, "高")], superuser)  # replaces 低
    auto = TagFactory(group=TagGroupFactory(name="自动标签", kind=TagKind.AUTO), name="高价值")
    rule = Rule.objects.create(name="消费满2000", tag=auto)
    services.assign_tags([customer], [auto], actor=None, source=AssignmentSource.RULE, rule=rule)
    FollowerFactory(customer=customer, employee=superuser)
    EventFactory(customer=customer, kind="message", text="请问价格")

    response = root_client.get(reverse("admin:customers_customer_change", args=[customer.pk]))
    assert response.status_code == 200
    timeline = list(response.context["timeline"])
    assert len(timeline) == 4
    body = response.content.decode()
    for text in (
        "意向:低",
        "意向:高",
        "首次沟通",
        "replaced in an exclusive group",
        "消费满2000",
        "超级管理员",
    ):
        assert text in body, text
    assert "tag added to customer" in body and "tag removed from customer" in body
    current = [a.tag.name for a in response.context["current_tags"]]
    assert sorted(current) == ["高", "高价值"]
    assert "请问价格" in body  # recent events
    assert body.count("超级管理员") >= 3  # timeline rows and the follower inline


def test_change_page_saves_a_normalised_phone(root_client, customers):
    customer = customers[0]
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    data = {
        "name": customer.name,
        "external_userid": customer.external_userid,
        "phone": "+86 138-0013-8000",
        "company": "",
        "remark": "",
        "owner": "",
        "department": "",
        "source": "官网",
        "attributes": "{}",
        "added_at_0": "2026-01-01",
        "added_at_1": "10:00:00",
        "followers-TOTAL_FORMS": "0",
        "followers-INITIAL_FORMS": "0",
        "followers-MIN_NUM_FORMS": "0",
        "followers-MAX_NUM_FORMS": "1000",
    }
    response = root_client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    customer.refresh_from_db()
    assert customer.phone == "+8613800138000"

    data["phone"] = "010 6552 9988"  # a landline
    response = root_client.post(url, data)
    assert response.status_code == 200
    assert "not a mobile number" in " ".join(response.context["adminform"].form.errors["phone"])
    assert Customer.objects.get(pk=customer.pk).phone == "+8613800138000"
