"""Permission personas on top of tests/conftest.py.

- ``tag_admin``: holds ``permissions.manage_tags`` (not a superuser)
- ``sales_operator`` (销售部): EDIT on 意向
- ``finance_operator`` (财务部): VIEW on 付款方式
- ``outsider``: no department, no grant
- ``owner`` / ``non_owner``: a personal group 我的标记 belongs to ``owner``
"""

from __future__ import annotations

import pytest

from permissions import services
from permissions.policy import Level
from tagging.models import TagKind
from tests.factories import TagFactory, TagGroupFactory, UserFactory


@pytest.fixture
def payment_group(db):
    group = TagGroupFactory(name="付款方式")
    for name in ["微信", "支付宝", "对公转账"]:
        TagFactory(group=group, name=name)
    return group


@pytest.fixture
def promo_group(db):
    group = TagGroupFactory(name="促销活动")
    for name in ["双十一", "618"]:
        TagFactory(group=group, name=name)
    return group


@pytest.fixture
def owner(db):
    return UserFactory(username="owner", display_name="标签主人")


@pytest.fixture
def non_owner(db):
    return UserFactory(username="non_owner", display_name="别人")


@pytest.fixture
def personal_group(owner):
    group = TagGroupFactory(name="我的标记", kind=TagKind.PERSONAL, owner=owner)
    TagFactory(group=group, name="重点跟进")
    return group


@pytest.fixture
def granted(
    departments,
    sales_operator,
    finance_operator,
    intent_group,
    payment_group,
    promo_group,
    superuser,
):
    """The standard grants: 销售部 EDIT on 意向, 财务部 VIEW on 付款方式; 促销活动 has none."""
    services.grant(
        intent_group, actor=superuser, level=Level.EDIT, department=departments["销售部"]
    )
    services.grant(
        payment_group, actor=superuser, level=Level.VIEW, department=departments["财务部"]
    )
    return departments
