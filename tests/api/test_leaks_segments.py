"""Shared segments rendered for their reader (issue 11 item 2): the text never names a group or
tag the reader may not view (another department's group, another employee's personal tag); the
reader cannot count, list or export such a segment, with the same error as an unknown tag."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from tagging import segments
from tagging.models import Segment
from tests.api.conftest import assert_error, tag

pytestmark = pytest.mark.django_db
HIDDEN_NAMES = ("付款方式", "微信", "财务私标")


@pytest.fixture
def leaky(world, finance_operator):
    """A segment finance shares: 意向:高 (visible to sales) AND 付款方式:微信 (hidden from sales)
    AND NOT finance's personal 财务私标."""
    expression = segments.canonical(
        {
            "and": [
                {"tag": tag(world.intent, "高").pk},
                {"tag": tag(world.payment, "微信").pk},
                {"not": {"tag": world.finance_private.pk}},
            ]
        }
    )
    return Segment.objects.create(
        name="财务共享", owner=finance_operator, shared=True, expression=expression
    )


@pytest.fixture
def deleted(world, finance_operator):
    """A shared segment naming a tag that no longer exists."""
    return Segment.objects.create(
        name="旧的", owner=finance_operator, shared=True, expression={"tag": 999_999}
    )


def _no_hidden_names(content: str):
    for name in HIDDEN_NAMES:
        assert name not in content, name


def test_to_text_uses_the_readers_scope(world, leaky, sales_operator, finance_operator):
    text = segments.to_text(leaky.expression, sales_operator)
    _no_hidden_names(text)
    assert "意向:高" in text and text.count('"[hidden tag]"') == 2
    assert str(tag(world.payment, "微信").pk) not in text
    owner_text = segments.to_text(leaky.expression, finance_operator)
    assert "付款方式:微信" in owner_text and "财务私标" in owner_text


def test_api_segment_list_renders_for_the_reader(world, leaky, deleted, sales_api):
    response = sales_api.get("/api/v1/segments")
    assert response.status_code == 200
    _no_hidden_names(response.content.decode())
    texts = {row["name"]: row["text"] for row in response.json()["results"]}
    # a hidden tag and a deleted tag look the same: no oracle
    assert texts["旧的"] == '"[hidden tag]"'
    assert texts["财务共享"].count('"[hidden tag]"') == 2


def test_api_counting_a_segment_with_hidden_tags_is_like_an_unknown_tag(leaky, deleted, sales_api):
    for segment in (leaky, deleted):
        for path in (
            f"/api/v1/segments/{segment.pk}/count",
            f"/api/v1/segments/{segment.pk}/customers",
        ):
            error = assert_error(sales_api.get(path), 404, "unknown_tag")
            _no_hidden_names(error["message"])


def test_pasting_the_rendered_text_back_is_an_unknown_tag(leaky, sales_api, sales_operator):
    text = segments.to_text(leaky.expression, sales_operator)
    error = assert_error(
        sales_api.post("/api/v1/segments/count", {"expression": text}, format="json"),
        404,
        "unknown_tag",
    )
    _no_hidden_names(error["message"])


def test_admin_changelist_form_and_results_page_hide_the_names(world, leaky, sales_operator):
    client = Client()
    client.force_login(sales_operator)
    changelist = client.get(reverse("admin:tagging_segment_changelist"))
    assert changelist.status_code == 200
    assert "财务共享" in changelist.content.decode()
    _no_hidden_names(changelist.content.decode())
    form = client.get(reverse("admin:tagging_segment_change", args=[leaky.pk]))
    assert form.status_code == 200
    _no_hidden_names(form.content.decode())
    assert "[hidden tag]" in form.content.decode()
    results = client.get(reverse("admin:tagging_segment_customers", args=[leaky.pk]), follow=True)
    _no_hidden_names(results.content.decode())
    assert "Unknown tag" in results.content.decode()
    export = client.get(reverse("admin:tagging_segment_customers", args=[leaky.pk]) + "?export=csv")
    assert export.status_code == 302  # refused, back to the list with the error


def test_customer_changelist_filter_with_a_hidden_segment(world, leaky, sales_operator):
    client = Client()
    client.force_login(sales_operator)
    page = client.get(reverse("admin:customers_customer_changelist") + f"?segment={leaky.pk}")
    assert page.status_code == 200
    _no_hidden_names(page.content.decode())


def test_segment_list_names_tags_in_one_query_whatever_the_page(
    world, leaky, sales_api, finance_operator
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert sales_api.get("/api/v1/segments").status_code == 200
        return len(captured)

    one = queries()
    for n in range(5):
        Segment.objects.create(
            name=f"更多{n}",
            owner=finance_operator,
            shared=True,
            expression={"tag": tag(world.intent, "中").pk},
        )
    assert queries() == one
