"""Tag search for pickers (prefix, substring, pinyin) and my personal tags (CRUD)."""

from __future__ import annotations

import pytest

from tagging import services
from tagging.models import AssignmentSource, AuditEntry, Tag, TagGroup, TagKind
from tests.api.conftest import assert_error, tag


def _names(response):
    assert response.status_code == 200, response.content
    return [t["name"] for t in response.json()["results"]]


@pytest.mark.parametrize("q", ["nn", "niunai", "NiuNai", "牛奶", "过敏", "nngm", "guomin"])
def test_pinyin_prefix_and_substring_find_milk_allergy(sales_api, world, q):
    assert "牛奶过敏" in _names(sales_api.get("/api/v1/tags/search", {"q": q}))


def test_match_kinds(sales_api, world):
    def match(q):
        results = sales_api.get("/api/v1/tags/search", {"q": q}).json()["results"]
        return {t["name"]: t["match"] for t in results}

    assert match("牛奶过敏")["牛奶过敏"] == "exact"
    assert match("牛奶")["牛奶过敏"] == "prefix"
    assert match("过敏")["牛奶过敏"] == "substring"
    assert match("nn")["牛奶过敏"] == "pinyin"


def test_most_used_first(sales_api, world):
    services.create_tag(world.prefs, "菜单控", actor=None)
    # Unused, a prefix match ranks before a substring match ...
    assert _names(sales_api.get("/api/v1/tags/search", {"q": "菜"})) == ["菜单控", "不吃香菜"]
    services.assign_tags(
        world.sales_customers,
        [tag(world.prefs, "不吃香菜")],
        actor=None,
        source=AssignmentSource.IMPORT,
    )
    from django.core.cache import cache

    from tagging.search import USAGE_CACHE_KEY

    cache.delete(USAGE_CACHE_KEY)  # usage counts are cached for a few minutes
    # ... but the most used tag comes first.
    assert _names(sales_api.get("/api/v1/tags/search", {"q": "菜"})) == ["不吃香菜", "菜单控"]


def test_search_only_tags_i_may_view_and_never_archived(sales_api, world, tag_admin):
    services.archive_tag(tag(world.prefs, "减脂期"), actor=tag_admin)
    assert _names(sales_api.get("/api/v1/tags/search", {"q": "wx"})) == []  # 微信 is finance's
    assert _names(sales_api.get("/api/v1/tags/search", {"q": "cwsb"})) == []  # finance personal
    assert _names(sales_api.get("/api/v1/tags/search", {"q": "jzq"})) == []  # archived
    assert _names(sales_api.get("/api/v1/tags/search", {"q": "zmky"})) == ["周末可约"]


def test_edit_level_picker_hides_view_only_and_auto_tags(sales_api, world):
    assert "官网" in _names(sales_api.get("/api/v1/tags/search", {"q": "gw"}))
    assert "官网" not in _names(sales_api.get("/api/v1/tags/search", {"q": "gw", "level": "edit"}))
    assert "高价值" in _names(sales_api.get("/api/v1/tags/search", {"q": "gjz"}))
    assert _names(sales_api.get("/api/v1/tags/search", {"q": "gjz", "level": "edit"})) == []


def test_search_needs_a_query(sales_api, world):
    assert_error(sales_api.get("/api/v1/tags/search"), 400, "invalid")
    assert_error(sales_api.get("/api/v1/tags/search", {"q": "x" * 65}), 400, "invalid")


# --- personal tags ------------------------------------------------------------------------------


def test_personal_tag_crud(sales_api, world, sales_operator):
    created = sales_api.post(
        "/api/v1/personal-tags", {"name": "晚上联系", "colour": "#FA541C"}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["group"] == world.sales_personal.pk and body["status"] == "active"
    tag_id = body["id"]
    listed = _names(sales_api.get("/api/v1/personal-tags"))
    assert set(listed) == {"周末可约", "晚上联系"}
    renamed = sales_api.patch(
        f"/api/v1/personal-tags/{tag_id}", {"name": "晚上8点后"}, format="json"
    )
    assert renamed.json()["name"] == "晚上8点后"
    assert AuditEntry.objects.filter(tag_id=tag_id, action="tag.updated").exists()
    assert sales_api.delete(f"/api/v1/personal-tags/{tag_id}").status_code == 204
    assert Tag.objects.get(pk=tag_id).status == "archived"
    assert "晚上8点后" not in _names(sales_api.get("/api/v1/personal-tags"))


def test_first_personal_tag_creates_my_group(finance_api, world, finance_operator):
    world.finance_private.delete()
    world.finance_personal.delete()
    response = finance_api.post("/api/v1/personal-tags", {"name": "老客户"}, format="json")
    assert response.status_code == 201, response.content
    group = TagGroup.objects.get(pk=response.json()["group"])
    assert group.kind == TagKind.PERSONAL and group.owner == finance_operator


def test_personal_group_create_and_list(sales_api, world):
    response = sales_api.post("/api/v1/personal-tag-groups", {"name": "跟进节奏"}, format="json")
    assert response.status_code == 201, response.content
    names = [g["name"] for g in sales_api.get("/api/v1/personal-tag-groups").json()["results"]]
    assert names == ["我的标签", "跟进节奏"]


def test_personal_tag_name_rules(sales_api, world):
    assert_error(
        sales_api.post("/api/v1/personal-tags", {"name": "周末可约"}, format="json"),
        400,
        "duplicate_name",
    )
    assert_error(
        sales_api.post("/api/v1/personal-tags", {"name": "a:b"}, format="json"),
        400,
        "forbidden_character",
    )
    assert_error(
        sales_api.post("/api/v1/personal-tags", {"name": "x", "colour": "red"}, format="json"),
        400,
        "invalid",
    )


def test_usage_on_big_postgresql_tables_comes_from_planner_statistics(world, monkeypatch):
    from django.db import connection

    from tagging import search

    if connection.vendor != "postgresql":
        pytest.skip("planner statistics exist on PostgreSQL only")
    services.assign_tags(
        world.sales_customers + world.finance_customers,
        [tag(world.prefs, "不吃香菜")],
        actor=None,
        source=AssignmentSource.IMPORT,
    )
    services.assign_tags(
        world.sales_customers[:1],
        [tag(world.intent, "高")],
        actor=None,
        source=AssignmentSource.IMPORT,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE tagging_tagassignment")
    monkeypatch.setattr(search, "ESTIMATE_ABOVE_ROWS", 0)
    estimates = search._planner_estimates()
    assert estimates is not None
    assert max(estimates, key=estimates.get) == tag(world.prefs, "不吃香菜").pk
