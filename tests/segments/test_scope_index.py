"""Segments evaluate a non-admin's customer scope on the index (per-department bitmaps plus the
customers they follow: docs/segments.md#scope-on-the-index). The policy stays the one source of
truth: on random departments, memberships, followers and shares, every segment's ids equal the
policy's SQL (``visible_customers`` filtered by the expression's ``EXISTS`` form), and every
change of scope — a customer moving department, a follower added or removed, a share added or
revoked, a membership, a department deleted — shows at once and after compaction."""

from __future__ import annotations

import random

import pytest
from django.db import connection

from customers.models import Customer
from customers.services import add_followers, remove_followers
from permissions import policy
from permissions import services as grants
from tagging import bitmaps, segments
from tagging.models import AssignmentSource
from tagging.services import assign_tags
from tests.factories import (
    CustomerFactory,
    DepartmentFactory,
    FollowerFactory,
    TagFactory,
    UserFactory,
    member,
)


def expressions(a: int, b: int, c: int) -> list[dict]:
    t = [{"tag": a}, {"tag": b}, {"tag": c}]
    return [
        segments.canonical(e)
        for e in (
            t[0],
            {"not": t[0]},
            {"and": [t[0], t[1]]},
            {"or": [t[0], t[1]]},
            {"and": [{"or": [t[0], t[1]]}, {"not": t[2]}]},
            {"and": [{"not": t[0]}, {"not": t[1]}]},
            {"and": [t[0], {"attr": "order_count", "op": "gte", "value": 1}]},
        )
    ]


def by_policy(user, expression: dict) -> list[int]:
    """The reference: the policy's scope in SQL, the expression as SQL EXISTS."""
    rows = policy.visible_customers(user).filter(segments.compile_q(expression))
    return list(rows.order_by("-pk").values_list("pk", flat=True))


def assert_agrees(user, exprs: list[dict]) -> None:
    for expression in exprs:
        want = by_policy(user, expression)
        assert segments.customer_ids(expression, user) == want, expression
        assert segments.count(expression, user) == len(want), expression
        page = segments.page(expression, user, number=2, per_page=3)
        assert (page.count, [c.pk for c in page.customers]) == (len(want), want[3:6]), expression


@pytest.mark.parametrize("seed", range(4))
def test_scope_on_the_index_equals_the_policy(seed, superuser, index_consistent):
    rng = random.Random(seed)
    roots = [DepartmentFactory(name=f"根{seed}-{i}") for i in range(3)]
    depts = roots + [
        DepartmentFactory(name=f"子{seed}-{i}-{j}", parent=root)
        for i, root in enumerate(roots)
        for j in range(2)
    ]
    customers = [
        CustomerFactory(department=rng.choice([*depts, None]), order_count=rng.randint(0, 2))
        for _ in range(80)
    ]
    users = [UserFactory() for _ in range(6)]
    for user in users:
        for department in rng.sample(depts, rng.randint(0, 2)):
            member(user, department)
    for user in users:
        for customer in rng.sample(customers, rng.randint(0, 6)):
            FollowerFactory(customer=customer, employee=user)
    for _ in range(3):
        shared, with_department = rng.sample(depts, 2)
        grants.share_customers(shared, with_department=with_department, actor=superuser)
    tags = TagFactory.create_batch(3)
    for t in tags:
        picked = rng.sample(customers, rng.randint(5, 60))
        assign_tags(picked, [t], actor=superuser, source=AssignmentSource.MANUAL)
    exprs = expressions(*(t.pk for t in tags))
    index_consistent()
    for user in users:
        assert_agrees(user, exprs)
    bitmaps.compact_index()
    for user in [*users, UserFactory(is_active=False)]:
        assert_agrees(user, exprs)
    # The bulk-load paths rebuild the same bitmaps: all of them, or the scope's alone (0013).
    assert bitmaps.build_scope_index() > 0 or not bitmaps.available()
    assert bitmaps.verify_index() == []
    bitmaps.rebuild_index()
    assert bitmaps.verify_index() == []
    for user in users:
        assert_agrees(user, exprs)


def test_scope_changes_show_at_once(superuser, index_consistent):
    home, other, third = (DepartmentFactory(name=n) for n in ("本部", "他部", "三部"))
    child = DepartmentFactory(name="本部下级", parent=home)
    user = UserFactory()
    member(user, home)
    t = TagFactory()
    customers = [CustomerFactory(department=d) for d in (home, child, other, other, third, None)]
    assign_tags(customers, [t], actor=superuser, source=AssignmentSource.MANUAL)
    exprs = expressions(t.pk, TagFactory().pk, TagFactory().pk)
    expr = exprs[0]

    def seen() -> set[int]:
        assert_agrees(user, exprs)
        return set(segments.customer_ids(expr, user))

    ids = [c.pk for c in customers]
    assert seen() == set(ids[:2])  # own department and its sub-department
    # A customer moves department: by save() and by a set-based UPDATE.
    moved = customers[2]
    moved.department = home
    moved.save()
    assert seen() == {*ids[:2], moved.pk}
    Customer.objects.filter(pk=moved.pk).update(department=third)
    assert seen() == set(ids[:2])
    Customer.objects.filter(pk=ids[5]).update(department=child)  # from no department
    assert seen() == {*ids[:2], ids[5]}
    index_consistent()
    # A follower added, then removed.
    add_followers([(ids[3], user.pk)], actor=superuser, via=AssignmentSource.MANUAL)
    assert seen() == {*ids[:2], ids[5], ids[3]}
    remove_followers(ids[3], [user.pk], actor=superuser, via=AssignmentSource.MANUAL)
    assert seen() == {*ids[:2], ids[5]}
    # A share added (reaching the shared department's customers), then revoked.
    grants.share_customers(third, with_department=home, actor=superuser)
    assert seen() == {*ids[:2], ids[5], ids[2], ids[4]}
    index_consistent()
    grants.unshare_customers(third, with_department=home, actor=superuser)
    assert seen() == {*ids[:2], ids[5]}
    # A new membership; a department deleted (its customers keep no department).
    member(user, other)
    assert seen() == {*ids[:2], ids[5], ids[3]}
    grants.delete_department(other, actor=superuser)
    assert seen() == {*ids[:2], ids[5]}
    # A customer deleted.
    Customer.objects.filter(pk=ids[0]).delete()
    assert seen() == {ids[1], ids[5]}
    index_consistent()
    assert seen() == {ids[1], ids[5]}


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the index exists only on PostgreSQL")
def test_scoped_segments_read_no_customer_rows_to_count(
    superuser, django_assert_num_queries, index_consistent
):
    """Count for an employee is the index alone: the scope's departments and one read of the
    bitmaps (tags, departments, followed customers), whatever the number of customers."""
    home = DepartmentFactory(name="计数部")
    user = UserFactory()
    member(user, home)
    t = TagFactory()
    customers = CustomerFactory.create_batch(30, department=home)
    followed = FollowerFactory(employee=user).customer  # a customer of no department
    assign_tags([*customers, followed], [t], actor=superuser, source=AssignmentSource.MANUAL)
    policy.sees_all_customers(user)  # load the permission cache, as a request has
    with django_assert_num_queries(2):
        assert segments.count({"tag": t.pk}, user) == 31
    index_consistent()
