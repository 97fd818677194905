"""The contact sync writes a page set-based: its queries do not grow with the contacts on it."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Customer, Follower
from tagging.models import TagAssignment
from tests.wecom.fake_wecom import Follow
from wecom.models import WecomRelation, WecomRelationTag
from wecom.services.contacts import apply_contacts
from wecom.services.library import sync_library

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(fake_wecom, wecom):
    fake_wecom.add_group("意向", ["高", "中", "低"])
    fake_wecom.add_group("来源", ["官网", "展会"])
    sync_library(wecom)
    return fake_wecom


def _seed(fake, prefix: str, count: int, start_phone: int) -> list[str]:
    high, web = fake.tag_id("意向", "高"), fake.tag_id("来源", "官网")
    ids = []
    for i in range(count):
        ext = f"{prefix}{i:03d}"
        fake.add_contact(
            ext,
            f"客户{ext}",
            [
                Follow(
                    "zhangsan",
                    createtime=1700000000,
                    state="活码",
                    remark_mobiles=[f"1380013{start_phone + i:04d}"],
                    tags={high},
                    personal=[("", "爱喝茶")],
                ),
                Follow("lisi", createtime=1700000100, tags={web}),
            ],
        )
        ids.append(ext)
    return ids


def _queries(wecom, ids: list[str]) -> int:
    answers = [wecom.contact(e) for e in ids]
    with CaptureQueriesContext(connection) as ctx:
        apply_contacts(answers)
    return len(ctx.captured_queries)


def test_a_page_of_new_contacts_costs_the_same_queries_for_3_or_30(library, wecom, employees):
    _queries(wecom, _seed(library, "wmW", 2, 0))  # the personal group and tag are made once
    small = _queries(wecom, _seed(library, "wmS", 3, 100))
    large = _queries(wecom, _seed(library, "wmL", 30, 200))
    assert small == large
    # The outbox enqueue is one INSERT … SELECT, each table one statement: 74 on PostgreSQL
    # and 71 on SQLite (79 / 76 before, savepoints included).
    assert large <= 74
    assert Customer.objects.count() == 35
    assert Follower.objects.count() == WecomRelation.objects.count() == 70
    assert WecomRelationTag.objects.count() == 70
    # 高, 官网 and the personal 爱喝茶 on every customer
    assert TagAssignment.objects.count() == 35 * 3
    assert Customer.objects.filter(phone__isnull=False, source="活码").count() == 35


def test_a_page_of_changed_contacts_costs_the_same_queries_for_3_or_30(library, wecom, employees):
    small_ids = _seed(library, "wmS", 3, 100)
    large_ids = _seed(library, "wmL", 30, 200)
    _queries(wecom, small_ids + large_ids)
    low = library.tag_id("意向", "低")
    for ext in small_ids + large_ids:  # employees change tags and remarks in WeCom
        follows = library.contacts[ext]["follows"]
        follows["zhangsan"].tags = {low}
        follows["lisi"].remark = "改过"
    small = _queries(wecom, small_ids)
    large = _queries(wecom, large_ids)
    assert small == large
    assert large <= 60  # 60 on PostgreSQL, 59 on SQLite (65 / 64 before)
    names = set(TagAssignment.objects.values_list("tag__name", flat=True))
    assert names == {"低", "官网", "爱喝茶"}
    assert set(
        Follower.objects.filter(employee__wecom_userid="lisi").values_list("remark", flat=True)
    ) == {"改过"}
