"""permissions.policy directly: levels, departments trees, personal and auto groups, customer
scope, global powers, bad input."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, Permission

from customers.models import Follower
from permissions import policy, services
from permissions.models import Department
from permissions.policy import Level
from tagging.models import TagKind
from tests.conftest import give_permission
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory, UserFactory, member

pytestmark = pytest.mark.django_db


def test_levels_are_cumulative(
    granted, sales_operator, finance_operator, intent_group, payment_group
):
    assert set(policy.visible_groups(sales_operator, Level.VIEW)) == {intent_group}
    assert set(policy.visible_groups(sales_operator, Level.EDIT)) == {intent_group}
    assert not policy.visible_groups(sales_operator, Level.CREATE).exists()
    assert set(policy.visible_groups(finance_operator)) == {payment_group}
    assert not policy.visible_groups(finance_operator, Level.EDIT).exists()
    assert policy.group_levels(sales_operator) == {intent_group.pk: Level.EDIT}
    assert policy.group_levels(finance_operator) == {payment_group.pk: Level.VIEW}


def test_regrant_replaces_the_level(granted, superuser, sales_operator, intent_group, departments):
    services.grant(
        intent_group, actor=superuser, level=Level.VIEW, department=departments["销售部"]
    )
    assert policy.group_levels(sales_operator) == {intent_group.pk: Level.VIEW}
    services.grant(
        intent_group, actor=superuser, level=Level.NONE, department=departments["销售部"]
    )
    assert policy.group_levels(sales_operator) == {}


def test_department_grant_covers_sub_departments(granted, intent_group, departments):
    east = Department.objects.create(name="华东", parent=departments["销售部"])
    shanghai = Department.objects.create(name="上海", parent=east)
    user = UserFactory(username="sh_op")
    member(user, shanghai)
    assert policy.group_levels(user) == {intent_group.pk: Level.EDIT}
    # ...but not the other way round: a grant to 华东 does not reach 销售部's own members.
    other = TagGroupFactory(name="华东专属")
    services.grant(other, actor=None, level=Level.VIEW, department=east)
    parent_member = UserFactory(username="sales_hq")
    member(parent_member, departments["销售部"])
    assert other.pk not in policy.group_levels(parent_member)
    assert other.pk in policy.group_levels(user)


def test_highest_of_department_and_employee_grants_wins(
    granted, superuser, sales_operator, intent_group
):
    services.grant(intent_group, actor=superuser, level=Level.CREATE, user=sales_operator)
    assert policy.group_levels(sales_operator)[intent_group.pk] == Level.CREATE
    assert policy.can_manage_group(sales_operator, intent_group)


def test_personal_groups(personal_group, owner, non_owner, tag_admin):
    assert policy.group_levels(owner) == {personal_group.pk: Level.CREATE}
    assert policy.group_levels(non_owner) == {}
    assert policy.group_levels(tag_admin) == {personal_group.pk: Level.VIEW}
    assert not policy.visible_groups(tag_admin, Level.EDIT).filter(pk=personal_group.pk).exists()
    assert policy.can_create_tag(owner, personal_group) == (True, False)
    assert policy.can_create_tag(tag_admin, personal_group) == (False, False)
    assert not policy.can_manage_group(tag_admin, personal_group)
    tag = personal_group.tags.first()
    with pytest.raises(policy.NotVisible):
        policy.require_tags(non_owner, [tag], Level.VIEW)
    with pytest.raises(policy.Denied):
        policy.require_tags(tag_admin, [tag], Level.EDIT)


def test_personal_groups_cannot_be_granted(personal_group, superuser, departments):
    from tagging.errors import TaggingError

    with pytest.raises(TaggingError):
        services.grant(
            personal_group, actor=superuser, level=Level.VIEW, department=departments["销售部"]
        )


def test_auto_groups_take_tags_from_tag_admins_only(
    superuser, sales_operator, tag_admin, departments
):
    auto = TagGroupFactory(name="自动", kind=TagKind.AUTO)
    services.grant(auto, actor=superuser, level=Level.CREATE, department=departments["销售部"])
    assert policy.can_create_tag(sales_operator, auto) == (False, False)
    assert policy.can_create_tag(tag_admin, auto) == (True, False)


def test_needs_approval(granted, superuser, sales_operator, intent_group, departments):
    services.grant(
        intent_group,
        actor=superuser,
        level=Level.CREATE,
        department=departments["销售部"],
        needs_approval=True,
    )
    assert policy.can_create_tag(sales_operator, intent_group) == (True, True)
    tag = services.propose_tag(intent_group, "很高", actor=sales_operator)
    assert tag.status == "pending"
    # A second, approval-free CREATE grant for the employee wins.
    services.grant(intent_group, actor=superuser, level=Level.CREATE, user=sales_operator)
    assert policy.can_create_tag(sales_operator, intent_group) == (True, False)
    assert services.propose_tag(intent_group, "极高", actor=sales_operator).status == "active"


def test_propose_tag_refusals(granted, finance_operator, payment_group, promo_group):
    with pytest.raises(policy.Denied):
        services.propose_tag(payment_group, "现金", actor=finance_operator)
    with pytest.raises(policy.NotVisible):
        services.propose_tag(promo_group, "现金", actor=finance_operator)


def test_tag_admin_through_an_auth_group(intent_group, payment_group):
    user = UserFactory(username="via_group")
    admins = Group.objects.create(name="标签管理员")
    admins.permissions.add(Permission.objects.get(codename="manage_tags"))
    user.groups.add(admins)
    assert policy.is_tag_admin(user)
    assert set(policy.visible_groups(user, Level.CREATE)) == {intent_group, payment_group}


def test_model_level_permissions_grant_no_object_access(intent_group, payment_group):
    """guardian's accept_global_perms must not apply: holding tagging.view_taggroup or the level
    permissions globally gives nothing."""
    user = UserFactory(username="global_perms")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="tagging", content_type__model="taggroup"
        )
    )
    assert policy.group_levels(user) == {}
    assert not policy.visible_tags(user).exists()


def test_inactive_and_anonymous_users_see_nothing(granted, sales_operator, intent_group):
    from django.contrib.auth.models import AnonymousUser

    sales_operator.is_active = False
    sales_operator.save()
    for user in (sales_operator, AnonymousUser(), None):
        assert not policy.visible_groups(user).exists()
        assert not policy.visible_customers(user).exists()
        assert policy.group_levels(user) == {}
        assert not policy.can_create_tag(user, intent_group).allowed


def test_visible_tags_hide_pending_and_archived_unless_asked(granted, sales_operator, intent_group):
    pending = TagFactory(group=intent_group, name="待定", status="pending")
    archived = TagFactory(group=intent_group, name="旧", status="archived")
    assert pending not in policy.visible_tags(sales_operator)
    assert {pending, archived} <= set(policy.visible_tags(sales_operator, include_inactive=True))


def test_customer_scope(granted, departments, sales_operator, tag_admin, outsider, superuser):
    east = Department.objects.create(name="华东", parent=departments["销售部"])
    own = CustomerFactory(department=departments["销售部"])
    sub = CustomerFactory(department=east)
    market = CustomerFactory(department=departments["市场部"])
    market_child_dept = Department.objects.create(name="市场一组", parent=departments["市场部"])
    market_child = CustomerFactory(department=market_child_dept)
    followed = CustomerFactory(department=departments["财务部"])
    nobody = CustomerFactory(department=None)
    Follower.objects.create(customer=followed, employee=sales_operator)
    assert set(policy.visible_customers(sales_operator)) == {own, sub, followed}
    assert not policy.visible_customers(outsider).exists()
    assert set(policy.visible_customers(tag_admin)) == {
        own,
        sub,
        market,
        market_child,
        followed,
        nobody,
    }
    # Sharing 市场部's customers with 销售部 (and so with 华东).
    services.share_customers(
        departments["市场部"], with_department=departments["销售部"], actor=superuser
    )
    assert {market, market_child} <= set(policy.visible_customers(sales_operator))
    east_op = UserFactory(username="east_op")
    member(east_op, east)
    assert set(policy.visible_customers(east_op)) == {sub, market, market_child}
    services.unshare_customers(
        departments["市场部"], with_department=departments["销售部"], actor=superuser
    )
    assert market not in policy.visible_customers(sales_operator)


def test_see_all_customers_permission(departments):
    user = give_permission(UserFactory(username="see_all"), "view_all_customers")
    customers = CustomerFactory.create_batch(3, department=departments["市场部"])
    assert policy.sees_all_customers(user)
    assert not policy.is_tag_admin(user)
    assert set(policy.visible_customers(user)) == set(customers)
    assert not policy.visible_groups(user).exists()  # customer scope does not widen tags


def test_require_customers(granted, departments, sales_operator):
    mine = CustomerFactory(department=departments["销售部"])
    theirs = CustomerFactory(department=departments["财务部"])
    assert policy.require_customers(sales_operator, [mine.pk, str(mine.pk), mine]) == [mine.pk]
    with pytest.raises(policy.NotVisible) as caught:
        policy.require_customers(sales_operator, [mine.pk, theirs.pk, 10**9])
    assert caught.value.details == {"customers": [theirs.pk, 10**9]}
    assert caught.value.code == "not_found"
    assert policy.require_customers(sales_operator, []) == []


@pytest.mark.parametrize("bad", [["abc"], [None], [1.5], [True], [object()]])
def test_bad_ids_are_refused(granted, sales_operator, bad):
    with pytest.raises(policy.NotVisible):
        policy.require_tags(sales_operator, bad, Level.VIEW)
    with pytest.raises(policy.NotVisible):
        policy.require_customers(sales_operator, bad)


def test_bad_level_is_refused(sales_operator):
    with pytest.raises(ValueError):
        policy.visible_groups(sales_operator, 7)
    with pytest.raises(ValueError):
        policy.visible_tags(sales_operator, "high")


def test_require_tags_keeps_order_and_dedupes(granted, sales_operator, intent_group):
    tags = list(intent_group.tags.order_by("-pk"))
    got = policy.require_tags(sales_operator, [tags[0], tags[1].pk, tags[0].pk], Level.EDIT)
    assert got == [tags[0], tags[1]]
    assert got[0].group.name == "意向"  # loaded with its group


def test_denied_names_only_the_visible_group(granted, sales_operator, intent_group):
    with pytest.raises(policy.Denied) as caught:
        policy.require_tags(sales_operator, [intent_group.tags.first()], Level.CREATE)
    assert "意向" in str(caught.value)
    assert caught.value.code == "permission_denied"


def test_the_policy_narrows_the_queryset_it_is_given(
    granted, departments, sales_operator, intent_group, django_assert_num_queries
):
    """Querysets know nothing of permissions (models sit below the policy); the policy composes
    them: ``visible_*(user, queryset=...)`` narrows the caller's queryset, in one query."""
    from customers.models import Customer
    from tagging.models import Tag, TagGroup

    mine = CustomerFactory(department=departments["销售部"], name="甲")
    CustomerFactory(department=departments["财务部"], name="甲")
    policy.sees_all_customers(sales_operator)  # permission cache, as in a request
    with django_assert_num_queries(1):
        assert list(
            policy.visible_groups(
                sales_operator, Level.EDIT, queryset=TagGroup.objects.filter(name="意向")
            )
        ) == [intent_group]
    assert not policy.visible_groups(
        sales_operator, Level.VIEW, queryset=TagGroup.objects.exclude(pk=intent_group.pk)
    ).filter(pk=intent_group.pk)
    assert not policy.visible_groups(sales_operator, Level.CREATE).exists()
    assert set(policy.visible_tags(sales_operator, queryset=Tag.objects.all())) == set(
        intent_group.tags.all()
    )
    with django_assert_num_queries(1):
        assert list(
            policy.visible_customers(sales_operator, queryset=Customer.objects.filter(name="甲"))
        ) == [mine]
    assert not hasattr(Customer.objects, "visible_to")
    assert not hasattr(TagGroup.objects, "visible_to")
    assert not hasattr(Tag.objects, "visible_to")


@pytest.mark.parametrize("huge", [2**63, 2**80, -1, 0])
def test_ids_no_row_can_have_are_not_found(granted, sales_operator, huge):
    with pytest.raises(policy.NotVisible) as caught:
        policy.require_customers(sales_operator, [huge])
    assert caught.value.details == {"customers": [huge]}
    with pytest.raises(policy.NotVisible):
        policy.require_tags(sales_operator, [huge], Level.VIEW)
    assert policy.group_levels(sales_operator, [huge]) == {}
