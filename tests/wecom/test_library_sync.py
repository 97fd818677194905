"""The tag library both ways: pull, push, renames, order, moves, deletes, bad names."""

from __future__ import annotations

import pytest

from tagging import services as tagging_services
from tagging.models import Tag, TagGroup, TagStatus
from tests.factories import TagFactory, TagGroupFactory
from wecom.models import WecomSyncIssue, WecomTagGroupLink, WecomTagLink
from wecom.services.library import sync_library

pytestmark = pytest.mark.django_db


def local_library() -> dict[str, list[str]]:
    out = {}
    for group in TagGroup.objects.filter(wecom_link__isnull=False).order_by("sort_order", "id"):
        out[group.name] = list(
            group.tags.filter(status=TagStatus.ACTIVE)
            .order_by("sort_order", "id")
            .values_list("name", flat=True)
        )
    return out


def test_pull_creates_groups_and_tags_in_wecom_order(fake_wecom, wecom):
    fake_wecom.add_group("客户等级", ["VIP", "普通"], order=1)
    fake_wecom.add_group("意向", ["高", "中", "低"], order=5)
    stats = sync_library(wecom)
    assert stats["groups_created_in_tagdesk"] == 2
    assert stats["tags_created_in_tagdesk"] == 5
    assert local_library() == {"意向": ["高", "中", "低"], "客户等级": ["VIP", "普通"]}
    assert WecomTagLink.objects.get(wecom_id=fake_wecom.tag_id("意向", "高")).tag.name == "高"
    # Nothing was pushed back: the libraries agree.
    assert not fake_wecom.calls("externalcontact/add_corp_tag")
    assert not fake_wecom.calls("externalcontact/edit_corp_tag")


def test_pull_matches_existing_group_and_tag_by_name(fake_wecom, wecom):
    group = TagGroupFactory(name="意向")
    high = TagFactory(group=group, name="高")
    fake_wecom.add_group("意向", ["高", "中"])
    sync_library(wecom)
    assert WecomTagGroupLink.objects.get().group == group
    assert WecomTagLink.objects.get(wecom_id=fake_wecom.tag_id("意向", "高")).tag == high
    assert set(group.tags.values_list("name", flat=True)) == {"高", "中"}


def test_push_creates_renames_reorders_and_round_trips(fake_wecom, wecom):
    group = TagGroupFactory(name="客户来源")
    web = TagFactory(group=group, name="官网", sort_order=1)
    fair = TagFactory(group=group, name="展会", sort_order=2)
    sync_library(wecom)
    assert fake_wecom.library() == {"客户来源": ["官网", "展会"]}

    tagging_services.update_tag(web, actor=None, name="官方网站")
    tagging_services.reorder_tags(group, [fair.pk, web.pk], actor=None)
    new = tagging_services.create_tag(group, "转介绍", actor=None)
    sync_library(wecom)
    assert fake_wecom.library() == {"客户来源": ["展会", "官方网站", "转介绍"]}
    assert WecomTagLink.objects.filter(tag=new).exists()

    # A second sync changes nothing on either side.
    before = len(fake_wecom.requests)
    stats = sync_library(wecom)
    assert [r.endpoint for r in fake_wecom.requests[before:]] == [
        "externalcontact/get_corp_tag_list"
    ]
    assert not any(k for k, v in stats.items() if v)


def test_rename_and_shuffle_in_wecom_are_pulled(fake_wecom, wecom):
    gid = fake_wecom.add_group("意向", ["高", "中", "低"])
    sync_library(wecom)
    high, low = fake_wecom.tag_id("意向", "高"), fake_wecom.tag_id("意向", "低")
    fake_wecom.groups[gid]["tags"][high]["name"] = "很高"
    fake_wecom.groups[gid]["tags"][low]["order"] = 99  # shuffle: 低 first
    sync_library(wecom)
    assert local_library() == {"意向": ["低", "很高", "中"]}
    assert not fake_wecom.calls("externalcontact/edit_corp_tag")


def test_group_deleted_in_wecom_deletes_it_in_tagdesk(fake_wecom, wecom, customers):
    gid = fake_wecom.add_group("活动", ["双11", "618"])
    sync_library(wecom)
    tag = Tag.objects.get(name="双11")
    tagging_services.assign_tags(customers[:2], [tag], actor=None, source="api")
    del fake_wecom.groups[gid]
    stats = sync_library(wecom)
    assert stats["tags_deleted_in_tagdesk"] == 2
    assert not TagGroup.objects.filter(name="活动").exists()
    assert not WecomTagGroupLink.objects.exists()


def test_group_deleted_in_tagdesk_is_deleted_in_wecom(fake_wecom, wecom):
    fake_wecom.add_group("活动", ["双11"])
    fake_wecom.add_group("意向", ["高"])
    sync_library(wecom)
    group = TagGroup.objects.get(name="活动")
    for tag in group.tags.all():
        tagging_services.delete_tag(tag, actor=None, confirm=True)
    tagging_services.delete_group(group, actor=None)
    sync_library(wecom)
    assert fake_wecom.library() == {"意向": ["高"]}
    assert sync_library(wecom).get("tags_created_in_tagdesk", 0) == 0


def test_move_to_another_group_is_copy_then_delete(fake_wecom, wecom, customers):
    from tests.factories import UserFactory
    from tests.wecom.fake_wecom import Follow
    from wecom.services.contacts import sync_contacts

    UserFactory(wecom_userid="zhangsan")
    fake_wecom.add_group("来源", ["展会"])
    fake_wecom.add_group("活动", ["双11"])
    sync_library(wecom)
    old_id = fake_wecom.tag_id("来源", "展会")
    fake_wecom.add_contact("wmA", "甲", [Follow("zhangsan", tags={old_id})])
    sync_contacts(wecom)
    tag = Tag.objects.get(name="展会")
    tagging_services.update_tag(tag, actor=None, group=TagGroup.objects.get(name="活动"))
    sync_library(wecom)
    assert fake_wecom.library() == {"活动": ["双11", "展会"]} or fake_wecom.library() == {
        "活动": ["展会", "双11"]
    }
    new_id = fake_wecom.tag_id("活动", "展会")
    assert new_id != old_id
    assert fake_wecom.relation_tags("zhangsan", "wmA") == {new_id}
    endpoints = [r.endpoint for r in fake_wecom.requests]
    # copy, then re-assign, then delete — never an edit of the group
    assert endpoints.index("externalcontact/add_corp_tag") < endpoints.index(
        "externalcontact/mark_tag"
    )
    assert endpoints.index("externalcontact/mark_tag") < endpoints.index(
        "externalcontact/del_corp_tag"
    )


def test_names_over_30_characters_are_skipped_and_logged(fake_wecom, wecom):
    long_name = "长" * 31
    fake_wecom.add_group("意向", ["高", long_name])
    fake_wecom.add_group("组" * 31, ["A"])
    sync_library(wecom)
    assert local_library() == {"意向": ["高"]}
    issues = WecomSyncIssue.objects.filter(code="tag_name_too_long")
    assert issues.count() == 2
    assert "30" in issues.first().message


def test_a_rename_wecom_refuses_is_logged_and_the_rest_goes_on(fake_wecom, wecom):
    fake_wecom.add_group("意向", ["高", "中"])
    sync_library(wecom)
    tagging_services.update_tag(Tag.objects.get(name="高"), actor=None, name="很高")
    tagging_services.update_tag(Tag.objects.get(name="中"), actor=None, name="一般")
    fake_wecom.fail_next("externalcontact/edit_corp_tag", 40071)
    sync_library(wecom)
    issue = WecomSyncIssue.objects.get(code="wecom_40071")
    assert issue.kind == "tag"
    assert sorted(fake_wecom.library()["意向"]) == sorted(["高", "一般"])
    # The next sync tries again and succeeds.
    sync_library(wecom)
    assert sorted(fake_wecom.library()["意向"]) == sorted(["很高", "一般"])
