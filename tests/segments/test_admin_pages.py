"""Admin pages: analytics (SVG charts, CSV of every table, filters), hygiene (tag admins only,
merge/archive behind a preview), saved segments (results, export, batch tagging) and the
customer changelist segment filter with its live count."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse

from tagging.models import Segment, TagStatus
from tagging.services import assign_tags
from tests.conftest import tag
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory


@pytest.fixture
def tagged(superuser, intent_group, source_group, departments):
    people = CustomerFactory.create_batch(4, department=departments["销售部"])
    assign_tags(people[:3], [tag(intent_group, "高")], actor=superuser, source="manual")
    assign_tags(people[1:], [tag(source_group, "官网")], actor=superuser, source="import")
    return people


def test_analytics_page_renders_svg_charts(client, superuser, tagged, departments):
    client.force_login(superuser)
    url = reverse("admin:tagging_taganalytics_changelist")
    response = client.get(url)
    assert response.status_code == 200
    body = response.content.decode()
    assert body.count("<svg") >= 6
    assert "意向:高" in body
    filtered = client.get(
        url, {"department": departments["销售部"].pk, "start": "2020-01-01", "end": "2030-01-01"}
    )
    assert filtered.status_code == 200


@pytest.mark.parametrize(
    "table", ["tags", "groups", "by_source", "by_employee", "by_department", "rules"]
)
def test_analytics_csv_for_every_table(client, superuser, tagged, table):
    client.force_login(superuser)
    today = dt.date.today()
    response = client.get(
        reverse("admin:tagging_taganalytics_changelist"),
        {
            "csv": table,
            "start": (today - dt.timedelta(days=3)).isoformat(),
            "end": (today + dt.timedelta(days=1)).isoformat(),
        },
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = response.content.decode("utf-8-sig").splitlines()
    assert len(lines) >= 1
    if table == "by_source":
        assert any("3" in line for line in lines[1:])


def test_analytics_rejects_a_bad_date_range(client, superuser):
    client.force_login(superuser)
    response = client.get(
        reverse("admin:tagging_taganalytics_changelist"),
        {"start": "2026-02-01", "end": "2026-01-01"},
    )
    assert response.status_code == 200
    assert "The start date is after the end date." in response.content.decode()


def test_analytics_counts_only_within_scope(
    client, sales_operator, sales_views_intent, superuser, departments
):
    inside = CustomerFactory(department=departments["销售部"])
    outside = CustomerFactory(department=departments["财务部"])
    assign_tags(
        [inside, outside], [tag(sales_views_intent, "高")], actor=superuser, source="manual"
    )
    client.force_login(sales_operator)
    response = client.get(reverse("admin:tagging_taganalytics_changelist"), {"csv": "tags"})
    rows = [line.split(",") for line in response.content.decode("utf-8-sig").splitlines()[1:]]
    assert ["意向", "高", "active", "1"] in rows
    assert not any(r[0] == "客户来源" for r in rows)


def test_hygiene_page_is_for_tag_admins(client, tag_admin, sales_operator):
    url = reverse("admin:tagging_taghygiene_changelist")
    client.force_login(sales_operator)
    assert client.get(url).status_code == 403
    group = TagGroupFactory(name="偏好")
    TagFactory(group=group, name="不吃香菜")
    TagFactory(group=group, name="不要香菜")
    client.force_login(tag_admin)
    response = client.get(url)
    assert response.status_code == 200
    assert "不要香菜" in response.content.decode()
    csv_response = client.get(url, {"csv": "near_duplicates"})
    assert "不吃香菜" in csv_response.content.decode("utf-8-sig")


def test_merge_and_archive_show_a_preview_then_act(client, tag_admin, superuser):
    group = TagGroupFactory(name="偏好")
    a, b = TagFactory(group=group, name="不吃香菜"), TagFactory(group=group, name="不要香菜")
    people = CustomerFactory.create_batch(3)
    assign_tags(people, [a], actor=superuser, source="manual")
    client.force_login(tag_admin)
    merge_url = reverse("admin:tagging_taghygiene_merge")
    preview = client.get(merge_url, {"source": a.pk, "target": b.pk})
    assert preview.status_code == 200 and "3" in preview.content.decode()
    a.refresh_from_db()
    assert a.status == TagStatus.ACTIVE  # the preview changed nothing
    assert client.post(merge_url, {"source": a.pk, "target": b.pk}).status_code == 302
    a.refresh_from_db()
    assert a.merged_into_id == b.pk and b.assignments.count() == 3
    archive_url = reverse("admin:tagging_taghygiene_archive")
    assert client.get(archive_url, {"tag": b.pk}).status_code == 200
    client.post(archive_url, {"tag": b.pk})
    b.refresh_from_db()
    assert b.status == TagStatus.ARCHIVED
    assert client.get(merge_url, {"source": 999999, "target": b.pk}).status_code == 403


def test_segment_admin_results_export_and_batch_tagging(
    client, superuser, tagged, intent_group, source_group
):
    client.force_login(superuser)
    add = client.post(
        reverse("admin:tagging_segment_add"),
        {"name": "高意向官网", "text": "意向:高 AND 官网", "description": ""},
    )
    assert add.status_code == 302, add.content.decode()[:2000]
    segment = Segment.objects.get(name="高意向官网")
    assert segment.owner == superuser
    bad = client.post(reverse("admin:tagging_segment_add"), {"name": "x", "text": "意向:火星"})
    assert "Unknown tag “意向:火星”." in bad.content.decode()
    url = reverse("admin:tagging_segment_customers", args=[segment.pk])
    page = client.get(url)
    assert page.status_code == 200 and "2 customers" in page.content.decode()
    export = client.get(url, {"export": "csv"})
    assert export.status_code == 200
    assert len(b"".join(export.streaming_content).decode("utf-8-sig").splitlines()) == 3
    fair = tag(source_group, "展会")
    assert client.post(url, {"tag": fair.pk}).status_code == 302
    assert fair.assignments.count() == 2
    listing = client.get(reverse("admin:tagging_segment_changelist"))
    assert '<td class="field-customer_count">2</td>' in listing.content.decode()


def test_changelist_segment_filter_shows_live_count(
    client, superuser, tagged, intent_group, source_group
):
    client.force_login(superuser)
    url = reverse("admin:customers_customer_changelist")
    high, web = tag(intent_group, "高"), tag(source_group, "官网")
    response = client.get(url, {"seg_all": [high.pk], "seg_none": [web.pk]})
    assert response.status_code == 200
    body = response.content.decode()
    assert "1 customer matches" in body
    assert response.context["cl"].result_count == 1
    both = client.get(url, {"seg_any": f"{high.pk},{web.pk}"})
    assert both.context["cl"].result_count == 4
    bad = client.get(url, {"seg_all": "abc"})
    assert bad.status_code == 200 and bad.context["cl"].result_count == 0
