"""Changelists run a constant number of queries, whatever the number of rows on the page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from permissions import services as grants
from permissions.policy import Level
from tests.admin.conftest import assign
from tests.conftest import tag
from tests.factories import CustomerFactory, FollowerFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db


def count_queries(client, url, params=None):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
    assert response.status_code == 200
    return len(ctx.captured_queries)


def add_customers(n, actor, tags, **fields):
    customers = CustomerFactory.create_batch(n, **fields)
    assign(customers, tags, actor)
    return customers


@pytest.mark.parametrize("params", [{}, {"q": "客户"}, {"tag": "first"}])
def test_customer_changelist(root_client, superuser, intent_group, source_group, params):
    tags = [tag(intent_group, "高"), tag(source_group, "官网"), tag(source_group, "展会")]
    if params.get("tag") == "first":
        params = {"tag": tags[1].pk}
    url = reverse("admin:customers_customer_changelist")
    add_customers(5, superuser, tags)
    few = count_queries(root_client, url, params)
    add_customers(25, superuser, tags)
    many = count_queries(root_client, url, params)
    assert many == few


def test_customer_changelist_for_a_scoped_operator(
    admin_client_for, superuser, departments, sales_operator, intent_group
):
    grants.grant(intent_group, actor=superuser, level=Level.EDIT, department=departments["销售部"])
    high = tag(intent_group, "高")
    client = admin_client_for(sales_operator)
    url = reverse("admin:customers_customer_changelist")
    add_customers(5, superuser, [high], department=departments["销售部"])
    few = count_queries(client, url)
    followed = add_customers(25, superuser, [high])
    for customer in followed:
        FollowerFactory(customer=customer, employee=sales_operator)
    many = count_queries(client, url)
    assert many == few


def test_tag_and_group_changelists(root_client, superuser):
    tags_url = reverse("admin:tagging_tag_changelist")
    groups_url = reverse("admin:tagging_taggroup_changelist")

    def grow(n):
        for _ in range(n):
            group = TagGroupFactory(parent=None)
            child = TagGroupFactory(parent=group)
            assign(CustomerFactory.create_batch(2), [TagFactory(group=child)], superuser)

    grow(2)
    few = (count_queries(root_client, tags_url), count_queries(root_client, groups_url))
    grow(8)
    assert (count_queries(root_client, tags_url), count_queries(root_client, groups_url)) == few


def test_audit_and_event_changelists(root_client, superuser, source_group):
    from tests.factories import EventFactory

    audit_url = reverse("admin:tagging_auditentry_changelist")
    events_url = reverse("admin:customers_customerevent_changelist")
    customers = add_customers(3, superuser, [tag(source_group, "官网")])
    EventFactory.create_batch(3, customer=customers[0])
    few = (count_queries(root_client, audit_url), count_queries(root_client, events_url))
    customers = add_customers(20, superuser, [tag(source_group, "展会")])
    for customer in customers:
        EventFactory(customer=customer)
    assert (count_queries(root_client, audit_url), count_queries(root_client, events_url)) == few


def test_group_change_page_inline_counts(root_client, superuser, intent_group):
    url = reverse("admin:tagging_taggroup_change", args=[intent_group.pk])
    count_queries(root_client, url)  # warm up (the first request also updates the session)
    few = count_queries(root_client, url)
    for i in range(10):
        TagFactory(group=intent_group, name=f"新{i}")
    assign(CustomerFactory.create_batch(3), [tag(intent_group, "新1")], superuser)
    assert count_queries(root_client, url) == few


def test_event_log_counts_only_a_window_past_the_page(root_client, customers, monkeypatch):
    from customers.admin import CustomerEventAdmin
    from tests.factories import EventFactory

    EventFactory.create_batch(5, customer=customers[0])
    monkeypatch.setattr(CustomerEventAdmin, "list_per_page", 1)
    monkeypatch.setattr(CustomerEventAdmin, "count_window_pages", 1)
    response = root_client.get(reverse("admin:customers_customerevent_changelist"))
    assert response.context["cl"].result_count == 3  # page 1 + one page + 1: "more than 2"
    assert "more than 2" in response.content.decode()
    response = root_client.get(reverse("admin:customers_customerevent_changelist"), {"p": "3"})
    assert response.context["cl"].result_count == 5
