"""Tag suggestions in the API: a customer's top tags (scope, refusals, personal tags, queries),
accepting and dismissing them (assignment service, audit), and the tag admins' combinations
(403 for everyone else; accept as segment, dismiss, a dismissed one survives recomputing)."""

from __future__ import annotations

import pytest

from tagging import segments, suggestions
from tagging.models import (
    AssignmentSource,
    AuditAction,
    AuditEntry,
    CombinationSuggestion,
    Segment,
    SuggestionStatus,
    TagAssignment,
)
from tests.api.conftest import assert_error, tag

pytestmark = pytest.mark.django_db


def give(customers, *tags):
    TagAssignment.objects.bulk_create(
        [
            TagAssignment(customer=c, tag=t, source=AssignmentSource.MANUAL)
            for c in customers
            for t in tags
        ]
    )


def recompute(min_support=1, min_lift=1.0):
    params = suggestions.Params(min_support, min_lift, top_tags=300, max_triples=1000)
    return suggestions.store(suggestions.request_report(params=params), suggestions.compute(params))


@pytest.fixture
def tagged(world):
    """Sales customers 0-1 hold 官网 + 牛奶过敏 + 减脂期; customer 2 holds only 官网 (so 牛奶过敏
    and 减脂期 are what to suggest), plus the operators' personal tags everywhere."""
    a, b, c = world.sales_customers
    website, milk, diet = (
        tag(world.source, "官网"),
        tag(world.prefs, "牛奶过敏"),
        tag(world.prefs, "减脂期"),
    )
    give([a, b], website, milk, diet)
    give([c], website)
    give([a, b, c], world.weekend, world.finance_private)
    give(world.finance_customers, tag(world.payment, "微信"))
    recompute()
    return world, website, milk, diet


def url(customer, tail=""):
    return f"/api/v1/customers/{customer.pk}/tag-suggestions{tail}"


def test_top_tags_for_a_customer(sales_api, tagged):
    world, website, milk, diet = tagged
    customer = world.sales_customers[2]
    body = sales_api.get(url(customer)).json()
    assert body["customer"] == customer.pk and body["computed_at"]
    assert [r["id"] for r in body["results"]] == sorted([milk.pk, diet.pk])
    first = body["results"][0]
    assert first["because"] == website.pk and first["support"] == 2
    assert first["confidence"] == pytest.approx(2 / 3)
    assert first["lift"] == pytest.approx((2 / 5) / ((3 / 5) * (2 / 5)))


def test_personal_tags_are_neither_evidence_nor_suggested(sales_api, tagged, world):
    customer = world.sales_customers[2]
    ids = {r["id"] for r in sales_api.get(url(customer)).json()["results"]}
    assert not ids & {world.weekend.pk, world.finance_private.pk}
    # A customer holding only personal tags has nothing to go on.
    lonely = world.sales_customers[0]
    TagAssignment.objects.filter(customer=lonely).exclude(
        tag__in=[world.weekend, world.finance_private]
    ).delete()
    assert sales_api.get(url(lonely)).json()["results"] == []


def test_a_customer_outside_my_scope_is_the_normal_404(sales_api, tagged, world):
    hidden = world.finance_customers[0]
    assert_error(sales_api.get(url(hidden)), 404, "not_found")
    assert_error(sales_api.post(url(hidden, f"/{tag(world.prefs, '减脂期').pk}/accept")), 404)
    assert_error(sales_api.post(url(hidden, f"/{tag(world.prefs, '减脂期').pk}/dismiss")), 404)
    assert_error(sales_api.get("/api/v1/customers/99999999/tag-suggestions"), 404, "not_found")


def test_before_any_computation_there_is_nothing(sales_api, world):
    body = sales_api.get(url(world.sales_customers[0])).json()
    assert body["computed_at"] is None and body["results"] == []


def test_accept_assigns_through_the_service_and_audits(sales_api, tagged, sales_operator):
    world, _website, milk, _diet = tagged
    customer = world.sales_customers[2]
    response = sales_api.post(url(customer, f"/{milk.pk}/accept"))
    assert response.status_code == 200, response.content
    assert response.json() == {
        "customer": customer.pk,
        "tag": milk.pk,
        "decision": "accepted",
        "changed": True,
    }
    row = TagAssignment.objects.get(customer=customer, tag=milk)
    assert row.source == AssignmentSource.API and row.actor == sales_operator
    entry = AuditEntry.objects.get(action=AuditAction.ASSIGNMENT_ADDED, customer=customer, tag=milk)
    assert entry.reason == "tag suggestion"
    again = sales_api.post(url(customer, f"/{milk.pk}/accept")).json()
    assert again["changed"] is False
    ids = [r["id"] for r in sales_api.get(url(customer)).json()["results"]]
    assert milk.pk not in ids


def test_dismiss_persists_and_is_audited_once(sales_api, tagged, sales_operator):
    world, _website, milk, diet = tagged
    customer = world.sales_customers[2]
    assert sales_api.post(url(customer, f"/{diet.pk}/dismiss")).json()["changed"] is True
    assert sales_api.post(url(customer, f"/{diet.pk}/dismiss")).json()["changed"] is False
    entries = AuditEntry.objects.filter(action=AuditAction.SUGGESTION_DISMISSED, customer=customer)
    assert [(e.tag_id, e.actor_id) for e in entries] == [(diet.pk, sales_operator.pk)]
    recompute()
    ids = [r["id"] for r in sales_api.get(url(customer)).json()["results"]]
    assert ids == [milk.pk]


def test_refusals_on_accept(sales_api, tagged, world, finance_api):
    customer = world.sales_customers[2]
    # A tag I may only view: 403; an auto tag: 403 with the reason; a tag of a group I cannot see
    # and someone else's personal tag: 404 like tags that do not exist.
    assert_error(sales_api.post(url(customer, f"/{tag(world.source, '展会').pk}/accept")), 403)
    assert_error(
        sales_api.post(url(customer, f"/{world.high_value.pk}/accept")),
        403,
        "rule_tag_not_assignable",
    )
    assert_error(sales_api.post(url(customer, f"/{tag(world.payment, '微信').pk}/accept")), 404)
    assert_error(sales_api.post(url(customer, f"/{world.finance_private.pk}/dismiss")), 404)
    assert_error(sales_api.post(url(customer, "/99999999/accept")), 404)
    assert not AuditEntry.objects.filter(action=AuditAction.SUGGESTION_DISMISSED).exists()


def test_suggestion_queries_do_not_grow_with_tags(
    sales_api, tagged, world, django_assert_max_num_queries
):
    customer = world.sales_customers[0]
    sales_api.get(url(customer))  # warm the per-user scope cache
    with django_assert_max_num_queries(12) as first:
        sales_api.get(url(customer))
    give(
        [customer],
        *world.prefs.tags.exclude(assignments__customer=customer),
        tag(world.source, "展会"),
    )
    recompute()
    with django_assert_max_num_queries(len(first.captured_queries)):
        sales_api.get(url(customer))


# --- combinations (tag admins) -------------------------------------------------------------------


def test_only_tag_admins_see_combinations(sales_api, finance_api, tagged):
    for client in (sales_api, finance_api):
        assert_error(client.get("/api/v1/tag-combinations"), 403, "permission_denied")
    suggestion = CombinationSuggestion.objects.first()
    assert_error(sales_api.post(f"/api/v1/tag-combinations/{suggestion.pk}/dismiss"), 403)
    assert_error(sales_api.post(f"/api/v1/tag-combinations/{suggestion.pk}/accept-as-segment"), 403)
    assert CombinationSuggestion.objects.get(pk=suggestion.pk).status == SuggestionStatus.NEW


def test_admin_lists_accepts_and_dismisses(admin_api, tagged, tag_admin):
    world, website, milk, diet = tagged
    rows = admin_api.get("/api/v1/tag-combinations?status=new&size=2").json()["results"]
    pair = next(r for r in rows if {t["id"] for t in r["tags"]} == {milk.pk, diet.pk})
    assert pair["support"] == 2 and pair["lift"] == pytest.approx(2.5)
    assert {t["name"] for t in pair["tags"]} == {"牛奶过敏", "减脂期"}
    response = admin_api.post(
        f"/api/v1/tag-combinations/{pair['id']}/accept-as-segment", {"name": "过敏且减脂"}
    )
    assert response.status_code == 200, response.content
    segment = Segment.objects.get(pk=response.json()["segment"])
    assert segment.owner == tag_admin and segment.name == "过敏且减脂"
    assert segment.expression == segments.canonical({"and": [{"tag": milk.pk}, {"tag": diet.pk}]})
    assert response.json()["suggestion"]["status"] == "accepted"
    entry = AuditEntry.objects.get(action=AuditAction.SUGGESTION_ACCEPTED)
    assert entry.actor == tag_admin and entry.after["segment"] == segment.pk
    assert_error(
        admin_api.post(f"/api/v1/tag-combinations/{pair['id']}/dismiss"), 409, "already_decided"
    )
    other = next(r for r in rows if r["id"] != pair["id"])
    assert admin_api.post(f"/api/v1/tag-combinations/{other['id']}/dismiss").json()["status"] == (
        "dismissed"
    )
    assert AuditEntry.objects.filter(action=AuditAction.SUGGESTION_DISMISSED).count() == 1
    recompute()
    decided = dict(CombinationSuggestion.objects.values_list("pk", "status"))
    assert decided[pair["id"]] == "accepted" and decided[other["id"]] == "dismissed"
    new_ids = {
        r["id"] for r in admin_api.get("/api/v1/tag-combinations?status=new").json()["results"]
    }
    assert not new_ids & {pair["id"], other["id"]}


def test_bad_filters_are_400(admin_api, tagged):
    assert_error(admin_api.get("/api/v1/tag-combinations?size=7"), 400)
    assert_error(admin_api.get("/api/v1/tag-combinations?status=maybe"), 400)
    assert_error(admin_api.post("/api/v1/tag-combinations/99999999/dismiss"), 404)
