"""seed_demo's grants: each demo login sees a different admin."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from demo.seed import seed_demo
from permissions import policy
from permissions.policy import Level

pytestmark = pytest.mark.django_db


@pytest.fixture
def demo(settings):
    settings.LANGUAGE_CODE = "en"
    return seed_demo(customers=60, events_per_customer=1)


def login(username):
    return get_user_model().objects.get(username=username)


def names(qs):
    return set(qs.values_list("name", flat=True))


def test_demo_grants(demo):
    each_demo_login_sees_a_different_set_of_groups()
    finance_sees_payment_read_only_and_never_promotions()
    sales_proposals_wait_for_approval_and_sales_edit_intent()
    service_sees_sales_customers_through_sharing()


def each_demo_login_sees_a_different_set_of_groups():
    operators = [
        "market_li",
        "sales_wang",
        "sales_chen",
        "service_zhao",
        "service_xu",
        "finance_sun",
        "ops_zhou",
        "ops_wu",
    ]
    seen = {u: frozenset(policy.group_levels(login(u)).items()) for u in operators}
    assert len(set(seen.values())) == len(operators), seen
    assert policy.is_tag_admin(login("tagadmin"))


def finance_sees_payment_read_only_and_never_promotions():
    finance = login("finance_sun")
    assert "付款方式" in names(policy.visible_groups(finance))
    assert "付款方式" not in names(policy.visible_groups(finance, Level.EDIT))
    assert "促销活动" not in names(policy.visible_groups(finance))
    client = Client()
    client.force_login(finance)
    page = client.get(reverse("admin:tagging_taggroup_changelist")).content.decode()
    assert "付款方式" in page and "促销活动" not in page


def sales_proposals_wait_for_approval_and_sales_edit_intent():
    chen = login("sales_chen")  # 华东销售组, under 销售部
    assert policy.group_levels(chen)[policy.visible_groups(chen).get(name="意向").pk] == Level.EDIT
    product = policy.visible_groups(chen).get(name="商品偏好")
    assert policy.can_create_tag(chen, product) == (True, True)


def service_sees_sales_customers_through_sharing():
    service = login("service_zhao")
    sales = login("sales_wang")
    sales_customers = set(policy.visible_customers(sales).values_list("pk", flat=True))
    assert sales_customers
    assert sales_customers <= set(policy.visible_customers(service).values_list("pk", flat=True))
