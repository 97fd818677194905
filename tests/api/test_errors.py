"""One error shape for every error; throttling; capped pagination."""

from __future__ import annotations

from rest_framework.test import APIClient

from tests.api.conftest import assert_error, tag


def test_400_names_the_field(sales_api, world):
    error = assert_error(
        sales_api.post(
            f"/api/v1/customers/{world.sales_customers[0].pk}/tags", {"add": ["x"]}, format="json"
        ),
        400,
        "invalid",
    )
    assert error["message"].startswith("add.0: ") or error["message"].startswith("add: ")
    assert "add" in error["details"]


def test_400_for_malformed_json(sales_api, world):
    response = sales_api.generic(
        "POST", "/api/v1/tags/batch", "{not json", content_type="application/json"
    )
    assert_error(response, 400, "parse_error")


def test_401_without_credentials(world):
    response = APIClient().get("/api/v1/tags")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"


def test_401_with_a_bad_token(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error(client.get("/api/v1/customers"), 401, "authentication_failed")


def test_403_below_level(sales_api, world):
    response = sales_api.post(
        f"/api/v1/customers/{world.sales_customers[0].pk}/tags",
        {"add": [tag(world.source, "官网").pk]},
        format="json",
    )
    error = assert_error(response, 403, "permission_denied")
    assert error["details"] == {"tags": [tag(world.source, "官网").pk]}


def test_404_shapes(sales_api, world):
    assert_error(sales_api.get("/api/v1/customers/999999"), 404, "not_found")
    assert_error(sales_api.get("/api/v1/customers/abc"), 404, "not_found")
    assert_error(sales_api.get("/api/v1/no-such-thing"), 404, "not_found")
    assert_error(sales_api.get("/api/v2/tags"), 404, "not_found")
    assert_error(sales_api.get("/api/v1/tags", {"page": 99}), 404, "not_found")


def test_405_shape(sales_api, world):
    response = sales_api.delete("/api/v1/tags")
    assert_error(response, 405, "method_not_allowed")
    assert_error(sales_api.put(f"/api/v1/customers/{world.sales_customers[0].pk}"), 405)


def test_429_in_the_error_shape(sales_api, world, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "3/min", "anon": "3/min", "batch": "1/min"},
    }
    for _ in range(3):
        assert sales_api.get("/api/v1/tags").status_code == 200
    response = sales_api.get("/api/v1/tags")
    error = assert_error(response, 429, "throttled")
    assert 0 < error["details"]["retry_after"] <= 60
    assert int(response["Retry-After"]) == error["details"]["retry_after"]


def test_throttling_is_per_user(sales_api, finance_api, world, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "2/min", "anon": "2/min", "batch": "1/min"},
    }
    sales_api.get("/api/v1/tags")
    sales_api.get("/api/v1/tags")
    assert sales_api.get("/api/v1/tags").status_code == 429
    assert finance_api.get("/api/v1/tags").status_code == 200


def test_batch_has_its_own_stricter_scope(sales_api, world, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"user": "100/min", "anon": "2/min", "batch": "1/min"},
    }
    body = {"customers": [world.sales_customers[0].pk], "add": [tag(world.intent, "高").pk]}
    assert sales_api.post("/api/v1/tags/batch", body, format="json").status_code == 200
    assert_error(sales_api.post("/api/v1/tags/batch", body, format="json"), 429, "throttled")
    assert sales_api.get("/api/v1/tags").status_code == 200


def test_page_size_is_capped(sales_api, world):
    from customers.models import Customer

    Customer.objects.bulk_create(
        Customer(external_userid=f"wmPAGE{i:04d}", department=world.sales) for i in range(230)
    )
    body = sales_api.get("/api/v1/customers", {"page_size": 10000}).json()
    assert len(body["results"]) == 200 and body["next"]
    second = sales_api.get(body["next"]).json()
    assert len(second["results"]) == 33  # 230 + the world's 3
    assert len(sales_api.get("/api/v1/customers").json()["results"]) == 50
    tags = sales_api.get("/api/v1/tags", {"page_size": 2}).json()
    assert len(tags["results"]) == 2 and tags["count"] > 2


def test_schema_and_docs_are_served_without_a_cdn(client, world):
    schema = client.get("/api/schema/")
    assert schema.status_code == 200
    docs = client.get("/api/docs/").content.decode()
    redoc = client.get("/api/redoc/").content.decode()
    for page in (docs, redoc):
        assert "cdn" not in page.lower() and "/static/drf_spectacular_sidecar/" in page
