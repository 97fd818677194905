"""Customers: search, tag filters, detail, upsert semantics and event ingest."""

from __future__ import annotations

import pytest

from customers.models import Customer, CustomerEvent, Follower
from tagging import services
from tagging.models import AssignmentSource, AuditEntry
from tests.api.conftest import assert_error, tag


@pytest.fixture
def chen(world):
    return Customer.objects.create(
        phone="+8613800138000", name="陈女士", department=world.sales, company="杭州某某科技"
    )


@pytest.mark.parametrize(
    "spelling", ["138 0013 8000", "+86 138-0013-8000", "8613800138000", "13800138000", "0013"]
)
def test_search_by_phone_in_any_spelling(sales_api, chen, spelling):
    results = sales_api.get("/api/v1/customers", {"search": spelling}).json()["results"]
    assert [c["id"] for c in results] == [chen.pk]
    assert results[0]["phone_display"] == "+86 138 0013 8000"


def test_search_by_name_and_external_userid(sales_api, world, chen):
    assert [
        c["id"] for c in sales_api.get("/api/v1/customers", {"search": "陈"}).json()["results"]
    ] == [chen.pk]
    other = world.sales_customers[1]
    found = sales_api.get("/api/v1/customers", {"search": other.external_userid}).json()
    assert [c["id"] for c in found["results"]] == [other.pk]


def test_search_never_reaches_other_departments(sales_api, world):
    foreign = world.finance_customers[0]
    found = sales_api.get("/api/v1/customers", {"search": foreign.external_userid}).json()
    assert found["results"] == []


def test_filter_by_tags_means_all_of_them(sales_api, world):
    first, second, _ = world.sales_customers
    high, milk = tag(world.intent, "高"), tag(world.prefs, "牛奶过敏")
    services.assign_tags([first, second], [high], actor=None, source=AssignmentSource.IMPORT)
    services.assign_tags([first], [milk], actor=None, source=AssignmentSource.IMPORT)
    one = sales_api.get("/api/v1/customers", {"tag": [high.pk]}).json()["results"]
    assert {c["id"] for c in one} == {first.pk, second.pk}
    both = sales_api.get("/api/v1/customers", {"tag": [high.pk, milk.pk]}).json()["results"]
    assert [c["id"] for c in both] == [first.pk]


def test_list_query_count_is_constant(sales_api, world, django_assert_max_num_queries):
    high = tag(world.intent, "高")
    services.assign_tags(world.sales_customers, [high], actor=None, source=AssignmentSource.IMPORT)
    with django_assert_max_num_queries(8):
        assert len(sales_api.get("/api/v1/customers").json()["results"]) == 3


def test_detail_has_followers_aggregates_and_tags(sales_api, world, sales_operator):
    customer = world.sales_customers[0]
    Follower.objects.create(customer=customer, employee=sales_operator, add_way=1)
    body = sales_api.get(f"/api/v1/customers/{customer.pk}").json()
    assert body["followers"][0]["employee_name"] == "王销售"
    assert body["department_name"] == "销售部"
    assert body["total_spend"] == "0.00" and body["order_count"] == 0


def test_followed_customer_of_another_department_is_visible(sales_api, world, sales_operator):
    foreign = world.finance_customers[0]
    assert sales_api.get(f"/api/v1/customers/{foreign.pk}").status_code == 404
    Follower.objects.create(customer=foreign, employee=sales_operator)
    assert sales_api.get(f"/api/v1/customers/{foreign.pk}").status_code == 200


# --- upsert --------------------------------------------------------------------------------------


def test_upsert_creates_a_customer_owned_by_me(sales_api, world, sales_operator):
    response = sales_api.post(
        "/api/v1/customers/upsert",
        {
            "external_userid": "wmNEW0001",
            "phone": "139 1234 5678",
            "name": "新客户",
            "source": "展会",
        },
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["created"] is True and body["phone"] == "+8613912345678"
    customer = Customer.objects.get(pk=body["id"])
    assert customer.owner == sales_operator and customer.department == world.sales
    assert customer.source == "展会" and body["source"] == "展会"
    assert AuditEntry.objects.filter(customer=customer, action="customer.created").exists()


def test_phone_only_customer_gains_its_external_userid_and_keeps_tags(sales_api, world, chen):
    high = tag(world.intent, "高")
    services.assign_tags([chen], [high], actor=None, source=AssignmentSource.IMPORT)
    response = sales_api.post(
        "/api/v1/customers/upsert",
        {"external_userid": "wmCHEN01", "phone": "+86 138-0013-8000", "remark": "VIP"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == chen.pk and body["created"] is False
    assert body["external_userid"] == "wmCHEN01" and body["remark"] == "VIP"
    assert [t["name"] for t in body["tags"]] == ["高"]
    assert Customer.objects.count() == 6  # nobody new


def test_upsert_by_external_userid_updates(sales_api, world):
    customer = world.sales_customers[0]
    body = sales_api.post(
        "/api/v1/customers/upsert",
        {"external_userid": customer.external_userid, "name": "改过名"},
        format="json",
    ).json()
    assert body["id"] == customer.pk and body["name"] == "改过名"


def test_upsert_phone_of_another_customer_is_a_409(sales_api, world, chen):
    response = sales_api.post(
        "/api/v1/customers/upsert",
        {"external_userid": world.sales_customers[0].external_userid, "phone": "13800138000"},
        format="json",
    )
    assert_error(response, 409, "identifier_conflict")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"name": "无标识"}, "invalid"),
        ({"phone": "010 8888 6666"}, "invalid_phone"),
        ({"phone": "not a phone"}, "invalid_phone"),
        ({"external_userid": "has space"}, "invalid_external_userid"),
        ({"external_userid": "wmOK", "attributes": "x"}, "invalid"),
    ],
)
def test_upsert_bad_input_is_a_400(sales_api, world, body, code):
    assert_error(sales_api.post("/api/v1/customers/upsert", body, format="json"), 400, code)
    assert Customer.objects.count() == 5


# --- events --------------------------------------------------------------------------------------


def _events(customer, *ids):
    return {
        "events": [
            {
                "customer": customer.pk,
                "kind": "purchase",
                "occurred_at": "2026-11-20T20:11:00+08:00",
                "client_event_id": event_id,
                "amount": "100.50",
                "category": "奶粉",
            }
            for event_id in ids
        ]
    }


def test_events_are_idempotent_by_client_event_id(sales_api, world):
    customer = world.sales_customers[0]
    first = sales_api.post("/api/v1/events", _events(customer, "o-1", "o-2"), format="json")
    assert first.json() == {"received": 2, "created": 2, "duplicates": 0}
    again = sales_api.post("/api/v1/events", _events(customer, "o-2", "o-3", "o-3"), format="json")
    assert again.json() == {"received": 3, "created": 1, "duplicates": 2}
    assert CustomerEvent.objects.filter(customer=customer).count() == 3
    customer.refresh_from_db()
    assert str(customer.total_spend) == "301.50" and customer.order_count == 3


def test_events_batch_is_limited(sales_api, world):
    ids = [f"e-{i}" for i in range(1001)]
    response = sales_api.post(
        "/api/v1/events", _events(world.sales_customers[0], *ids), format="json"
    )
    assert_error(response, 400, "invalid")
    assert not CustomerEvent.objects.exists()


def test_1000_events_in_one_call_are_accepted(sales_api, world):
    """The boundary of the events limit: 1000 is the most one call may carry (1001: above)."""
    ids = [f"e-{i}" for i in range(1000)]
    response = sales_api.post(
        "/api/v1/events", _events(world.sales_customers[0], *ids), format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json() == {"received": 1000, "created": 1000, "duplicates": 0}
    assert CustomerEvent.objects.count() == 1000


def test_bad_event_kind_is_a_400(sales_api, world):
    body = _events(world.sales_customers[0], "x-1")
    body["events"][0]["kind"] = "teleport"
    error = assert_error(sales_api.post("/api/v1/events", body, format="json"), 400, "invalid")
    assert error["message"].startswith("events.0.kind")
