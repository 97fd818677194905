"""Followers on the customer page: tag admins add, change and remove them (audited); others
see them read-only."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from customers.models import Follower
from tagging.models import AuditAction, AuditEntry
from tests.admin.test_customer_audit import _form
from tests.factories import CustomerFactory, FollowerFactory, UserFactory

pytestmark = pytest.mark.django_db


def page(customer):
    return f"/admin/customers/customer/{customer.pk}/change/"


def inline(rows, initial=0):
    data = {"followers-TOTAL_FORMS": str(len(rows)), "followers-INITIAL_FORMS": str(initial)}
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"followers-{i}-{key}"] = value
    return data


@pytest.fixture
def admin_client(client, tag_admin):
    tag_admin.is_staff = True
    tag_admin.save()
    tag_admin.user_permissions.add(
        *Permission.objects.filter(codename__in=["change_customer", "view_customer"])
    )
    client.force_login(tag_admin)
    return client


def test_tag_admin_adds_changes_and_removes_followers(admin_client, tag_admin):
    customer = CustomerFactory()
    employee = UserFactory(username="follow_me", display_name="赵客服")
    form = _form(customer)
    form.update(
        inline(
            [
                {
                    "employee": employee.pk,
                    "added_at_0": "2026-01-02",
                    "added_at_1": "10:00:00",
                    "add_way": "1",
                    "remark": "扫码",
                    "customer": customer.pk,
                }
            ]
        )
    )
    response = admin_client.post(page(customer), form)
    assert response.status_code == 302, response.content.decode()[:3000]
    follower = Follower.objects.get(customer=customer)
    assert (follower.employee, follower.remark) == (employee, "扫码")
    added = AuditEntry.objects.get(action=AuditAction.FOLLOWER_ADDED)
    assert (added.actor, added.customer_id, added.object_repr) == (tag_admin, customer.pk, "赵客服")

    form = _form(customer)
    form.update(
        inline(
            [
                {
                    "id": follower.pk,
                    "employee": employee.pk,
                    "added_at_0": "2026-01-02",
                    "added_at_1": "10:00:00",
                    "add_way": "1",
                    "remark": "扫码加好友",
                    "customer": customer.pk,
                }
            ],
            initial=1,
        )
    )
    assert admin_client.post(page(customer), form).status_code == 302
    changed = AuditEntry.objects.get(action=AuditAction.FOLLOWER_UPDATED)
    assert (changed.before["remark"], changed.after["remark"]) == ("扫码", "扫码加好友")

    form = _form(customer)
    form.update(
        inline(
            [
                {
                    "id": follower.pk,
                    "employee": employee.pk,
                    "added_at_0": "2026-01-02",
                    "added_at_1": "10:00:00",
                    "add_way": "1",
                    "remark": "扫码加好友",
                    "customer": customer.pk,
                    "DELETE": "on",
                }
            ],
            initial=1,
        )
    )
    assert admin_client.post(page(customer), form).status_code == 302
    assert not Follower.objects.exists()
    assert AuditEntry.objects.filter(action=AuditAction.FOLLOWER_REMOVED).count() == 1


def test_operator_sees_followers_read_only(client, sales_operator, departments):
    sales_operator.user_permissions.add(
        *Permission.objects.filter(codename__in=["change_customer", "view_customer"])
    )
    client.force_login(sales_operator)
    customer = CustomerFactory(department=departments["销售部"])
    FollowerFactory(customer=customer, employee=UserFactory(display_name="钱同事"))
    body = client.get(page(customer)).content.decode()
    assert "钱同事" in body
    assert 'name="followers-0-employee"' not in body
    # A forged inline row is ignored: the formset is not editable for the operator.
    form = _form(customer, department=departments["销售部"].pk)
    form.update(inline([{"employee": sales_operator.pk, "customer": customer.pk}]))
    client.post(page(customer), form)
    assert Follower.objects.count() == 1
