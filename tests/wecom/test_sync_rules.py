"""Sync rules: per group, which way its assignments sync."""

from __future__ import annotations

import pytest

from customers.models import Customer
from tagging import services as tagging_services
from tagging.models import Tag, TagAssignment, TagGroup
from tests.wecom.fake_wecom import Follow
from wecom.models import SyncDirection, WecomGroupRule, WecomOutbox
from wecom.services import drift, outbox
from wecom.services.contacts import sync_contacts
from wecom.services.library import sync_library

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(fake_wecom, wecom, employees):
    fake_wecom.add_group("投诉客户", ["已投诉"])
    fake_wecom.add_group("意向", ["高"])
    sync_library(wecom)
    fake_wecom.add_contact("wmA", "甲", [Follow("zhangsan")])
    sync_contacts(wecom)
    return fake_wecom


def rule(name, direction):
    return WecomGroupRule.objects.create(group=TagGroup.objects.get(name=name), direction=direction)


def test_off_and_from_wecom_groups_never_reach_wecom(world, wecom):
    rule("投诉客户", SyncDirection.OFF)
    a = Customer.objects.get(external_userid="wmA")
    tagging_services.assign_tags([a], [Tag.objects.get(name="已投诉")], actor=None, source="api")
    assert not WecomOutbox.objects.exists()
    WecomGroupRule.objects.filter(group__name="投诉客户").update(direction=SyncDirection.FROM_WECOM)
    tagging_services.assign_tags([a], [Tag.objects.get(name="高")], actor=None, source="api")
    outbox.drain(wecom)
    assert world.relation_tags("zhangsan", "wmA") == {world.tag_id("意向", "高")}
    assert drift.check(wecom)["drift"] == 0


def test_to_wecom_and_off_groups_ignore_changes_made_in_wecom(world, wecom):
    rule("投诉客户", SyncDirection.TO_WECOM)
    rule("意向", SyncDirection.OFF)
    world.contacts["wmA"]["follows"]["zhangsan"].tags |= {
        world.tag_id("投诉客户", "已投诉"),
        world.tag_id("意向", "高"),
    }
    sync_contacts(wecom)
    assert not TagAssignment.objects.exists()
    # TagDesk is the authority for 投诉客户: the sync sends its state back (removes the tag).
    outbox.drain(wecom)
    assert world.relation_tags("zhangsan", "wmA") == {world.tag_id("意向", "高")}


def test_from_wecom_group_is_pulled(world, wecom):
    rule("意向", SyncDirection.FROM_WECOM)
    world.contacts["wmA"]["follows"]["zhangsan"].tags.add(world.tag_id("意向", "高"))
    sync_contacts(wecom)
    assert TagAssignment.objects.filter(tag__name="高").exists()
