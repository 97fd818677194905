from __future__ import annotations

import pytest

from permissions import policy
from permissions.policy import Level


@pytest.mark.django_db
def test_basic_visibility(
    granted,
    sales_operator,
    finance_operator,
    outsider,
    tag_admin,
    intent_group,
    payment_group,
    promo_group,
):
    assert set(policy.visible_groups(sales_operator)) == {intent_group}
    assert set(policy.visible_groups(sales_operator, Level.EDIT)) == {intent_group}
    assert set(policy.visible_groups(sales_operator, Level.CREATE)) == set()
    assert set(policy.visible_groups(finance_operator)) == {payment_group}
    assert set(policy.visible_groups(finance_operator, Level.EDIT)) == set()
    assert set(policy.visible_groups(outsider)) == set()
    assert set(policy.visible_groups(tag_admin, Level.CREATE)) == {
        intent_group,
        payment_group,
        promo_group,
    }
    assert policy.group_levels(sales_operator) == {intent_group.pk: Level.EDIT}
    assert policy.group_levels(tag_admin)[promo_group.pk] == Level.CREATE
    assert policy.visible_tags(finance_operator).count() == 3


@pytest.mark.django_db
def test_customers_and_checks(
    granted, sales_operator, outsider, tag_admin, intent_group, promo_group, departments, superuser
):
    from customers.models import Follower
    from permissions import services
    from permissions.models import Department
    from tests.factories import CustomerFactory

    east = Department.objects.create(name="华东", parent=departments["销售部"])
    mine = CustomerFactory(department=departments["销售部"])
    sub = CustomerFactory(department=east)
    other = CustomerFactory(department=departments["市场部"])
    followed = CustomerFactory(department=departments["市场部"])
    Follower.objects.create(customer=followed, employee=sales_operator)
    assert set(policy.visible_customers(sales_operator)) == {mine, sub, followed}
    assert set(policy.visible_customers(outsider)) == set()
    assert set(policy.visible_customers(tag_admin)) == {mine, sub, other, followed}
    services.share_customers(
        departments["市场部"], with_department=departments["销售部"], actor=superuser
    )
    assert set(policy.visible_customers(sales_operator)) == {mine, sub, other, followed}
    with pytest.raises(policy.NotVisible) as err:
        policy.require_tags(sales_operator, [promo_group.tags.first().pk], Level.VIEW)
    assert "促销" not in str(err.value)
    with pytest.raises(policy.Denied):
        policy.require_tags(sales_operator, [intent_group.tags.first().pk], Level.CREATE)
    assert policy.require_tags(sales_operator, [intent_group.tags.first().pk], Level.EDIT)
    assert policy.can_create_tag(sales_operator, intent_group) == (False, False)
    services.grant(
        intent_group,
        actor=superuser,
        level=Level.CREATE,
        department=departments["销售部"],
        needs_approval=True,
    )
    assert policy.can_create_tag(sales_operator, intent_group) == (True, True)
    assert policy.can_create_tag(tag_admin, intent_group) == (True, False)
    assert policy.can_manage_group(sales_operator, intent_group)


@pytest.mark.django_db
def test_one_query_each(
    granted, sales_operator, tag_admin, django_assert_num_queries, intent_group
):
    tag_ids = [t.pk for t in intent_group.tags.all()]
    for user in (sales_operator, tag_admin):
        with django_assert_num_queries(1):
            list(policy.visible_groups(user))
        with django_assert_num_queries(1):
            list(policy.visible_tags(user))
        with django_assert_num_queries(1):
            list(policy.visible_customers(user))
        with django_assert_num_queries(1):
            policy.group_levels(user)
        with django_assert_num_queries(1):
            policy.require_tags(user, tag_ids, Level.VIEW)
