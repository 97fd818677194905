"""Every limit of the spec at its boundary: the last value allowed and the first one refused
(SPEC: name ≤ 30 characters, ≤ 3000 tags, ≤ 100 groups, ≤ 100 tags per group, ≤ 50 corporate
tags per customer). Big limits are lowered through settings so the boundary is cheap to reach;
the first test pins the defaults themselves. The batch limit (500) is pinned where batches
enter: tests/api/test_batch.py and tests/admin/test_bulk_tags.py."""

from __future__ import annotations

import pytest
from django.conf import settings as django_settings

from tagging import services
from tagging.errors import InvalidTagName, LimitExceeded
from tagging.models import Tag, TagAssignment, TagGroup, TagKind, TagStatus
from tests.conftest import tag
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db


def test_the_spec_defaults():
    assert django_settings.TAGDESK_TAG_NAME_MAX_LENGTH == 30
    assert django_settings.TAGDESK_MAX_TAGS == 3000
    assert django_settings.TAGDESK_MAX_GROUPS == 100
    assert django_settings.TAGDESK_MAX_TAGS_PER_GROUP == 100
    assert django_settings.TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER == 50
    assert django_settings.TAGDESK_MAX_BATCH_CUSTOMERS == 500


# --- names: 30 characters ----------------------------------------------------------------------


@pytest.mark.parametrize("length, allowed", [(29, True), (30, True), (31, False)])
def test_group_name_length(superuser, length, allowed):
    name = "组" * length
    if allowed:
        assert services.create_group(name=name, actor=superuser).name == name
    else:
        with pytest.raises(InvalidTagName) as info:
            services.create_group(name=name, actor=superuser)
        assert info.value.code == "tag_name_too_long"
        assert not TagGroup.objects.exists()


@pytest.mark.parametrize("length, allowed", [(30, True), (31, False)])
def test_renaming_a_tag_or_group_keeps_the_limit(superuser, source_group, length, allowed):
    official = tag(source_group, "官网")
    name = "名" * length
    if allowed:
        assert services.update_tag(official, actor=superuser, name=name).name == name
        services.update_group(source_group, actor=superuser, name=name)
    else:
        with pytest.raises(InvalidTagName):
            services.update_tag(official, actor=superuser, name=name)
        with pytest.raises(InvalidTagName):
            services.update_group(source_group, actor=superuser, name=name)
        official.refresh_from_db()
        source_group.refresh_from_db()
        assert (official.name, source_group.name) == ("官网", "客户来源")


def test_the_length_is_counted_after_trimming(superuser, source_group):
    """Surrounding whitespace is not part of the name, so 30 characters plus spaces fit."""
    created = services.create_tag(source_group, "  " + "长" * 30 + "\u3000", actor=superuser)
    assert created.name == "长" * 30


def test_the_name_limit_follows_the_setting(settings, superuser, source_group):
    settings.TAGDESK_TAG_NAME_MAX_LENGTH = 5
    services.create_tag(source_group, "五个字标签", actor=superuser)
    with pytest.raises(InvalidTagName):
        services.create_tag(source_group, "六个字的标签", actor=superuser)


# --- tags in all (3000) --------------------------------------------------------------------------


def test_tags_in_all_nth_allowed_next_refused(settings, superuser):
    settings.TAGDESK_MAX_TAGS = 3
    first, second = TagGroupFactory(name="甲"), TagGroupFactory(name="乙")
    TagFactory(group=first, name="一")
    TagFactory(group=second, name="二")
    services.create_tag(second, "三", actor=superuser)  # the 3rd: allowed
    with pytest.raises(LimitExceeded) as info:
        services.create_tag(first, "四", actor=superuser)  # the 4th, in any group: refused
    assert "limit of 3 tags" in str(info.value)
    assert Tag.objects.count() == 3


def test_tags_in_all_count_pending_and_auto_but_not_archived_or_personal(settings, superuser):
    settings.TAGDESK_MAX_TAGS = 2
    auto = TagGroupFactory(name="自动", kind=TagKind.AUTO)
    shared = TagGroupFactory(name="共享")
    TagFactory(group=auto, name="自动一")
    TagFactory(group=shared, name="待批", status=TagStatus.PENDING)
    TagFactory(group=shared, name="旧", status=TagStatus.ARCHIVED)
    with pytest.raises(LimitExceeded):
        services.create_tag(shared, "新", actor=superuser)
    mine = TagGroupFactory(name="我的", kind=TagKind.PERSONAL, owner=superuser)
    assert services.create_tag(mine, "私人", actor=superuser).status == TagStatus.ACTIVE


def test_restoring_an_archived_tag_counts_again(settings, superuser):
    """Archived tags free their place; bringing one back needs the place again."""
    settings.TAGDESK_MAX_TAGS = 2
    group = TagGroupFactory(name="来源")
    old = services.create_tag(group, "旧", actor=superuser)
    services.archive_tag(old, actor=superuser)
    services.create_tag(group, "一", actor=superuser)
    services.create_tag(group, "二", actor=superuser)
    with pytest.raises(LimitExceeded):
        services.restore_tag(old, actor=superuser)
    old.refresh_from_db()
    assert old.status == TagStatus.ARCHIVED
    settings.TAGDESK_MAX_TAGS = 3
    assert services.restore_tag(old, actor=superuser).status == TagStatus.ACTIVE


# --- groups (100) -------------------------------------------------------------------------------


def test_groups_nth_allowed_next_refused(settings, superuser):
    settings.TAGDESK_MAX_GROUPS = 3
    TagGroupFactory(name="甲")
    TagGroupFactory(name="乙")
    services.create_group(name="丙", actor=superuser)  # the 3rd: allowed
    with pytest.raises(LimitExceeded) as info:
        services.create_group(name="丁", actor=superuser)
    assert "limit of 3 tag groups" in str(info.value)
    assert TagGroup.objects.count() == 3


def test_personal_groups_do_not_use_up_the_shared_groups(settings, superuser, sales_operator):
    settings.TAGDESK_MAX_GROUPS = 1
    services.create_group(name="共享", actor=superuser)
    mine = services.create_group(
        name="我的", actor=sales_operator, kind=TagKind.PERSONAL, owner=sales_operator
    )
    assert mine.owner_id == sales_operator.pk


# --- tags per group (100) -----------------------------------------------------------------------


def test_tags_per_group_nth_allowed_next_refused(settings, superuser):
    settings.TAGDESK_MAX_TAGS_PER_GROUP = 3
    group = TagGroupFactory(name="偏好")
    TagFactory(group=group, name="一")
    TagFactory(group=group, name="二", status=TagStatus.PENDING)  # pending tags count
    services.create_tag(group, "三", actor=superuser)
    with pytest.raises(LimitExceeded) as info:
        services.create_tag(group, "四", actor=superuser)
    assert "already has 3 tags" in str(info.value)
    # Another group still has room, and archiving a tag frees one here.
    services.create_tag(TagGroupFactory(name="别的"), "四", actor=superuser)
    services.archive_tag(tag(group, "一"), actor=superuser)
    services.create_tag(group, "四", actor=superuser)


def test_restoring_into_a_full_group_is_refused(settings, superuser):
    settings.TAGDESK_MAX_TAGS_PER_GROUP = 2
    group = TagGroupFactory(name="偏好")
    old = services.create_tag(group, "旧", actor=superuser)
    services.archive_tag(old, actor=superuser)
    services.create_tag(group, "一", actor=superuser)
    services.create_tag(group, "二", actor=superuser)
    with pytest.raises(LimitExceeded) as info:
        services.restore_tag(old, actor=superuser)
    assert "already has 2 tags" in str(info.value)


# --- corporate tags per customer (50) -----------------------------------------------------------


@pytest.fixture
def corporate(db):
    group = TagGroupFactory(name="企业")
    return [TagFactory(group=group, name=f"企{i}") for i in range(4)]


def test_corporate_tags_per_customer_nth_allowed_next_refused(settings, superuser, corporate):
    settings.TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER = 3
    customer = CustomerFactory()
    services.assign_tags([customer], corporate[:2], actor=superuser, source="manual")
    services.assign_tags([customer], corporate[2:3], actor=superuser, source="manual")  # 3rd
    with pytest.raises(LimitExceeded) as info:
        services.assign_tags([customer], corporate[3:], actor=superuser, source="manual")
    assert info.value.details == {"customers": [customer.pk], "limit": 3}
    assert TagAssignment.objects.filter(customer=customer).count() == 3


def test_one_batch_reaching_the_limit_exactly_is_allowed(settings, superuser, corporate):
    settings.TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER = 3
    customer = CustomerFactory()
    services.assign_tags([customer], corporate[:3], actor=superuser, source="manual")
    with pytest.raises(LimitExceeded):
        services.assign_tags([CustomerFactory()], corporate, actor=superuser, source="manual")


def test_personal_tags_do_not_count_against_the_corporate_limit(settings, superuser, corporate):
    settings.TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER = 2
    customer = CustomerFactory()
    services.assign_tags([customer], corporate[:2], actor=superuser, source="manual")
    mine = TagFactory(
        group=TagGroupFactory(name="我的", kind=TagKind.PERSONAL, owner=superuser), name="熟客"
    )
    services.assign_tags([customer], [mine], actor=superuser, source="manual")
    assert TagAssignment.objects.filter(customer=customer).count() == 3


def test_an_exclusive_replacement_at_the_limit_is_allowed(settings, superuser, intent_group):
    """Replacing 意向:高 by 意向:低 keeps the count, so a customer at the limit may switch."""
    settings.TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER = 1
    customer = CustomerFactory()
    services.assign_tags([customer], [tag(intent_group, "高")], actor=superuser, source="manual")
    result = services.assign_tags(
        [customer],
        [tag(intent_group, "低")],
        actor=superuser,
        source="manual",
        replace_exclusive=True,
    )
    assert len(result.replaced) == 1
    assert list(TagAssignment.objects.filter(customer=customer).values_list("tag__name")) == [
        ("低",)
    ]
