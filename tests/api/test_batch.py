"""POST /api/v1/tags/batch and POST /api/v1/customers/{id}/tags: limits, all-or-nothing,
per-customer results."""

from __future__ import annotations

import pytest

from customers.models import Customer
from tagging import services
from tagging.models import AssignmentSource, AuditEntry, TagAssignment
from tests.api.conftest import assert_error, tag


def _customers(department, count):
    Customer.objects.bulk_create(
        Customer(external_userid=f"wmBATCH{i:05d}", department=department, name=f"批量{i}")
        for i in range(count)
    )
    return list(
        Customer.objects.filter(external_userid__startswith="wmBATCH")
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def test_500_customers_three_tags_in_one_call(sales_api, world):
    ids = _customers(world.sales, 500)
    tags = [tag(world.intent, "高").pk, tag(world.prefs, "牛奶过敏").pk, world.weekend.pk]
    response = sales_api.post(
        "/api/v1/tags/batch", {"customers": ids, "add": tags, "reason": "展会"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["customers"] == 500 and body["added"] == 1500
    assert [r["customer"] for r in body["results"]] == ids
    assert body["results"][0] == {
        "customer": ids[0],
        "added": tags,
        "removed": [],
        "replaced": [],
        "unchanged": [],
    }
    assert TagAssignment.objects.filter(customer_id__in=ids, source="api").count() == 1500
    assert AuditEntry.objects.filter(customer_id__in=ids, reason="展会").count() == 1500


def test_501_customers_is_a_400_with_a_clear_message(sales_api, world):
    ids = _customers(world.sales, 501)
    response = sales_api.post(
        "/api/v1/tags/batch",
        {"customers": ids, "add": [tag(world.intent, "高").pk]},
        format="json",
    )
    error = assert_error(response, 400, "invalid")
    assert error["message"] == "customers: 501 customers given; a batch may hold at most 500."
    assert "customers" in error["details"]
    assert not TagAssignment.objects.exists()


def test_limit_follows_the_setting(sales_api, world, settings):
    settings.TAGDESK_MAX_BATCH_CUSTOMERS = 2
    ids = [c.pk for c in world.sales_customers]
    response = sales_api.post(
        "/api/v1/tags/batch", {"customers": ids, "add": [tag(world.intent, "高").pk]}, format="json"
    )
    assert "at most 2" in assert_error(response, 400)["message"]


def test_one_unknown_customer_and_nothing_is_written(sales_api, world):
    ids = [c.pk for c in world.sales_customers] + [999999]
    response = sales_api.post(
        "/api/v1/tags/batch", {"customers": ids, "add": [tag(world.intent, "高").pk]}, format="json"
    )
    error = assert_error(response, 404, "not_found")
    assert error["details"] == {"customers": [999999]}
    assert not TagAssignment.objects.exists()


def test_one_customer_over_the_tag_limit_and_nothing_is_written(sales_api, world, settings):
    settings.TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER = 1
    first, second, third = world.sales_customers
    services.assign_tags(
        [second], [tag(world.prefs, "减脂期")], actor=None, source=AssignmentSource.IMPORT
    )
    before = TagAssignment.objects.count(), AuditEntry.objects.count()
    response = sales_api.post(
        "/api/v1/tags/batch",
        {"customers": [first.pk, second.pk, third.pk], "add": [tag(world.intent, "高").pk]},
        format="json",
    )
    error = assert_error(response, 400, "limit_exceeded")
    assert error["details"]["customers"] == [second.pk]
    assert (TagAssignment.objects.count(), AuditEntry.objects.count()) == before


def test_add_and_remove_with_exclusive_replacement(sales_api, world):
    first, second, _third = world.sales_customers
    high, low = tag(world.intent, "高"), tag(world.intent, "低")
    milk = tag(world.prefs, "牛奶过敏")
    services.assign_tags([first], [low, milk], actor=None, source=AssignmentSource.IMPORT)
    body = sales_api.post(
        "/api/v1/tags/batch",
        {"customers": [first.pk, second.pk], "add": [high.pk], "remove": [milk.pk]},
        format="json",
    ).json()
    assert body["results"] == [
        {
            "customer": first.pk,
            "added": [high.pk],
            "removed": [milk.pk],
            "replaced": [low.pk],
            "unchanged": [],
        },
        {
            "customer": second.pk,
            "added": [high.pk],
            "removed": [],
            "replaced": [],
            "unchanged": [milk.pk],
        },
    ]
    assert set(first.assignments.values_list("tag__name", flat=True)) == {"高"}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"customers": [], "add": [1]}, "customers"),
        ({"customers": [1]}, "at least one tag"),
        ({"customers": [1], "add": [2], "remove": [2]}, "both added and removed"),
        ({"customers": ["x"], "add": [1]}, "customers"),
        ({"customers": [1], "add": "3"}, "add"),
        ({"customers": [0], "add": [1]}, "customers"),
    ],
)
def test_bad_batch_input_is_a_400(sales_api, world, body, fragment):
    error = assert_error(sales_api.post("/api/v1/tags/batch", body, format="json"), 400, "invalid")
    assert fragment in error["message"]


def test_mark_and_unmark_one_customer(sales_api, world):
    customer = world.sales_customers[0]
    high, milk = tag(world.intent, "高"), tag(world.prefs, "牛奶过敏")
    url = f"/api/v1/customers/{customer.pk}/tags"
    body = sales_api.post(url, {"add": [high.pk, milk.pk, world.weekend.pk]}, format="json").json()
    assert body["added"] == [high.pk, milk.pk, world.weekend.pk]
    assert {t["name"] for t in body["tags"]} == {"高", "牛奶过敏", "周末可约"}
    chip = next(t for t in body["tags"] if t["name"] == "高")
    assert chip["source"] == "api" and chip["added_by"] == "王销售" and chip["kind"] == "corporate"
    body = sales_api.post(url, {"remove": [milk.pk]}, format="json").json()
    assert body["removed"] == [milk.pk]
    assert {t["name"] for t in sales_api.get(url).json()["tags"]} == {"高", "周末可约"}
    timeline = sales_api.get(f"/api/v1/customers/{customer.pk}/timeline").json()["results"]
    assert [(e["action"], e["tag"]) for e in timeline[:1]] == [("assignment.removed", milk.pk)]
    assert timeline[0]["actor_name"] == "王销售"


def test_archived_tag_cannot_be_added(sales_api, world, tag_admin):
    low = services.archive_tag(tag(world.intent, "低"), actor=tag_admin)
    response = sales_api.post(
        f"/api/v1/customers/{world.sales_customers[0].pk}/tags",
        {"add": [low.pk]},
        format="json",
    )
    assert "archived" in assert_error(response, 400, "tag_not_assignable")["message"]
