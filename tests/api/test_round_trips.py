"""Round trips of the API's hot paths (issue 12): a customer detail and a tag search make a fixed,
small number of queries whatever the data, the user's powers are loaded in one query, and tag
search reads only the matching tags."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.models import Follower
from permissions import policy
from permissions.models import User
from tagging import services
from tagging.models import AssignmentSource, Tag
from tests.api.conftest import client_for, tag


def test_detail_takes_five_queries(sales_api, world, sales_operator, django_assert_num_queries):
    customer = world.sales_customers[0]
    services.assign_tags(
        [customer],
        [tag(world.intent, "高"), tag(world.prefs, "牛奶过敏"), world.weekend],
        actor=sales_operator,
        source=AssignmentSource.API,
    )
    Follower.objects.create(customer=customer, employee=sales_operator, add_way=1)
    sales_api.get(f"/api/v1/customers/{customer.pk}")  # warm: throttle counters, caches
    # The token with its user, the user's permissions, the customer in the scope with owner and
    # department, its visible tags, its followers.
    with django_assert_num_queries(5):
        body = sales_api.get(f"/api/v1/customers/{customer.pk}").json()
    assert {t["name"] for t in body["tags"]} == {"高", "牛奶过敏", "周末可约"}
    assert [f["employee"] for f in body["followers"]] == [sales_operator.pk]


def test_search_takes_three_queries_and_reads_only_matches(sales_api, world):
    sales_api.get("/api/v1/tags/search", {"q": "nn"})  # warm: the tag-usage cache
    with CaptureQueriesContext(connection) as queries:
        body = sales_api.get("/api/v1/tags/search", {"q": "nn"}).json()
    # The token with its user, the user's permissions, the matching tags of the scope.
    assert len(queries.captured_queries) == 3, [q["sql"] for q in queries.captured_queries]
    assert [t["name"] for t in body["results"]] == ["牛奶过敏"]
    search_sql = queries.captured_queries[-1]["sql"]
    assert "pinyin_initials" in search_sql and "LIKE" in search_sql.upper()


def test_like_wildcards_in_a_query_are_plain_characters(sales_api, world):
    services.create_tag(world.prefs, "满100减20%", actor=None)
    found = sales_api.get("/api/v1/tags/search", {"q": "%"}).json()["results"]
    assert [t["name"] for t in found] == ["满100减20%"]
    assert sales_api.get("/api/v1/tags/search", {"q": "_"}).json()["results"] == []


def test_a_renamed_tag_is_found_by_its_new_pinyin_only(sales_api, world, tag_admin):
    milk = tag(world.prefs, "牛奶过敏")
    services.update_tag(milk, actor=tag_admin, name="乳糖不耐")
    milk.refresh_from_db()
    assert (milk.pinyin_initials, milk.pinyin_full) == ("rtbn", "rutangbunai")
    names = [
        t["name"] for t in sales_api.get("/api/v1/tags/search", {"q": "rtbn"}).json()["results"]
    ]
    assert names == ["乳糖不耐"]
    assert sales_api.get("/api/v1/tags/search", {"q": "niunai"}).json()["results"] == []


def test_pinyin_keys_follow_a_save_with_update_fields(world):
    milk = tag(world.prefs, "牛奶过敏")
    milk.name = "豆奶"
    milk.save(update_fields=["name"])
    assert Tag.objects.filter(pk=milk.pk, pinyin_initials="dn", pinyin_full="dounai").exists()


@pytest.mark.parametrize("via", ["user", "department"])
def test_permissions_load_in_one_query_and_match_django(
    world, sales_operator, via, django_assert_num_queries
):
    see_all = Permission.objects.get(codename="view_all_customers")
    if via == "user":
        sales_operator.user_permissions.add(see_all)
    else:
        world.sales.auth_group.permissions.add(see_all)
    fresh = User.objects.get(pk=sales_operator.pk)
    with django_assert_num_queries(1):
        policy.load_permissions(fresh)
        assert policy.global_powers(fresh) == (False, True)
    reference = User.objects.get(pk=sales_operator.pk)
    assert fresh.get_all_permissions() == reference.get_all_permissions()
    assert fresh.get_user_permissions() == reference.get_user_permissions()
    assert fresh.get_group_permissions() == reference.get_group_permissions()


def test_a_grant_of_see_all_through_the_department_widens_the_api_scope(world, sales_operator):
    foreign = world.finance_customers[0]
    api = client_for(sales_operator)
    assert api.get(f"/api/v1/customers/{foreign.pk}").status_code == 404
    world.sales.auth_group.permissions.add(Permission.objects.get(codename="view_all_customers"))
    assert api.get(f"/api/v1/customers/{foreign.pk}").status_code == 200


def test_superusers_permissions_are_not_primed(superuser, django_assert_num_queries):
    with django_assert_num_queries(0):
        policy.load_permissions(superuser)
    assert not hasattr(superuser, "_perm_cache")
