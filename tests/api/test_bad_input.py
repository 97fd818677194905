"""No 5xx on bad input (issue 11 §8): every probe is a 4xx in the one JSON error shape.

The probes are the inputs an attacker or a careless client sends: JSON nested 1,000 deep (also
to the anonymous token login), numbers that overflow to infinity, NUL bytes and lone
surrogates, absurd page numbers, bodies over the upload limit, rules whose windows or
day counts overflow date arithmetic.
"""

from __future__ import annotations

import json

import pytest
from rest_framework.test import APIClient

from rules.models import Rule
from tests.api.conftest import assert_error, client_for, tag
from tests.factories import TagFactory

DEEP_ARRAY = "[" * 1000 + "]" * 1000
DEEP_OBJECT = '{"a":' * 1000 + "1" + "}" * 1000


def _quiet(client: APIClient) -> APIClient:
    """Report a server error as a 500 response instead of raising it in the test."""
    client.raise_request_exception = False
    return client


def _post(client, path, body: str | bytes):
    return client.generic("POST", path, body, content_type="application/json")


@pytest.fixture
def api(world, sales_operator):
    return _quiet(client_for(sales_operator))


@pytest.fixture
def admin(world, tag_admin):
    return _quiet(client_for(tag_admin))


@pytest.fixture
def saved_rule(world):
    return Rule.objects.create(
        name="probe",
        tag=TagFactory(group=world.auto, name="探针"),
        tree={"attribute": "total_spend", "op": "gt", "value": 1},
    )


def _json_paths(world):
    customer = world.sales_customers[0].pk
    return [
        "/api/v1/auth/token",
        "/api/v1/customers/upsert",
        f"/api/v1/customers/{customer}/tags",
        "/api/v1/events",
        "/api/v1/tags/batch",
        "/api/v1/segments/count",
        "/api/v1/segments/customers",
        "/api/v1/personal-tag-groups",
        "/api/v1/personal-tags",
    ]


@pytest.mark.parametrize("body", [DEEP_ARRAY, DEEP_OBJECT], ids=["array", "object"])
def test_deeply_nested_json_is_a_400_everywhere(admin, world, saved_rule, body):
    for path in _json_paths(world):
        error = assert_error(_post(admin, path, body), 400, "parse_error")
        assert "nested" in error["message"], (path, error)
    # An action that takes no body never reads it.
    assert _post(admin, f"/api/v1/rules/{saved_rule.pk}/dry-run", body).status_code == 200


def test_deeply_nested_json_to_the_anonymous_login(world):
    client = _quiet(APIClient())
    error = assert_error(_post(client, "/api/v1/auth/token", DEEP_ARRAY), 400, "parse_error")
    assert "nested" in error["message"]


def test_nesting_within_the_limit_is_parsed(api, world):
    # 60 levels is fine for the parser; the serializer then refuses the shape.
    body = json.dumps({"username": "[" * 60 + "]" * 60})
    response = _post(_quiet(APIClient()), "/api/v1/auth/token", body)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    "literal", ["9.9e999999", "-9.9e999999", "1e400", "NaN", "Infinity", "-Infinity"]
)
def test_numbers_beyond_float_are_refused_by_the_parser(api, world, literal):
    body = '{"external_userid": "wm1", "attributes": {"score": @}}'.replace("@", literal)
    error = assert_error(_post(api, "/api/v1/customers/upsert", body), 400, "parse_error")
    assert "number" in error["message"].lower()


@pytest.mark.parametrize(
    "text", ["\\u0000", "a\\u0000b", "\\ud800", "x\\udfff"], ids=["nul", "nul-inside", "hi", "lo"]
)
def test_nul_and_lone_surrogates_are_refused_in_any_string(api, world, text):
    customer = world.sales_customers[0].pk
    bodies = {  # raw JSON text: "@" stands for the escaped text (json.dumps would re-escape)
        "/api/v1/customers/upsert": '{"external_userid": "wm1", "name": "@"}',
        "/api/v1/events": '{"events": [{"customer": ' + str(customer) + ', "kind": "message", '
        '"occurred_at": "2026-01-01T00:00:00Z", "client_event_id": "e1", "text": "@"}]}',
        "/api/v1/segments/count": '{"expression": "@"}',
        "/api/v1/personal-tag-groups": '{"name": "@"}',
        f"/api/v1/customers/{customer}/tags": '{"add": [], "reason": "@"}',
        # In a key too.
        "/api/v1/tags/batch": '{"customers": [], "add": [], "@": 1}',
    }
    for path, template in bodies.items():
        body = template.replace("@", text)
        error = assert_error(_post(api, path, body), 400, "parse_error")
        assert "NUL" in error["message"], (path, error)


@pytest.mark.parametrize("value", ["9999-12-31", "9999-12-31T23:59:59-10:00", "0001-01-01"])
def test_extreme_dates_in_events_are_refused(api, world, value):
    body = json.dumps(
        {
            "events": [
                {
                    "customer": world.sales_customers[0].pk,
                    "kind": "purchase",
                    "occurred_at": value,
                    "client_event_id": "e-date",
                    "amount": "1",
                }
            ]
        }
    )
    error = assert_error(_post(api, "/api/v1/events", body), 400, "invalid")
    assert "between the years 1900 and 2199" in error["message"]


def test_attribute_dates_far_away_are_stored_as_text(api, world):
    """``attributes`` is free JSON: a far-away date is only text there (no date arithmetic)."""
    body = json.dumps({"external_userid": "wmfar", "attributes": {"until": "9999-12-31"}})
    assert _post(api, "/api/v1/customers/upsert", body).status_code == 201


@pytest.mark.parametrize("page", [str(10**20), str(2**63), "-1", "0", "abc", "1e3", ""])
def test_absurd_page_numbers(api, world, page):
    segment_body = json.dumps({"expression": "客户偏好:减脂期"})
    for path in ["/api/v1/tags", "/api/v1/tag-groups", "/api/v1/segments", "/api/v1/personal-tags"]:
        response = api.get(path, {"page": page})
        assert response.status_code in (200, 400, 404), (path, response.content)
        if response.status_code != 200:
            assert_error(response, response.status_code)
    response = api.generic(
        "POST",
        f"/api/v1/segments/customers?page={page}",
        segment_body,
        content_type="application/json",
    )
    assert response.status_code in (200, 400, 404), response.content
    if response.status_code != 200:
        assert_error(response, response.status_code)
    response = api.get("/api/v1/tags", {"page_size": page})
    assert response.status_code in (200, 400, 404), response.content


@pytest.mark.parametrize("cursor", ["!!!", "cD05OTk5OTk5OTk5OTk5OTk5OTk5OTk5OTk5", "cD0tMQ=="])
def test_bad_cursors(api, world, cursor):
    for path in ["/api/v1/customers", f"/api/v1/customers/{world.sales_customers[0].pk}/timeline"]:
        response = api.get(path, {"cursor": cursor})
        assert response.status_code in (200, 404), (path, response.content)


@pytest.mark.parametrize(
    "query", [{"search": "\x00"}, {"search": "a\x00"}, {"tag": "\x00"}, {"tag": str(10**20)}]
)
def test_bad_query_parameters(api, world, query):
    response = api.get("/api/v1/customers", query)
    assert 400 <= response.status_code < 500, response.content
    assert_error(response, response.status_code)
    response = api.get("/api/v1/tags/search", {"q": query.get("search", "x\x00")})
    assert 200 <= response.status_code < 500, response.content


def test_tag_ids_beyond_bigint(api, world):
    customer = world.sales_customers[0].pk
    for body in [
        {"add": [10**20], "remove": []},
        {"add": [], "remove": [2**63]},
    ]:
        response = _post(api, f"/api/v1/customers/{customer}/tags", json.dumps(body))
        assert 400 <= response.status_code < 500, response.content
        assert_error(response, response.status_code)
    response = _post(
        api,
        "/api/v1/tags/batch",
        json.dumps({"customers": [10**20], "add": [tag(world.intent, "高").pk]}),
    )
    assert 400 <= response.status_code < 500, response.content


@pytest.mark.parametrize(
    "text",
    ["NOT " * 1000 + "减脂期", "(" * 1000 + "减脂期" + ")" * 1000, "(" * 1000, "NOT " * 1000],
    ids=["not", "parens", "open-parens", "bare-not"],
)
def test_deep_segment_text_is_a_clear_400(api, world, text):
    for path in ["/api/v1/segments/count", "/api/v1/segments/customers"]:
        error = assert_error(_post(api, path, json.dumps({"expression": text})), 400)
        assert error["code"] == "invalid_segment"
        assert "nested" in error["message"] or "deep" in error["message"], error


def test_segment_attribute_dates_far_away(api, world):
    for text in ["@added_at >= 9999-12-31", "@last_order_at < 0001-01-01", "@total_spend > 1e999"]:
        response = _post(api, "/api/v1/segments/count", json.dumps({"expression": text}))
        assert response.status_code in (200, 400), (text, response.content)


def test_body_over_the_upload_limit_is_a_json_413(api, world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    body = json.dumps({"customers": [1] * 5000, "add": [1]})
    assert len(body) > 10_000
    error = assert_error(_post(api, "/api/v1/tags/batch", body), 413, "request_too_large")
    assert "9 KB" in error["message"]


def test_body_over_the_upload_limit_to_the_login(world, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1_000
    body = json.dumps({"username": "x" * 2000, "password": "y"})
    assert_error(_post(_quiet(APIClient()), "/api/v1/auth/token", body), 413, "request_too_large")


# --- rules: bounds in the DSL, and saved rules that slipped past them -------------------------

OVERFLOWING_TREES = [
    {
        "event": "purchase",
        "agg": "count",
        "window": {"from": "2026-01-01", "to": "9999-12-31"},
        "op": "gte",
        "value": 1,
    },
    {
        "event": "purchase",
        "agg": "count",
        "window": {"from": "0001-01-01", "to": "2026-01-01"},
        "op": "gte",
        "value": 1,
    },
    {"attribute": "days_since_added", "op": "gte", "value": 10**12},
    {"event": "purchase", "agg": "days_since_last", "op": "lte", "value": 10**12},
    {"attribute": "days_since_last_order", "op": "between", "value": [0, 10**12]},
]


@pytest.mark.parametrize("tree", OVERFLOWING_TREES)
def test_saved_overflowing_rule_is_rule_invalid_via_the_api(admin, world, tree):
    # Written straight to the table, as a rule saved before the bounds existed would be.
    rule = Rule.objects.create(name="old", tag=TagFactory(group=world.auto), tree=tree)
    for action in ["dry-run", "run"]:
        error = assert_error(
            admin.post(f"/api/v1/rules/{rule.pk}/{action}", format="json"), 400, "rule_invalid"
        )
        assert error["message"]
