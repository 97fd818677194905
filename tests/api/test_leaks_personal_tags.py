"""One rule for "tags shown on a customer" (issue 11 item 6, ``policy.customer_tags``): another
employee's personal tag is shown on a customer to nobody but its owner, in every door: the API,
the admin customer page and changelist, the customer filters, segments and export. Tag admins
still view other people's personal tags in the taxonomy admin (read-only)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from customers.exporting import iter_rows
from tagging import segments, services
from tagging.models import AssignmentSource
from tests.api.conftest import assert_error, client_for

pytestmark = pytest.mark.django_db


@pytest.fixture
def marked(world, finance_operator):
    """finance's personal 财务私标 on a finance customer, added by its owner."""
    customer = world.finance_customers[0]
    services.assign_tags(
        [customer], [world.finance_private], actor=finance_operator, source=AssignmentSource.MANUAL
    )
    return customer


@pytest.fixture
def admin_client(tag_admin):
    client = Client()
    client.force_login(tag_admin)
    return client


def test_api_customer_and_tag_filter(world, marked, tag_admin):
    api = client_for(tag_admin)
    detail = api.get(f"/api/v1/customers/{marked.pk}")
    assert detail.status_code == 200 and "财务私标" not in detail.content.decode()
    assert_error(api.get(f"/api/v1/customers?tag={world.finance_private.pk}"), 404, "not_found")
    timeline = api.get(f"/api/v1/customers/{marked.pk}/timeline")
    assert "财务私标" not in timeline.content.decode()


def test_admin_customer_page_and_changelist(world, marked, admin_client):
    page = admin_client.get(reverse("admin:customers_customer_change", args=[marked.pk]))
    assert page.status_code == 200 and "财务私标" not in page.content.decode()
    listing = admin_client.get(reverse("admin:customers_customer_changelist"))
    assert listing.status_code == 200 and "财务私标" not in listing.content.decode()


def test_admin_tag_filters(world, marked, admin_client):
    changelist = reverse("admin:customers_customer_changelist")
    by_tag = admin_client.get(changelist + f"?tag={world.finance_private.pk}")
    assert by_tag.status_code == 200
    assert list(by_tag.context["cl"].result_list) == []
    assert "财务私标" not in by_tag.content.decode()
    by_segment = admin_client.get(changelist + f"?seg_any={world.finance_private.pk}")
    assert list(by_segment.context["cl"].result_list) == []
    assert "Unknown tag" in by_segment.content.decode()


def test_segments_and_export(world, marked, tag_admin, finance_operator):
    with pytest.raises(segments.InvalidSegment) as refused:
        segments.parse(f"#{world.finance_private.pk}", tag_admin)
    assert refused.value.code == "unknown_tag"
    with pytest.raises(segments.InvalidSegment):
        segments.validate({"tag": world.finance_private.pk}, tag_admin)
    api = client_for(tag_admin)
    assert_error(
        api.post(
            "/api/v1/segments/count",
            {"expression": {"tag": world.finance_private.pk}},
            format="json",
        ),
        404,
        "unknown_tag",
    )
    rows = list(iter_rows(tag_admin))
    assert all("财务私标" not in row[3] for row in rows)
    # its owner sees it everywhere
    owner_rows = list(iter_rows(finance_operator))
    assert any("财务私标" in row[3] for row in owner_rows)
    assert segments.count({"tag": world.finance_private.pk}, finance_operator) == 1


def test_tag_admin_still_views_it_in_the_taxonomy_admin_read_only(world, admin_client):
    page = admin_client.get(reverse("admin:tagging_tag_change", args=[world.finance_private.pk]))
    assert page.status_code == 200 and "财务私标" in page.content.decode()
    assert b'name="_save"' not in page.content


def test_analytics_count_no_one_elses_personal_tags(world, marked, tag_admin, finance_operator):
    from tagging import analytics

    filters = analytics.Filters()
    assert world.finance_private.pk not in {
        r["tag_id"] for r in analytics.customers_per_tag(tag_admin, filters)
    }
    assert world.finance_personal.pk not in {
        r["group_id"] for r in analytics.group_coverage(tag_admin, filters)
    }
    assert not any(
        r["assignments"]
        for r in analytics.assignments_over_time(tag_admin, filters, by="source")
        if r["source"] == "manual"
    )
    mine = {
        r["tag_id"]: r["customers"] for r in analytics.customers_per_tag(finance_operator, filters)
    }
    assert mine[world.finance_private.pk] == 1
