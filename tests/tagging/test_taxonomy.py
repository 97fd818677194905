from datetime import timedelta

import pytest
from django.utils import timezone

from tagging import services
from tagging.errors import (
    ExclusiveConflict,
    InvalidTagName,
    LimitExceeded,
    NotFound,
    RuleTagNotAssignable,
    TaggingError,
    TagNotAssignable,
)
from tagging.models import (
    AssignmentSource,
    AuditAction,
    AuditEntry,
    Tag,
    TagAssignment,
    TagKind,
    TagStatus,
)
from tests.conftest import tag
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db


def test_create_group_and_tag_are_audited(superuser):
    group = services.create_group(name="  客户偏好  ", actor=superuser, exclusive=False)
    assert group.name == "客户偏好"
    created = services.create_tag(group, " 不吃香菜 ", actor=superuser)
    assert created.name == "不吃香菜" and created.status == TagStatus.ACTIVE
    actions = list(AuditEntry.objects.order_by("id").values_list("action", flat=True))
    assert actions == [AuditAction.GROUP_CREATED, AuditAction.TAG_CREATED]


@pytest.mark.parametrize(
    "name, code",
    [
        ("", "empty_name"),
        ("   ", "empty_name"),
        ("长" * 31, "tag_name_too_long"),
        ("a;b", "forbidden_character"),
        ("a:b", "forbidden_character"),
        ("a；b", "forbidden_character"),
        ("a：b", "forbidden_character"),
        ("tab\tname", "forbidden_character"),
    ],
)
def test_bad_tag_names_refused_and_nothing_written(superuser, source_group, name, code):
    before = Tag.objects.count()
    with pytest.raises(InvalidTagName) as info:
        services.create_tag(source_group, name, actor=superuser)
    assert info.value.code == code
    assert Tag.objects.count() == before


def test_thirty_characters_is_fine(superuser, source_group):
    assert services.create_tag(source_group, "长" * 30, actor=superuser).name == "长" * 30


@pytest.mark.parametrize("clash", ["vip", "VIP", "ＶＩＰ", " Vip "])
def test_names_unique_after_case_and_width_folding(superuser, source_group, clash):
    services.create_tag(source_group, "Vip", actor=superuser)
    with pytest.raises(InvalidTagName) as info:
        services.create_tag(source_group, clash, actor=superuser)
    assert info.value.code == "duplicate_name"


def test_same_name_allowed_in_another_group(superuser, source_group, intent_group):
    services.create_tag(source_group, "高", actor=superuser)  # 意向 also has 高
    assert Tag.objects.filter(name="高").count() == 2


def test_group_names_unique_company_wide(superuser, source_group):
    with pytest.raises(InvalidTagName):
        services.create_group(name="客户来源", actor=superuser)


def test_personal_group_names_are_per_owner(superuser, sales_operator, finance_operator):
    for owner in (sales_operator, finance_operator):
        services.create_group(name="我的标签", actor=owner, kind=TagKind.PERSONAL, owner=owner)
    with pytest.raises(InvalidTagName):
        services.create_group(
            name="我的标签", actor=sales_operator, kind=TagKind.PERSONAL, owner=sales_operator
        )


def test_tag_limits(settings, superuser):
    settings.TAGDESK_MAX_TAGS_PER_GROUP = 2
    group = TagGroupFactory()
    services.create_tag(group, "一", actor=superuser)
    services.create_tag(group, "二", actor=superuser)
    with pytest.raises(LimitExceeded):
        services.create_tag(group, "三", actor=superuser)
    settings.TAGDESK_MAX_TAGS_PER_GROUP = 100
    settings.TAGDESK_MAX_TAGS = 2
    with pytest.raises(LimitExceeded):
        services.create_tag(TagGroupFactory(), "四", actor=superuser)


def test_group_limit(settings, superuser):
    settings.TAGDESK_MAX_GROUPS = 1
    services.create_group(name="甲", actor=superuser)
    with pytest.raises(LimitExceeded):
        services.create_group(name="乙", actor=superuser)


def test_rename_is_audited_with_before_and_after(superuser, source_group):
    t = tag(source_group, "展会")
    services.update_tag(t, actor=superuser, name="线下展会")
    entry = AuditEntry.objects.get(action=AuditAction.TAG_UPDATED)
    assert entry.before["name"] == "展会" and entry.after["name"] == "线下展会"


def test_rename_to_existing_name_refused(superuser, source_group):
    with pytest.raises(InvalidTagName):
        services.update_tag(tag(source_group, "展会"), actor=superuser, name="官网")


def test_personal_tag_cannot_be_edited_by_others(superuser, sales_operator):
    group = services.create_group(
        name="私人", actor=sales_operator, kind=TagKind.PERSONAL, owner=sales_operator
    )
    t = services.create_tag(group, "重点", actor=sales_operator)
    with pytest.raises(NotFound):
        services.update_tag(t, actor=superuser, name="改名")
    with pytest.raises(NotFound):
        services.create_tag(group, "别人的", actor=superuser)


def test_archive_keeps_assignments_and_blocks_new_ones(superuser, customers, source_group):
    t = tag(source_group, "官网")
    services.assign_tags(customers[:2], [t], actor=superuser, source="manual")
    services.archive_tag(t, actor=superuser)
    assert TagAssignment.objects.filter(tag=t).count() == 2
    with pytest.raises(TagNotAssignable):
        services.assign_tags(customers[2:], [t], actor=superuser, source="manual")
    services.restore_tag(t, actor=superuser)
    services.assign_tags(customers[2:], [t], actor=superuser, source="manual")
    assert TagAssignment.objects.filter(tag=t).count() == 5


def test_pending_tag_approval_and_rejection(superuser, sales_operator, source_group):
    pending = services.create_tag(
        source_group, "直播", actor=sales_operator, status=TagStatus.PENDING
    )
    services.approve_tag(pending, actor=superuser)
    assert Tag.objects.get(pk=pending.pk).status == TagStatus.ACTIVE
    other = services.create_tag(
        source_group, "地推", actor=sales_operator, status=TagStatus.PENDING
    )
    with pytest.raises(TaggingError):
        services.reject_tag(other, actor=superuser, reason="  ")
    services.reject_tag(other, actor=superuser, reason="与“线下活动”重复")
    other.refresh_from_db()
    assert other.status == TagStatus.ARCHIVED and other.review_note == "与“线下活动”重复"


def test_merge_moves_assignments_keeps_first_author_and_archives_sources(superuser, sales_operator):
    group = TagGroupFactory(name="饮食偏好")
    a, b, c = (TagFactory(group=group, name=n) for n in ("不吃香菜", "不要香菜", "忌香菜"))
    both, only_b, has_c = CustomerFactory.create_batch(3)
    services.assign_tags([both], [a], actor=sales_operator, source="manual")
    services.assign_tags([both, only_b], [b], actor=superuser, source="manual")
    services.assign_tags([has_c], [c], actor=superuser, source="manual")
    added = services.merge_tags([a, b], c, actor=superuser)
    assert added == 2
    rows = {r.customer_id: r for r in TagAssignment.objects.filter(tag=c)}
    assert set(rows) == {both.pk, only_b.pk, has_c.pk}
    assert rows[both.pk].actor_id == sales_operator.pk  # who first added it
    assert rows[both.pk].source == AssignmentSource.MERGE
    assert not TagAssignment.objects.filter(tag__in=[a, b]).exists()
    for t in (a, b):
        t.refresh_from_db()
        assert t.status == TagStatus.ARCHIVED and t.merged_into_id == c.pk
    assert AuditEntry.objects.filter(action=AuditAction.TAG_MERGED).count() == 2
    with pytest.raises(TaggingError):
        services.restore_tag(a, actor=superuser)


def test_merge_refuses_auto_tags_and_exclusive_clash(superuser, intent_group):
    auto = TagFactory(group=TagGroupFactory(kind=TagKind.AUTO))
    with pytest.raises(RuleTagNotAssignable):
        services.merge_tags(
            [auto], TagFactory(group=TagGroupFactory(kind=TagKind.AUTO)), actor=superuser
        )
    other = TagFactory(group=TagGroupFactory(name="临时"))
    customer = CustomerFactory()
    services.assign_tags(
        [customer], [other, tag(intent_group, "高")], actor=superuser, source="manual"
    )
    with pytest.raises(
        TaggingError
    ):  # different groups of the same kind merge; the clash is refused
        services.merge_tags([other], tag(intent_group, "低"), actor=superuser)
    assert TagAssignment.objects.filter(customer=customer).count() == 2


def test_delete_tag_with_assignments_needs_confirmation(superuser, customers, source_group):
    t = tag(source_group, "官网")
    services.assign_tags(customers, [t], actor=superuser, source="manual")
    with pytest.raises(TaggingError) as info:
        services.delete_tag(t, actor=superuser)
    assert info.value.code == "confirmation_required"
    assert services.delete_tag(t, actor=superuser, confirm=True) == 5
    assert not Tag.objects.filter(pk=t.pk).exists()
    assert AuditEntry.objects.filter(action=AuditAction.TAG_DELETED, tag_id=t.pk).exists()
    assert (
        AuditEntry.objects.filter(action=AuditAction.ASSIGNMENT_REMOVED, tag_id=t.pk).count() == 5
    )


def test_exclusive_cannot_be_switched_on_while_customers_hold_two(
    superuser, source_group, customers
):
    services.assign_tags(
        customers[:1], list(source_group.tags.all()[:2]), actor=superuser, source="manual"
    )
    with pytest.raises(ExclusiveConflict):
        services.update_group(source_group, actor=superuser, exclusive=True)


def test_group_cannot_be_its_own_ancestor(superuser):
    parent = services.create_group(name="父", actor=superuser)
    child = services.create_group(name="子", actor=superuser, parent=parent)
    with pytest.raises(TaggingError):
        services.update_group(parent, actor=superuser, parent=child)


def test_reorder_groups_and_tags(superuser, source_group, intent_group):
    services.reorder_groups([intent_group.pk, source_group.pk], actor=superuser)
    source_group.refresh_from_db()
    intent_group.refresh_from_db()
    assert intent_group.sort_order < source_group.sort_order
    ids = list(source_group.tags.order_by("-sort_order").values_list("pk", flat=True))
    services.reorder_tags(source_group, ids, actor=superuser)
    assert list(source_group.tags.order_by("sort_order").values_list("pk", flat=True)) == ids
    with pytest.raises(TaggingError):
        services.reorder_tags(source_group, [tag(intent_group, "高").pk], actor=superuser)


def test_expired_assignments_removed_and_audited(superuser, customers, source_group):
    t = tag(source_group, "展会")
    soon = timezone.now() + timedelta(minutes=1)
    services.assign_tags(customers[:2], [t], actor=superuser, source="manual", expires_at=soon)
    services.assign_tags(
        customers[2:],
        [t],
        actor=superuser,
        source="manual",
        expires_at=timezone.now() + timedelta(days=1),
    )
    assert services.remove_expired_assignments(timezone.now() + timedelta(minutes=2)) == 2
    assert TagAssignment.objects.filter(tag=t).count() == 3
    assert (
        AuditEntry.objects.filter(action=AuditAction.ASSIGNMENT_REMOVED, reason="expired").count()
        == 2
    )


@pytest.mark.parametrize("delta", [timedelta(minutes=-1), timedelta(0), timedelta(days=367)])
def test_assign_refuses_an_expiry_outside_the_window(superuser, customers, source_group, delta):
    from tagging.errors import InvalidExpiry

    with pytest.raises(InvalidExpiry):
        services.assign_tags(
            customers,
            [tag(source_group, "展会")],
            actor=superuser,
            source="manual",
            expires_at=timezone.now() + delta,
        )
    assert not TagAssignment.objects.exists()


def test_assign_accepts_an_expiry_at_the_bound(superuser, customers, source_group):
    services.assign_tags(
        customers,
        [tag(source_group, "展会")],
        actor=superuser,
        source="manual",
        expires_at=timezone.now() + timedelta(days=366) - timedelta(seconds=5),
    )
    assert TagAssignment.objects.filter(expires_at__isnull=False).count() == len(customers)


def test_audit_log_is_append_only(superuser, source_group):
    services.create_tag(source_group, "新标签", actor=superuser)
    entry = AuditEntry.objects.first()
    with pytest.raises(Exception):  # noqa: B017 - ValidationError from the model
        entry.save()
    with pytest.raises(Exception):  # noqa: B017
        AuditEntry.objects.all().delete()
    with pytest.raises(Exception):  # noqa: B017
        AuditEntry.objects.update(reason="x")
