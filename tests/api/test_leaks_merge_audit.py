"""A merge into a tag the reader may not view (issue 11 item 3): audit entries store the target
as an id and every door renders it through the reader's scope (``tagging.audit_view``): the API
timeline, the admin customer page, a tag's change log and the audit log admin say
"merged into “[hidden tag]”" and carry no target id."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from tagging import services
from tagging.audit_view import render_entries
from tagging.models import AssignmentSource, AuditAction, AuditEntry
from tests.api.conftest import tag

pytestmark = pytest.mark.django_db


@pytest.fixture
def merged(world, superuser):
    """减脂期 (客户偏好, sales may edit) merged into 付款方式:微信 (hidden from sales)."""
    source, target = tag(world.prefs, "减脂期"), tag(world.payment, "微信")
    customer = world.sales_customers[0]
    services.assign_tags([customer], [source], actor=superuser, source=AssignmentSource.MANUAL)
    services.merge_tags([source], target, actor=superuser)
    return customer, source, target


def _leaks(content: str, target) -> list[str]:
    found = [word for word in ("付款方式", "微信") if word in content]
    if f'"merged_into": {target.pk}' in content or f'"merged_into":{target.pk}' in content:
        found.append("target id")
    return found


def test_entries_store_the_target_as_a_reference(merged):
    _customer, source, target = merged
    entries = AuditEntry.objects.filter(source=AssignmentSource.MERGE)
    assert entries.count() == 3  # removed, added, tag merged
    for entry in entries:
        assert entry.after["merged_into"] == target.pk
        assert "微信" not in entry.reason


def test_api_timeline_shows_a_placeholder(merged, sales_api, superuser):
    customer, source, target = merged
    response = sales_api.get(f"/api/v1/customers/{customer.pk}/timeline")
    assert response.status_code == 200
    rows = response.json()["results"]
    removed = next(r for r in rows if r["action"] == AuditAction.ASSIGNMENT_REMOVED)
    assert removed["reason"] == "merged into “[hidden tag]”"
    assert removed["after"] == {"merged_into": None}
    assert _leaks(response.content.decode(), target) == []


def test_the_reader_who_may_view_the_target_sees_its_name(merged, superuser):
    customer, source, target = merged
    entries = render_entries(
        AuditEntry.objects.filter(customer=customer, source=AssignmentSource.MERGE), superuser
    )
    assert {e.reason for e in entries} == {"merged into “付款方式:微信”"}
    assert all(e.after == {"merged_into": target.pk} for e in entries)


def test_admin_customer_page_and_tag_change_log(merged, sales_operator):
    customer, source, target = merged
    client = Client()
    client.force_login(sales_operator)
    page = client.get(reverse("admin:customers_customer_change", args=[customer.pk]))
    assert page.status_code == 200
    assert "merged into “[hidden tag]”" in page.content.decode()
    assert _leaks(page.content.decode(), target) == []
    log = client.get(reverse("admin:tagging_tag_change", args=[source.pk]))
    assert log.status_code == 200
    assert "merged into “[hidden tag]”" in log.content.decode()
    assert _leaks(log.content.decode(), target) == []


def test_audit_log_admin_list_and_detail(merged, sales_operator):
    customer, source, target = merged
    sales_operator.user_permissions.add(
        Permission.objects.get(content_type__app_label="tagging", codename="view_auditentry")
    )
    client = Client()
    client.force_login(sales_operator)
    listing = client.get(
        reverse("admin:tagging_auditentry_changelist") + f"?tag__id__exact={source.pk}"
    )
    assert listing.status_code == 200
    assert "merged into “[hidden tag]”" in listing.content.decode()
    assert _leaks(listing.content.decode(), target) == []
    merged_entry = AuditEntry.objects.get(action=AuditAction.TAG_MERGED)
    detail = client.get(reverse("admin:tagging_auditentry_change", args=[merged_entry.pk]))
    assert detail.status_code == 200
    assert _leaks(detail.content.decode(), target) == []
    assert f"<td>{target.pk}</td>" not in detail.content.decode()


def test_entries_written_before_with_the_name_in_the_reason_are_rendered_too(
    world, merged, sales_operator
):
    customer, source, target = merged
    legacy = AuditEntry.objects.create(
        action=AuditAction.ASSIGNMENT_REMOVED,
        source=AssignmentSource.MERGE,
        customer=customer,
        tag=source,
        group=source.group,
        object_repr=str(source),
        reason="merged into “付款方式:微信”",
    )
    (rendered,) = render_entries([legacy], sales_operator)
    assert rendered.reason == "merged into “[hidden tag]”"
    # nor does searching the audit log for the hidden name find the entry
    sales_operator.user_permissions.add(
        Permission.objects.get(content_type__app_label="tagging", codename="view_auditentry")
    )
    client = Client()
    client.force_login(sales_operator)
    listing = reverse("admin:tagging_auditentry_changelist")
    assert list(client.get(listing + "?q=微信").context["cl"].result_list) == []
    assert legacy in client.get(listing + "?q=减脂期").context["cl"].result_list


def test_rendering_a_page_takes_two_queries(merged, sales_operator, django_assert_num_queries):
    customer, _source, _target = merged
    entries = list(AuditEntry.objects.filter(source=AssignmentSource.MERGE))
    render_entries(entries, sales_operator)  # loads the user's permission cache once
    entries = list(AuditEntry.objects.filter(source=AssignmentSource.MERGE))
    with django_assert_num_queries(2):  # the named tags, the named groups
        render_entries(entries, sales_operator)
