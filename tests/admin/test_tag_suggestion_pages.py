"""Tag suggestions in the admin: the tag admins' combinations page (refused to others; accept
as segment, dismiss, recompute), the suggested-tags panel beside the customer's tag picker
(accept through the assignment service, dismiss, scope), and the report task."""

from __future__ import annotations

import pytest
from django.urls import reverse

from permissions import services as grants
from permissions.policy import Level
from tagging import suggestions
from tagging.models import (
    AssignmentSource,
    AuditAction,
    AuditEntry,
    CombinationSuggestion,
    CustomerTagSuggestionDismissal,
    Segment,
    SuggestionReport,
    SuggestionStatus,
    TagAssignment,
)
from tagging.tasks import compute_tag_suggestions_task
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:tagging_combinationsuggestion_changelist"
RECOMPUTE = "admin:tagging_combinationsuggestion_recompute"


@pytest.fixture
def shop(departments, sales_operator, superuser):
    """销售部 may edit 偏好 (咖啡, 甜点, 茶); customers 0-2 hold 咖啡 + 甜点, 3 holds 咖啡 only,
    and a 财务部 customer holds 茶."""
    group = TagGroupFactory(name="偏好")
    coffee, cake, tea = (TagFactory(group=group, name=n) for n in ("咖啡", "甜点", "茶"))
    grants.grant(group, actor=superuser, level=Level.EDIT, department=departments["销售部"])
    people = CustomerFactory.create_batch(4, department=departments["销售部"])
    hidden = CustomerFactory(department=departments["财务部"])
    rows = [(c, coffee) for c in people] + [(c, cake) for c in people[:3]] + [(hidden, tea)]
    TagAssignment.objects.bulk_create(
        [TagAssignment(customer=c, tag=t, source=AssignmentSource.MANUAL) for c, t in rows]
    )
    compute_tag_suggestions_task()
    return people, hidden, coffee, cake, tea


@pytest.fixture(autouse=True)
def _small_thresholds(settings):
    settings.TAGDESK_SUGGESTION_MIN_SUPPORT = 1
    settings.TAGDESK_SUGGESTION_MIN_LIFT = 1.0


def test_the_nightly_task_stores_a_report(shop):
    report = suggestions.latest_report()
    assert report.status == SuggestionReport.Status.DONE and report.customers == 5
    assert report.pairs_counted >= 1 and report.seconds is not None
    assert CombinationSuggestion.objects.filter(size=2).exists()
    # A second delivery of the same report's task does nothing.
    assert compute_tag_suggestions_task(report.pk) == {"report": report.pk, "claimed": False}


def test_a_failed_computation_is_recorded(shop, monkeypatch):
    def broken(params, tags=None):
        raise RuntimeError("disk full")

    monkeypatch.setattr(suggestions, "compute", broken)
    report = suggestions.request_report()
    with pytest.raises(RuntimeError):
        suggestions.run_report(report.pk)
    report.refresh_from_db()
    assert report.status == SuggestionReport.Status.FAILED and "disk full" in report.error
    assert CombinationSuggestion.objects.exists()  # the previous report's rows stay


def test_only_tag_admins_open_the_combinations_page(
    admin_client_for, shop, sales_operator, tag_admin
):
    for url in (reverse(CHANGELIST),):
        assert admin_client_for(sales_operator).get(url).status_code == 403
    assert admin_client_for(sales_operator).post(reverse(RECOMPUTE)).status_code == 403
    body = admin_client_for(tag_admin).get(reverse(CHANGELIST)).content.decode()
    assert "偏好:咖啡 + 偏好:甜点" in body and 'id="td-suggestion-report"' in body


def test_accept_as_segment_and_dismiss_from_the_page(admin_client_for, shop, tag_admin):
    client = admin_client_for(tag_admin)
    pair = CombinationSuggestion.objects.get(size=2)
    response = client.post(
        reverse(CHANGELIST),
        {"action": "accept_as_segment", "_selected_action": [pair.pk]},
        follow=True,
    )
    assert response.status_code == 200
    pair.refresh_from_db()
    assert pair.status == SuggestionStatus.ACCEPTED and pair.decided_by == tag_admin
    segment = Segment.objects.get(pk=pair.segment_id)
    assert segment.owner == tag_admin and segment.name == "偏好:咖啡 + 偏好:甜点"
    assert AuditEntry.objects.filter(action=AuditAction.SUGGESTION_ACCEPTED).count() == 1
    # Deciding it again is refused with a message, nothing written.
    response = client.post(
        reverse(CHANGELIST), {"action": "dismiss", "_selected_action": [pair.pk]}, follow=True
    )
    assert "already" in response.content.decode()
    assert not AuditEntry.objects.filter(action=AuditAction.SUGGESTION_DISMISSED).exists()


def test_a_dismissed_combination_stays_dismissed_after_recompute(
    admin_client_for, shop, tag_admin, django_capture_on_commit_callbacks
):
    client = admin_client_for(tag_admin)
    pair = CombinationSuggestion.objects.get(size=2)
    client.post(reverse(CHANGELIST), {"action": "dismiss", "_selected_action": [pair.pk]})
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(reverse(RECOMPUTE)).status_code == 302
    assert SuggestionReport.objects.filter(requested_by=tag_admin, status="done").exists()
    assert CombinationSuggestion.objects.get(key=pair.key).status == SuggestionStatus.DISMISSED
    entry = AuditEntry.objects.get(action=AuditAction.SUGGESTION_DISMISSED)
    assert entry.actor == tag_admin and entry.after["tags"] == pair.tag_ids


# --- the customer page ---------------------------------------------------------------------------


def change_url(customer):
    return reverse("admin:customers_customer_change", args=[customer.pk])


def decide_url(customer):
    return reverse("admin:customers_customer_tag_suggestion", args=[customer.pk])


def test_the_customer_page_suggests_and_accepts(admin_client_for, shop, sales_operator):
    people, _hidden, _coffee, cake, tea = shop
    client = admin_client_for(sales_operator)
    body = client.get(change_url(people[3])).content.decode()
    assert 'id="td-tag-suggestions"' in body and "偏好 : 甜点" in body
    assert "偏好 : 茶" not in body  # held by nobody the customer's tags go with
    response = client.post(decide_url(people[3]), {"tag": cake.pk, "decision": "accept"})
    assert response.status_code == 302
    row = TagAssignment.objects.get(customer=people[3], tag=cake)
    assert row.source == AssignmentSource.MANUAL and row.actor == sales_operator
    assert AuditEntry.objects.get(
        action=AuditAction.ASSIGNMENT_ADDED, customer=people[3], tag=cake
    ).reason == ("tag suggestion")


def test_the_customer_page_dismisses(admin_client_for, shop, sales_operator):
    people, _hidden, _coffee, cake, _tea = shop
    client = admin_client_for(sales_operator)
    client.post(decide_url(people[3]), {"tag": cake.pk, "decision": "dismiss"})
    assert CustomerTagSuggestionDismissal.objects.filter(customer=people[3], tag=cake).exists()
    assert AuditEntry.objects.filter(
        action=AuditAction.SUGGESTION_DISMISSED, customer=people[3], tag=cake
    ).exists()
    body = client.get(change_url(people[3])).content.decode()
    assert "偏好 : 甜点" not in body.split('id="td-tag-suggestions"')[1]


def test_the_customer_page_refuses(admin_client_for, shop, sales_operator):
    people, hidden, _coffee, cake, tea = shop
    client = admin_client_for(sales_operator)
    assert client.post(decide_url(hidden), {"tag": tea.pk, "decision": "accept"}).status_code == 404
    response = client.post(decide_url(people[3]), {"tag": "x", "decision": "accept"}, follow=True)
    assert "Choose a suggested tag" in response.content.decode()
    response = client.post(
        decide_url(people[3]), {"tag": cake.pk, "decision": "maybe"}, follow=True
    )
    assert "Choose a suggested tag" in response.content.decode()
    assert client.get(decide_url(people[3])).status_code == 405
    assert not TagAssignment.objects.filter(customer=people[3], tag=cake).exists()
