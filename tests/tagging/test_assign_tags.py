import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tagging import services
from tagging.errors import ExclusiveConflict, LimitExceeded, RuleTagNotAssignable, TagNotAssignable
from tagging.models import (
    AssignmentSource,
    AuditAction,
    AuditEntry,
    TagAssignment,
    TagKind,
    TagStatus,
)
from tests.conftest import tag
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db


def test_assign_adds_pairs_and_audits(superuser, customers, source_group):
    tags = [tag(source_group, "官网"), tag(source_group, "展会")]
    result = services.assign_tags(customers, tags, actor=superuser, source=AssignmentSource.MANUAL)
    assert len(result.added) == 10
    assert TagAssignment.objects.count() == 10
    entries = AuditEntry.objects.filter(action=AuditAction.ASSIGNMENT_ADDED)
    assert entries.count() == 10
    assert set(entries.values_list("actor_id", flat=True)) == {superuser.pk}


def test_assign_twice_changes_nothing(superuser, customers, source_group):
    t = tag(source_group, "官网")
    services.assign_tags(customers, [t], actor=superuser, source=AssignmentSource.MANUAL)
    again = services.assign_tags(customers, [t], actor=superuser, source=AssignmentSource.MANUAL)
    assert again.added == [] and again.unchanged == 5
    assert AuditEntry.objects.count() == 5


def test_exclusive_group_replaces_other_tag(superuser, customers, intent_group):
    services.assign_tags(customers[:1], [tag(intent_group, "高")], actor=superuser, source="manual")
    result = services.assign_tags(
        customers[:1], [tag(intent_group, "低")], actor=superuser, source="manual"
    )
    assert result.replaced == [(customers[0].pk, tag(intent_group, "高").pk)]
    assert list(TagAssignment.objects.values_list("tag__name", flat=True)) == ["低"]
    assert AuditEntry.objects.filter(
        action=AuditAction.ASSIGNMENT_REMOVED, tag=tag(intent_group, "高")
    ).exists()


def test_exclusive_group_refuses_when_replacement_not_wanted(superuser, customers, intent_group):
    services.assign_tags(customers[:1], [tag(intent_group, "高")], actor=superuser, source="manual")
    with pytest.raises(ExclusiveConflict):
        services.assign_tags(
            customers[:1],
            [tag(intent_group, "低")],
            actor=superuser,
            source="manual",
            replace_exclusive=False,
        )
    assert list(TagAssignment.objects.values_list("tag__name", flat=True)) == ["高"]


def test_two_tags_of_one_exclusive_group_in_one_call_refused(superuser, customers, intent_group):
    with pytest.raises(ExclusiveConflict):
        services.assign_tags(
            customers,
            [tag(intent_group, "高"), tag(intent_group, "低")],
            actor=superuser,
            source="manual",
        )
    assert not TagAssignment.objects.exists()


def test_auto_tag_refused_by_hand(superuser, customers):
    auto = TagFactory(group=TagGroupFactory(kind=TagKind.AUTO))
    for source in (AssignmentSource.MANUAL, AssignmentSource.IMPORT, AssignmentSource.API):
        with pytest.raises(RuleTagNotAssignable):
            services.assign_tags(customers, [auto], actor=superuser, source=source)
    assert not TagAssignment.objects.exists()


@pytest.mark.parametrize("status", [TagStatus.PENDING, TagStatus.ARCHIVED])
def test_unusable_status_refused(superuser, customers, status):
    t = TagFactory(status=status)
    with pytest.raises(TagNotAssignable):
        services.assign_tags(customers, [t], actor=superuser, source="manual")


def test_personal_tag_only_by_owner(superuser, sales_operator, customers):
    group = TagGroupFactory(kind=TagKind.PERSONAL, owner=sales_operator)
    t = TagFactory(group=group)
    services.assign_tags(customers, [t], actor=sales_operator, source="manual")
    with pytest.raises(TagNotAssignable) as info:
        services.assign_tags(customers, [t], actor=superuser, source="manual")
    assert group.name not in str(info.value)
    with pytest.raises(TagNotAssignable):
        services.unassign_tags(customers, [t], actor=superuser, source="manual")


def test_corporate_limit(settings, superuser, customers):
    settings.TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER = 3
    group = TagGroupFactory()
    tags = TagFactory.create_batch(4, group=group)
    services.assign_tags(customers[:1], tags[:3], actor=superuser, source="manual")
    with pytest.raises(LimitExceeded) as info:
        services.assign_tags(customers[:2], tags[3:], actor=superuser, source="manual")
    assert info.value.details["customers"] == [customers[0].pk]
    assert TagAssignment.objects.count() == 3  # nothing written for customer 2 either


def test_unassign_removes_and_audits(superuser, customers, source_group):
    t = tag(source_group, "官网")
    services.assign_tags(customers, [t], actor=superuser, source="manual")
    result = services.unassign_tags(customers[:2], [t], actor=superuser, source="manual")
    assert len(result.removed) == 2
    assert TagAssignment.objects.count() == 3
    assert AuditEntry.objects.filter(action=AuditAction.ASSIGNMENT_REMOVED).count() == 2


def _queries(fn) -> int:
    with CaptureQueriesContext(connection) as ctx:
        fn()
    return len(ctx.captured_queries)


def test_assign_query_count_does_not_grow_with_customers(superuser, source_group, intent_group):
    few = CustomerFactory.create_batch(2)
    many = CustomerFactory.create_batch(30)
    tags = [tag(source_group, "官网"), tag(intent_group, "高")]
    small = _queries(lambda: services.assign_tags(few, tags, actor=superuser, source="manual"))
    large = _queries(lambda: services.assign_tags(many, tags, actor=superuser, source="manual"))
    assert large == small
    small_rm = _queries(lambda: services.unassign_tags(few, tags, actor=superuser, source="manual"))
    large_rm = _queries(
        lambda: services.unassign_tags(many, tags, actor=superuser, source="manual")
    )
    assert large_rm == small_rm
