"""Admin pages of the real-time path: the batch log with its figures, rule mode, and the explain
page linked from the customer page (scoped like the API)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from rules import realtime
from rules.admin_realtime import latency_figures
from rules.models import RealtimeBatch, RuleMode
from tests.factories import DepartmentFactory, TagFactory, TagGroupFactory
from tests.rules.conftest import customer

pytestmark = pytest.mark.django_db

RICH = {"attribute": "total_spend", "op": "gt", "value": 1000}


def login(user):
    c = Client()
    c.force_login(user)
    return c


def test_batch_log_shows_backlog_and_latency(tag_admin, make_rule):
    now = timezone.now()
    for latency in (10, 20, 30, 4000):
        RealtimeBatch.objects.create(
            started_at=now,
            finished_at=now,
            customers=2,
            rules=1,
            added=1,
            removed=0,
            latency_ms=latency,
        )
    figures = latency_figures(now - dt.timedelta(hours=1))
    assert figures == {"batches": 4, "customers": 8, "p50": 30, "p99": 4000, "max": 4000}
    response = login(tag_admin).get(reverse("admin:rules_realtimebatch_changelist"))
    assert response.status_code == 200
    assert "Customers awaiting evaluation: 0." in response.text
    assert "p99 4000 ms" in response.text


def test_batch_log_is_for_tag_admins(sales_operator):
    sales_operator.is_staff = True
    sales_operator.save()
    response = login(sales_operator).get(reverse("admin:rules_realtimebatch_changelist"))
    assert response.status_code == 403


def test_rule_mode_in_the_list(tag_admin, make_rule, auto_tag):
    rule = make_rule(RICH, tag=auto_tag)
    rule.mode = RuleMode.REALTIME
    rule.save()
    response = login(tag_admin).get(reverse("admin:rules_rule_changelist"))
    assert "real time + nightly" in response.text


def test_explain_page_from_the_customer_page(tag_admin, make_rule, auto_tag):
    rule = make_rule(RICH, tag=auto_tag)
    rich = customer(total_spend=5000)
    client = login(tag_admin)
    page = client.get(reverse("admin:customers_customer_change", args=[rich.pk]))
    link = f"{reverse('admin:rules_explain')}?customer={rich.pk}"
    assert link in page.text
    response = client.get(link)
    assert response.status_code == 200
    assert rule.name in response.text and "Matches now." in response.text
    assert "The next evaluation will change this." in response.text  # not applied yet
    assert "5000" in response.text


def test_explain_page_is_scoped(sales_operator, make_rule, auto_tag):
    sales_operator.is_staff = True
    sales_operator.save()
    make_rule(RICH, tag=auto_tag)
    hidden = customer(department=DepartmentFactory(name="别的部门"))
    client = login(sales_operator)
    assert client.get(f"{reverse('admin:rules_explain')}?customer={hidden.pk}").status_code == 404
    assert client.get(f"{reverse('admin:rules_explain')}?customer=x").status_code == 404


def test_realtime_mode_reaches_the_dirty_table_through_the_admin_form(tag_admin, auto_tag):
    response = login(tag_admin).post(
        reverse("admin:rules_rule_add"),
        {
            "name": "实时",
            "tag": auto_tag.pk,
            "enabled": "on",
            "mode": "realtime",
            "description": "",
            "tree": '{"event": "purchase", "op": "gte", "value": 1}',
        },
    )
    assert response.status_code == 302, response.content
    assert realtime.index_keys() == {"event:purchase"}
    group = TagGroupFactory(name="其他")
    assert TagFactory(group=group)  # unrelated tags do not touch the index
    assert realtime.index_keys() == {"event:purchase"}
