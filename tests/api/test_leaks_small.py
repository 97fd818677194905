"""Smaller cross-scope leaks (issue 11 item 4): a hidden parent group's id, company-wide rule
results on narrower scopes, a group's name after its proposer lost access, and
``client_event_id`` uniqueness across departments."""

from __future__ import annotations

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers.models import CustomerEvent
from customers.services import record_events
from permissions import services as grants
from permissions.policy import Level
from rules.models import Rule, RuleRun, RunStatus, RunTrigger
from tagging import analytics
from tagging.models import AssignmentSource, AuditAction, AuditEntry, TagStatus
from tests.api.conftest import client_for
from tests.factories import TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db


def test_hidden_parent_is_null_for_the_reader(world, sales_api, superuser):
    hidden_parent = TagGroupFactory(name="财务总类")
    world.prefs.parent = hidden_parent
    world.prefs.save()
    row = next(
        g
        for g in sales_api.get("/api/v1/tag-groups").json()["results"]
        if g["id"] == world.prefs.pk
    )
    assert row["parent"] is None
    assert sales_api.get(f"/api/v1/tag-groups/{world.prefs.pk}").json()["parent"] is None
    # once the reader may view the parent, it is there
    grants.grant(hidden_parent, actor=superuser, level=Level.VIEW, department=world.sales)
    assert (
        sales_api.get(f"/api/v1/tag-groups/{world.prefs.pk}").json()["parent"] == hidden_parent.pk
    )


def test_rule_results_are_counted_within_the_readers_scope(world, sales_operator, superuser):
    rule = Rule.objects.create(name="高价值规则", tag=world.high_value)
    started = timezone.now() - dt.timedelta(hours=1)
    RuleRun.objects.create(
        rule=rule,
        trigger=RunTrigger.MANUAL,
        status=RunStatus.SUCCEEDED,
        started_at=started,
        finished_at=started + dt.timedelta(minutes=1),
        matched=40,
        added=len(world.sales_customers) + len(world.finance_customers),
        removed=0,
    )
    for customer in world.sales_customers + world.finance_customers:
        AuditEntry.objects.create(
            created_at=started + dt.timedelta(seconds=10),
            action=AuditAction.ASSIGNMENT_ADDED,
            source=AssignmentSource.RULE,
            customer=customer,
            tag=world.high_value,
            group=world.auto,
            rule=rule,
        )
    (company,) = analytics.rule_results_over_time(superuser, analytics.Filters())
    assert (company["matched"], company["added"]) == (40, 5)
    (scoped,) = analytics.rule_results_over_time(sales_operator, analytics.Filters())
    assert (scoped["matched"], scoped["added"], scoped["removed"]) == (None, 3, 0)


def test_proposer_who_lost_access_no_longer_sees_the_group_name(world, sales_operator, superuser):
    secret = TagGroupFactory(name="机密分组")
    grants.grant(secret, actor=superuser, level=Level.CREATE, department=world.sales)
    TagFactory(group=secret, name="我的提议", status=TagStatus.PENDING, created_by=sales_operator)
    client = Client()
    client.force_login(sales_operator)
    url = reverse("admin:permissions_tagproposal_changelist")
    assert "机密分组" in client.get(url).content.decode()
    grants.revoke(secret, actor=superuser, department=world.sales)
    page = client.get(url).content.decode()
    assert "我的提议" in page and "机密分组" not in page and "[hidden group]" in page


def _event(customer, event_id):
    return {
        "customer": customer.pk,
        "kind": "purchase",
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "client_event_id": event_id,
        "amount": "10.00",
    }


def test_client_event_id_is_unique_per_customer_not_across_departments(
    world, sales_api, finance_operator
):
    finance_api = client_for(finance_operator)
    first = finance_api.post(
        "/api/v1/events", {"events": [_event(world.finance_customers[0], "order-1")]}, format="json"
    )
    assert first.json() == {"received": 1, "created": 1, "duplicates": 0}
    # sales' client numbers its events alike: its event is stored, not a "duplicate"
    other = sales_api.post(
        "/api/v1/events", {"events": [_event(world.sales_customers[0], "order-1")]}, format="json"
    )
    assert other.json() == {"received": 1, "created": 1, "duplicates": 0}
    # a repeat for the same customer is a duplicate of one's own event
    again = sales_api.post(
        "/api/v1/events",
        {"events": [_event(world.sales_customers[0], "order-1")] * 2},
        format="json",
    )
    assert again.json() == {"received": 2, "created": 0, "duplicates": 2}
    assert CustomerEvent.objects.filter(client_event_id="order-1").count() == 2


def test_record_events_dedupes_within_one_call_per_customer(world):
    a, b = world.sales_customers[:2]
    rows = [
        {
            "customer_id": c.pk,
            "kind": "browse",
            "occurred_at": timezone.now(),
            "client_event_id": "x",
        }
        for c in (a, b, a)
    ]
    assert record_events(rows) == 2


def test_admin_group_form_under_a_hidden_parent_neither_names_nor_drops_it(
    world, sales_operator, superuser
):
    hidden_parent = TagGroupFactory(name="财务总类")
    world.prefs.parent = hidden_parent
    world.prefs.save()
    grants.grant(world.prefs, actor=superuser, level=Level.CREATE, department=world.sales)
    client = Client()
    client.force_login(sales_operator)
    url = reverse("admin:tagging_taggroup_change", args=[world.prefs.pk])
    page = client.get(url)
    assert page.status_code == 200
    body = page.content.decode()
    assert "财务总类" not in body and 'name="parent"' not in body
    assert (
        f'data-parent="{hidden_parent.pk}"'
        not in client.get(reverse("admin:tagging_taggroup_changelist")).content.decode()
    )
    data = {"name": "客户偏好2", "colour": world.prefs.colour, "description": ""}
    for inline in page.context["inline_admin_formsets"]:
        formset = inline.formset
        count = len(formset.initial_forms)
        data[f"{formset.prefix}-TOTAL_FORMS"] = data[f"{formset.prefix}-INITIAL_FORMS"] = count
        for form in formset.initial_forms:
            data[form.add_prefix("id")] = form.instance.pk
            for name, value in form.initial.items():
                if value not in (None, False) and name in form.fields:
                    data[form.add_prefix(name)] = getattr(value, "pk", value)
    saved = client.post(url, data)
    assert saved.status_code == 302, saved.content.decode()[:2000]
    world.prefs.refresh_from_db()
    assert (world.prefs.name, world.prefs.parent_id) == ("客户偏好2", hidden_parent.pk)
