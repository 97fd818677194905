"""API personas and a small world with two departments that must not see each other.

- ``sales_operator`` (销售部): EDIT on 意向 and 客户偏好, VIEW on 客户来源 and 自动; a personal
  group 我的标签 with 周末可约; customers ``sales_customers`` (销售部).
- ``finance_operator`` (财务部): VIEW on 付款方式; a personal group with 财务私标; customers
  ``finance_customers`` (财务部).
- ``tag_admin``: permissions.manage_tags (sees all customers, CREATE on every shared group).
"""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from rest_framework.test import APIClient

from permissions import services as grants
from permissions.models import DeviceToken
from permissions.policy import Level
from tagging.models import TagKind
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory


@pytest.fixture(autouse=True)
def _private_cache(settings):
    """Throttle counters and tag usage live in the cache: each test gets an empty one of its
    own (never clearing a shared Redis database that other tests or a worker use)."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": f"api-tests-{uuid.uuid4()}",
        }
    }
    from rules.realtime import prime_index

    prime_index()  # no real-time rules yet: marking needs no query


@pytest.fixture
def world(departments, sales_operator, finance_operator, intent_group, source_group, superuser):
    sales, finance = departments["销售部"], departments["财务部"]
    prefs = TagGroupFactory(name="客户偏好")
    for name in ["牛奶过敏", "不吃香菜", "减脂期"]:
        TagFactory(group=prefs, name=name)
    payment = TagGroupFactory(name="付款方式")
    for name in ["微信", "对公转账"]:
        TagFactory(group=payment, name=name)
    auto = TagGroupFactory(name="自动标签", kind=TagKind.AUTO)
    high_value = TagFactory(group=auto, name="高价值")
    grants.grant(intent_group, actor=superuser, level=Level.EDIT, department=sales)
    grants.grant(prefs, actor=superuser, level=Level.EDIT, department=sales)
    grants.grant(source_group, actor=superuser, level=Level.VIEW, department=sales)
    grants.grant(auto, actor=superuser, level=Level.VIEW, department=sales)
    grants.grant(payment, actor=superuser, level=Level.VIEW, department=finance)
    sales_personal = TagGroupFactory(name="我的标签", kind=TagKind.PERSONAL, owner=sales_operator)
    finance_personal = TagGroupFactory(
        name="我的标签", kind=TagKind.PERSONAL, owner=finance_operator
    )
    return SimpleNamespace(
        sales=sales,
        finance=finance,
        intent=intent_group,
        source=source_group,
        prefs=prefs,
        payment=payment,
        auto=auto,
        high_value=high_value,
        sales_personal=sales_personal,
        finance_personal=finance_personal,
        weekend=TagFactory(group=sales_personal, name="周末可约"),
        finance_private=TagFactory(group=finance_personal, name="财务私标"),
        sales_customers=CustomerFactory.create_batch(3, department=sales),
        finance_customers=CustomerFactory.create_batch(2, department=finance),
    )


def tag(group, name):
    return group.tags.get(name=name)


def client_for(user) -> APIClient:
    client = APIClient()
    _token, key = DeviceToken.objects.issue(user, "tests")
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


@pytest.fixture
def sales_api(world, sales_operator):
    return client_for(sales_operator)


@pytest.fixture
def finance_api(world, finance_operator):
    return client_for(finance_operator)


@pytest.fixture
def admin_api(world, tag_admin):
    return client_for(tag_admin)


def assert_error(response, status: int, code: str | None = None):
    """The one error shape of docs/api.md#errors."""
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body["error"]
