"""Tag groups and tags I may view, with my level and counts within my customer scope."""

from __future__ import annotations

from tagging import services
from tagging.models import AssignmentSource
from tests.api.conftest import tag


def _assign(customers, tags, actor):
    services.assign_tags(customers, tags, actor=actor, source=AssignmentSource.MANUAL)


def test_groups_list_shows_only_granted_and_own_personal_groups(sales_api, world):
    body = sales_api.get("/api/v1/tag-groups").json()
    names = {(g["name"], g["my_level"]) for g in body["results"]}
    assert names == {
        ("意向", "edit"),
        ("客户来源", "view"),
        ("客户偏好", "edit"),
        ("自动标签", "view"),
        ("我的标签", "create"),
    }
    assert body["count"] == 5
    own = next(g for g in body["results"] if g["name"] == "我的标签")
    assert own["id"] == world.sales_personal.pk  # never finance's personal group


def test_group_detail_counts_customers_within_my_scope(sales_api, world, superuser):
    high = tag(world.intent, "高")
    # Two of mine and both of finance's customers carry 高: I count only mine.
    _assign(world.sales_customers[:2] + world.finance_customers, [high], superuser)
    body = sales_api.get(f"/api/v1/tag-groups/{world.intent.pk}").json()
    assert body["my_level"] == "edit"
    counts = {t["name"]: t["customer_count"] for t in body["tags"]}
    assert counts == {"高": 2, "中": 0, "低": 0, "沉睡": 0}


def test_tag_admin_counts_all_customers(admin_api, world, superuser):
    high = tag(world.intent, "高")
    _assign(world.sales_customers[:2] + world.finance_customers, [high], superuser)
    body = admin_api.get(f"/api/v1/tags/{high.pk}").json()
    assert body["customer_count"] == 4
    assert body["my_level"] == "create"


def test_tags_list_filters_and_hides_invisible_groups(sales_api, world):
    body = sales_api.get("/api/v1/tags", {"page_size": 200}).json()
    names = {t["name"] for t in body["results"]}
    assert "高" in names and "周末可约" in names and "高价值" in names
    assert "微信" not in names and "财务私标" not in names
    only_intent = sales_api.get("/api/v1/tags", {"group": world.intent.pk}).json()
    assert [t["name"] for t in only_intent["results"]] == ["高", "中", "低", "沉睡"]


def test_tags_list_filter_by_invisible_group_is_404(sales_api, world):
    response = sales_api.get("/api/v1/tags", {"group": world.payment.pk})
    assert response.status_code == 404


def test_archived_tags_only_on_request(sales_api, world, tag_admin):
    low = tag(world.intent, "低")
    services.archive_tag(low, actor=tag_admin)
    active = sales_api.get("/api/v1/tags", {"group": world.intent.pk}).json()["results"]
    assert "低" not in {t["name"] for t in active}
    archived = sales_api.get(
        "/api/v1/tags", {"group": world.intent.pk, "status": "archived"}
    ).json()
    assert [t["name"] for t in archived["results"]] == ["低"]


def test_list_queries_do_not_grow_with_page_size(sales_api, world, django_assert_max_num_queries):
    with django_assert_max_num_queries(12):
        sales_api.get("/api/v1/tags", {"page_size": 200})
