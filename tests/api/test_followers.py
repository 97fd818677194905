"""Followers of a customer through the API (list / add / remove), scoped, audited."""

from __future__ import annotations

import pytest

from customers.models import Follower
from tagging.models import AuditAction, AuditEntry
from tests.api.conftest import assert_error
from tests.factories import UserFactory, member

pytestmark = pytest.mark.django_db


def url(customer, employee=None):
    base = f"/api/v1/customers/{customer.pk}/followers"
    return f"{base}/{employee.pk}" if employee is not None else base


def test_add_list_and_remove_a_follower(sales_api, world, sales_operator):
    customer = world.sales_customers[0]
    colleague = UserFactory(username="sales_two", display_name="陈销售")
    member(colleague, world.sales)
    response = sales_api.post(
        url(customer), {"employee": colleague.pk, "add_way": 1, "remark": "展会"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert [(f["employee"], f["employee_name"], f["add_way"]) for f in body["followers"]] == [
        (colleague.pk, "陈销售", 1)
    ]
    entry = AuditEntry.objects.get(customer=customer, action=AuditAction.FOLLOWER_ADDED)
    assert (entry.actor_id, entry.source, entry.after["employee"]) == (
        sales_operator.pk,
        "api",
        colleague.pk,
    )
    # adding again changes nothing
    sales_api.post(url(customer), {"employee": colleague.pk}, format="json")
    assert Follower.objects.filter(customer=customer).count() == 1
    assert AuditEntry.objects.filter(action=AuditAction.FOLLOWER_ADDED).count() == 1
    assert sales_api.get(url(customer)).json()["followers"][0]["remark"] == "展会"
    gone = sales_api.delete(url(customer, colleague))
    assert gone.status_code == 200 and gone.json()["followers"] == []
    assert AuditEntry.objects.filter(action=AuditAction.FOLLOWER_REMOVED).count() == 1


def test_employee_outside_my_departments_is_a_403(sales_api, world, finance_operator):
    customer = world.sales_customers[0]
    response = sales_api.post(url(customer), {"employee": finance_operator.pk}, format="json")
    assert_error(response, 403, "permission_denied")
    unknown = sales_api.post(url(customer), {"employee": 987654}, format="json")
    assert assert_error(unknown, 403, "permission_denied")["message"] == (
        "Employee 987654 is not in your departments."
    )
    assert not Follower.objects.exists()


def test_customer_outside_scope_is_a_404(sales_api, world, sales_operator):
    customer = world.finance_customers[0]
    assert_error(sales_api.post(url(customer), {"employee": sales_operator.pk}, format="json"), 404)
    assert_error(sales_api.get(url(customer)), 404)
    assert not Follower.objects.exists()


def test_bad_add_way_is_a_400(sales_api, world, sales_operator):
    response = sales_api.post(
        url(world.sales_customers[0]), {"employee": sales_operator.pk, "add_way": 77}, format="json"
    )
    assert_error(response, 400, "invalid")


def test_a_customer_shared_read_only_is_a_403(sales_api, world, sales_operator, superuser):
    from permissions import services as share_services

    share_services.share_customers(world.finance, with_department=world.sales, actor=superuser)
    customer = world.finance_customers[0]
    assert sales_api.get(url(customer)).status_code == 200
    response = sales_api.post(url(customer), {"employee": sales_operator.pk}, format="json")
    assert_error(response, 403, "permission_denied")
    assert not Follower.objects.exists()
