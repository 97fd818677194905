"""Contacts and followers from WeCom: customers, followers, phones, tags both kinds."""

from __future__ import annotations

from datetime import timedelta

import pytest

from customers.models import Customer, Follower
from tagging import services as tagging_services
from tagging.models import AssignmentSource, AuditAction, AuditEntry, Tag, TagAssignment, TagKind
from tests.factories import CustomerFactory
from tests.wecom.fake_wecom import Follow
from wecom.models import WecomRelation, WecomSyncIssue
from wecom.services.contacts import sync_contacts
from wecom.services.library import sync_library

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(fake_wecom, wecom):
    fake_wecom.add_group("意向", ["高", "中", "低"])
    fake_wecom.add_group("来源", ["官网", "展会"])
    sync_library(wecom)
    return fake_wecom


def tag_names(customer) -> set[str]:
    return set(TagAssignment.objects.filter(customer=customer).values_list("tag__name", flat=True))


def test_contacts_become_customers_with_followers_and_tags(library, wecom, employees):
    fake = library
    high, web = fake.tag_id("意向", "高"), fake.tag_id("来源", "官网")
    fake.add_contact(
        "wmA",
        "张客户",
        [
            Follow(
                "zhangsan",
                remark="老客户",
                createtime=1700000000,
                add_way=1,
                state="展会活码",
                remark_mobiles=["13800138000"],
                tags={high},
                personal=[("", "爱喝茶")],
            ),
            Follow("lisi", createtime=1700000100, add_way=202, tags={web}),
        ],
    )
    stats = sync_contacts(wecom)
    customer = Customer.objects.get(external_userid="wmA")
    assert customer.name == "张客户"
    assert customer.phone == "+8613800138000"
    assert customer.source == "展会活码"
    followers = {f.employee.wecom_userid: f for f in Follower.objects.filter(customer=customer)}
    assert followers["zhangsan"].remark == "老客户"
    assert followers["lisi"].add_way == 202
    assert followers["zhangsan"].added_at.timestamp() == 1700000000
    assert tag_names(customer) == {"高", "官网", "爱喝茶"}
    sync_assignment = TagAssignment.objects.get(customer=customer, tag__name="高")
    assert sync_assignment.source == AssignmentSource.SYNC
    personal = Tag.objects.get(name="爱喝茶")
    assert personal.group.kind == TagKind.PERSONAL
    assert personal.group.owner == employees["zhangsan"]
    assert stats["customers_created"] == 1
    # TagDesk's one truth per customer goes back to every follower.
    assert fake.calls("externalcontact/mark_tag") == []  # not yet: the outbox drains later
    from wecom.services.outbox import drain

    drain(wecom)
    assert fake.relation_tags("lisi", "wmA") == {high, web}
    assert fake.relation_tags("zhangsan", "wmA") == {high, web}


def test_phone_only_customer_gains_its_external_userid_and_keeps_tags(library, wecom, employees):
    existing = CustomerFactory(external_userid=None, phone="+8613900139000")
    low = Tag.objects.get(name="低")
    tagging_services.assign_tags([existing], [low], actor=None, source="import")
    library.add_contact("wmB", "李", [Follow("zhangsan", remark_mobiles=["139 0013 9000"])])
    sync_contacts(wecom)
    existing.refresh_from_db()
    assert existing.external_userid == "wmB"
    assert tag_names(existing) == {"低"}
    assert Customer.objects.count() == 1


def test_the_sync_writes_its_rows_with_their_provenance_and_defaults(library, wecom, employees):
    """The page's set-based writes (wecom.services.sql) fill what the ORM did: the customer's
    defaults, its audit entries (source sync, ``before`` NULL on a creation), the relationship
    and follower columns."""
    existing = CustomerFactory(external_userid=None, phone="+8613900139000", name="")
    library.add_contact(
        "wmP", "李", [Follow("zhangsan", remark_mobiles=["13900139000"], state="码")]
    )
    library.add_contact("wmQ", "新客户", [Follow("lisi", createtime=1700000000, remark="备")])
    sync_contacts(wecom)
    created = Customer.objects.get(external_userid="wmQ")
    assert (created.name, created.remark, created.attributes, created.total_spend) == (
        "新客户",
        "",
        {},
        0,
    )
    assert created.order_count == 0
    assert abs(created.updated_at - created.created_at) < timedelta(seconds=1)
    entry = AuditEntry.objects.get(customer=created)
    assert (entry.action, entry.source, entry.actor, entry.reason) == (
        AuditAction.CUSTOMER_CREATED,
        AssignmentSource.SYNC,
        None,
        "",
    )
    assert AuditEntry.objects.filter(customer=created, before__isnull=True).exists()
    assert entry.after["external_userid"] == "wmQ" and entry.object_repr == "新客户"
    updated = AuditEntry.objects.get(customer=existing, action=AuditAction.CUSTOMER_UPDATED)
    assert (updated.before["external_userid"], updated.after["external_userid"]) == (None, "wmP")
    assert (updated.after["name"], updated.after["source"], updated.source) == ("李", "码", "sync")
    existing.refresh_from_db()
    assert existing.updated_at > existing.created_at
    relation = WecomRelation.objects.get(external_userid="wmQ")
    assert (relation.userid, relation.employee, relation.customer) == (
        "lisi",
        employees["lisi"],
        created,
    )
    assert (relation.state, relation.state_applied) == ("", "")
    follower = Follower.objects.get(customer=created)
    assert (follower.remark, follower.added_at.timestamp()) == ("备", 1700000000)


def test_unknown_userid_is_logged_and_the_rest_goes_on(library, wecom, employees):
    library.add_contact("wmC", "王", [Follow("ghost"), Follow("lisi")])
    sync_contacts(wecom)
    customer = Customer.objects.get(external_userid="wmC")
    assert list(customer.followers.values_list("employee__wecom_userid", flat=True)) == ["lisi"]
    assert WecomSyncIssue.objects.get(code="unknown_userid").wecom_id == "ghost"


def test_follow_user_pages_are_all_read(library, wecom, employees):
    library.follow_page_size = 1
    library.add_contact("wmD", "赵", [Follow("zhangsan"), Follow("lisi")])
    sync_contacts(wecom)
    assert WecomRelation.objects.filter(external_userid="wmD").count() == 2
    assert any(r.params.get("cursor") for r in library.calls("externalcontact/get"))


def test_tag_removed_in_wecom_is_removed_in_tagdesk(library, wecom, employees):
    high = library.tag_id("意向", "高")
    library.add_contact("wmE", "钱", [Follow("zhangsan", tags={high})])
    sync_contacts(wecom)
    customer = Customer.objects.get(external_userid="wmE")
    assert tag_names(customer) == {"高"}
    library.contacts["wmE"]["follows"]["zhangsan"].tags.clear()
    sync_contacts(wecom)
    assert tag_names(customer) == set()


def test_deleted_follower_and_contact_lose_relations_not_tags(library, wecom, employees):
    high = library.tag_id("意向", "高")
    library.add_contact("wmF", "孙", [Follow("zhangsan", tags={high}), Follow("lisi", tags={high})])
    sync_contacts(wecom)
    del library.contacts["wmF"]["follows"]["lisi"]
    sync_contacts(wecom)
    customer = Customer.objects.get(external_userid="wmF")
    assert list(customer.followers.values_list("employee__wecom_userid", flat=True)) == ["zhangsan"]
    del library.contacts["wmF"]
    sync_contacts(wecom)
    assert not WecomRelation.objects.exists()
    assert tag_names(customer) == {"高"}


def test_bad_phone_is_logged_and_contact_still_imported(library, wecom, employees):
    library.add_contact("wmG", "周", [Follow("zhangsan", remark_mobiles=["12345"])])
    sync_contacts(wecom)
    assert Customer.objects.get(external_userid="wmG").phone is None
    assert WecomSyncIssue.objects.filter(code="invalid_phone").exists()


def test_a_follow_user_wecom_refuses_is_logged_and_the_others_synced(library, wecom, employees):
    library.add_contact("wmH", "吴", [Follow("lisi")])
    library.follow_user_ids.insert(0, "gone")
    library.fail_next("externalcontact/list", 60111)  # WeCom no longer knows that userid
    stats = sync_contacts(wecom)
    assert stats["follow_users_skipped"] == 1
    assert Customer.objects.filter(external_userid="wmH").exists()
    assert WecomSyncIssue.objects.get(code="wecom_60111").wecom_id == "gone"
