"""/api/v1/segments: saved segments, count and list for any expression, in the API's error
shape; invisible tags are 404 ``unknown_tag`` like tags that do not exist; scope applies."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tagging.models import Segment
from tagging.services import assign_tags
from tests.conftest import tag
from tests.factories import CustomerFactory


def api(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def tagged(superuser, sales_views_intent, source_group, departments):
    mine = CustomerFactory.create_batch(3, department=departments["销售部"])
    theirs = CustomerFactory.create_batch(2, department=departments["财务部"])
    assign_tags(mine + theirs, [tag(sales_views_intent, "高")], actor=superuser, source="manual")
    assign_tags(mine[:1], [tag(source_group, "官网")], actor=superuser, source="manual")
    return mine, theirs


def test_count_and_list_for_an_expression(superuser, tagged):
    client = api(superuser)
    response = client.post(
        "/api/v1/segments/count", {"expression": "意向:高 AND NOT 官网"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["count"] == 4
    assert response.json()["text"] == "NOT 客户来源:官网 AND 意向:高"
    listed = client.post(
        "/api/v1/segments/customers?page_size=3", {"expression": "意向:高"}, format="json"
    )
    body = listed.json()
    assert (
        body["count"] == 5
        and len(body["results"]) == 3
        and body["next"]
        and body["previous"] is None
    )
    ids = [c["id"] for c in body["results"]]
    assert ids == sorted(ids, reverse=True)


def test_scope_applies(sales_operator, tagged):
    mine, _theirs = tagged
    client = api(sales_operator)
    body = client.post(
        "/api/v1/segments/customers", {"expression": {"tag": tag_id(mine)}}, format="json"
    ).json()
    assert body["count"] == 3
    assert {c["id"] for c in body["results"]} == {c.pk for c in mine}


def tag_id(customers) -> int:
    return customers[0].assignments.get(tag__group__name="意向").tag_id


def test_invisible_tag_is_404_like_unknown(sales_operator, tagged, source_group):
    client = api(sales_operator)
    hidden = client.post(
        "/api/v1/segments/count",
        {"expression": {"tag": tag(source_group, "官网").pk}},
        format="json",
    )
    missing = client.post("/api/v1/segments/count", {"expression": {"tag": 987654}}, format="json")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["error"]["code"] == missing.json()["error"]["code"] == "unknown_tag"
    bad = client.post("/api/v1/segments/count", {"expression": "意向:高 AND"}, format="json")
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_segment"
    assert client.post("/api/v1/segments/count", {}, format="json").status_code == 400


def test_saved_segments(superuser, sales_operator, tagged, sales_views_intent):
    high = tag(sales_views_intent, "高")
    shared = Segment.objects.create(
        name="高意向", owner=superuser, shared=True, expression={"tag": high.pk}
    )
    private = Segment.objects.create(name="私有", owner=superuser, expression={"tag": high.pk})
    client = api(sales_operator)
    names = [s["name"] for s in client.get("/api/v1/segments").json()["results"]]
    assert names == ["高意向"]
    assert client.get(f"/api/v1/segments/{shared.pk}/count").json()["count"] == 3
    assert (
        client.get(f"/api/v1/segments/{shared.pk}/customers?page=2&page_size=2").json()["count"]
        == 3
    )
    assert client.get(f"/api/v1/segments/{private.pk}/count").status_code == 404
    assert client.get(f"/api/v1/segments/{shared.pk}/customers?page=x").status_code == 400
