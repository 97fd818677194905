"""Department and owner of a customer are limited to the user's scope, in the admin form and in
the API's upsert (docs/permissions.md#customer-scope): an operator of 销售部 cannot move a customer to 财务部."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission

from customers.models import Customer
from permissions import policy
from tests.admin.test_customer_audit import _form
from tests.factories import CustomerFactory, DepartmentFactory, UserFactory, member

pytestmark = pytest.mark.django_db


@pytest.fixture
def east(departments):
    return DepartmentFactory(name="华东销售组", parent=departments["销售部"])


@pytest.fixture
def operator_client(client, sales_operator):
    sales_operator.user_permissions.add(
        *Permission.objects.filter(codename__in=["change_customer", "view_customer"])
    )
    client.force_login(sales_operator)
    return client


def change(client, customer, **changes):
    return client.post(
        f"/admin/customers/customer/{customer.pk}/change/", _form(customer, **changes)
    )


def test_assignable_departments_are_own_and_below(sales_operator, departments, east):
    assert set(policy.assignable_departments(sales_operator)) == {departments["销售部"], east}


def test_shared_departments_are_not_assignable(sales_operator, departments, superuser):
    from permissions import services as grants

    grants.share_customers(
        departments["财务部"], with_department=departments["销售部"], actor=superuser
    )
    assert departments["财务部"] not in policy.assignable_departments(sales_operator)


def test_operator_cannot_move_a_customer_to_finance(operator_client, departments):
    customer = CustomerFactory(department=departments["销售部"])
    response = change(operator_client, customer, department=departments["财务部"].pk)
    assert response.status_code == 200
    assert "Choose one of your departments" in response.content.decode()
    customer.refresh_from_db()
    assert customer.department == departments["销售部"]


def test_operator_may_move_within_scope(operator_client, departments, east):
    customer = CustomerFactory(department=departments["销售部"])
    response = change(operator_client, customer, department=east.pk)
    assert response.status_code == 302, response.content.decode()[:1500]
    customer.refresh_from_db()
    assert customer.department == east


def test_form_offers_only_scoped_departments_and_owners(
    operator_client, departments, east, finance_operator
):
    customer = CustomerFactory(department=departments["销售部"])
    body = operator_client.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()

    def select(name):
        start = body.index(f'<select name="{name}"')
        return body[start : body.index("</select>", start)]

    assert f'value="{east.pk}"' in select("department")
    assert f'<option value="{departments["财务部"].pk}"' not in select("department")
    assert f'<option value="{finance_operator.pk}"' not in select("owner")


def test_owner_outside_scope_is_refused(operator_client, departments, finance_operator):
    customer = CustomerFactory(department=departments["销售部"])
    response = change(
        operator_client,
        customer,
        department=departments["销售部"].pk,
        owner=finance_operator.pk,
    )
    assert "Choose an employee of your departments" in response.content.decode()
    customer.refresh_from_db()
    assert customer.owner is None


def test_a_followed_customer_keeps_its_department_when_saved(
    operator_client, sales_operator, departments
):
    from tests.factories import FollowerFactory

    customer = CustomerFactory(department=departments["财务部"], name="老客户")
    FollowerFactory(customer=customer, employee=sales_operator)
    response = change(operator_client, customer, department=departments["财务部"].pk, name="新名字")
    assert response.status_code == 302, response.content.decode()[:1500]
    customer.refresh_from_db()
    assert (customer.name, customer.department) == ("新名字", departments["财务部"])


def test_superuser_may_place_anywhere(client, superuser, departments):
    client.force_login(superuser)
    customer = CustomerFactory(department=departments["销售部"])
    assert change(client, customer, department=departments["财务部"].pk).status_code == 302


# --- API --------------------------------------------------------------------------------------


@pytest.fixture
def api(sales_operator):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(sales_operator)
    return client


def test_api_upsert_refuses_a_department_out_of_scope(api, departments):
    response = api.post(
        "/api/v1/customers/upsert",
        {"external_userid": "wmPLACE1", "department": departments["财务部"].pk},
        format="json",
    )
    assert response.status_code == 403, response.content
    assert response.json()["error"]["code"] == "permission_denied"
    assert not Customer.objects.filter(external_userid="wmPLACE1").exists()


def test_api_unknown_department_reads_like_out_of_scope(api, departments):
    response = api.post(
        "/api/v1/customers/upsert",
        {"external_userid": "wmPLACE2", "department": 999999},
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["error"]["message"] == (
        "You may not put customers in department 999999."
    )


def test_api_upsert_places_within_scope(api, east, sales_operator, departments):
    colleague = UserFactory(username="east_op")
    member(colleague, east)
    response = api.post(
        "/api/v1/customers/upsert",
        {"external_userid": "wmPLACE3", "department": east.pk, "owner": colleague.pk},
        format="json",
    )
    assert response.status_code == 201, response.content
    customer = Customer.objects.get(external_userid="wmPLACE3")
    assert (customer.department, customer.owner) == (east, colleague)


def test_api_owner_out_of_scope_is_refused(api, finance_operator):
    response = api.post(
        "/api/v1/customers/upsert",
        {"external_userid": "wmPLACE4", "owner": finance_operator.pk},
        format="json",
    )
    assert response.status_code == 403
    assert not Customer.objects.filter(external_userid="wmPLACE4").exists()
