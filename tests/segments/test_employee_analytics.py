"""Analytics by employee: display names (not usernames) in legends and tables, customers per
employee from followers, within the viewer's scope."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tagging import analytics
from tagging.services import assign_tags
from tests.conftest import tag
from tests.factories import CustomerFactory, FollowerFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_assignments_per_employee_are_labelled_with_display_names(
    superuser, intent_group, customers
):
    wang = UserFactory(username="wang_a", display_name="王伟", is_superuser=True)
    other_wang = UserFactory(username="wang_b", display_name="王伟", is_superuser=True)
    assign_tags(customers[:2], [tag(intent_group, "高")], actor=wang, source="manual")
    assign_tags(customers[2:], [tag(intent_group, "低")], actor=other_wang, source="manual")
    rows = analytics.assignments_over_time(superuser, analytics.Filters(), by="employee")
    assert {r["employee"] for r in rows} == {"王伟 (wang_a)", "王伟 (wang_b)"}


def test_customers_per_employee_counts_followers_in_scope(sales_operator, superuser, departments):
    zhao = UserFactory(username="zhao", display_name="赵客服")
    inside = CustomerFactory.create_batch(3, department=departments["销售部"])
    outside = CustomerFactory(department=departments["财务部"])
    for customer in [*inside, outside]:
        FollowerFactory(customer=customer, employee=zhao)
    FollowerFactory(customer=inside[0], employee=sales_operator)
    everyone = analytics.customers_per_employee(superuser, analytics.Filters())
    assert everyone == [
        {"employee": "赵客服", "customers": 4},
        {"employee": "王销售", "customers": 1},
    ]
    mine = analytics.customers_per_employee(sales_operator, analytics.Filters())
    assert {"employee": "赵客服", "customers": 3} in mine


def test_followers_table_on_the_page_and_as_csv(client, superuser, departments):
    zhao = UserFactory(username="zhao", display_name="赵客服")
    FollowerFactory(customer=CustomerFactory(), employee=zhao)
    client.force_login(superuser)
    url = reverse("admin:tagging_taganalytics_changelist")
    body = client.get(url).content.decode()
    assert "Customers per employee" in body and "赵客服" in body
    assert ">zhao<" not in body
    csv = client.get(url, {"csv": "followers"}).content.decode("utf-8-sig").splitlines()
    assert csv[1].split(",") == ["赵客服", "1"]
