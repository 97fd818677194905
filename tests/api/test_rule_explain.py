"""GET /api/v1/rules/{id}/explain: tag admins, or users who may view the customer and every
group the rule touches; everything else is a 404 naming nothing."""

from __future__ import annotations

import pytest

from permissions import services as grants
from permissions.policy import Level
from rules.models import Rule
from tests.api.conftest import assert_error, client_for
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db


def make_rule(tree, tag):
    rule = Rule(name=f"rule {tag.name}", tag=tag, tree=tree)
    rule.full_clean()
    rule.save()
    return rule


@pytest.fixture
def explained_world(world):
    prefs_tag = world.prefs.tags.get(name="牛奶过敏")
    rule = make_rule({"tag": prefs_tag.pk}, world.high_value)
    return world, rule, prefs_tag


def test_tag_admin_explains_any_customer(explained_world, admin_api):
    world, rule, _prefs = explained_world
    c = world.finance_customers[0]
    response = admin_api.get(f"/api/v1/rules/{rule.pk}/explain", {"customer": c.pk})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["rule"] == rule.pk and body["customer"] == c.pk and body["matches"] is False
    assert body["steps"][0]["kind"] == "tag" and body["steps"][0]["value"] is False


def test_viewer_of_the_customer_and_groups_may_explain(explained_world, sales_api):
    world, rule, _prefs = explained_world
    c = world.sales_customers[0]
    response = sales_api.get(f"/api/v1/rules/{rule.pk}/explain", {"customer": c.pk})
    assert response.status_code == 200, response.content
    # A customer outside the scope, a missing rule: 404 alike.
    other = world.finance_customers[0]
    assert_error(
        sales_api.get(f"/api/v1/rules/{rule.pk}/explain", {"customer": other.pk}), 404, "not_found"
    )
    assert_error(
        sales_api.get("/api/v1/rules/999999/explain", {"customer": c.pk}), 404, "not_found"
    )


def test_a_rule_reading_a_hidden_group_is_not_explained(explained_world, finance_api):
    world, rule, _prefs = explained_world
    c = world.finance_customers[0]
    grants.grant(world.auto, actor=None, level=Level.VIEW, department=world.finance)
    error = assert_error(
        finance_api.get(f"/api/v1/rules/{rule.pk}/explain", {"customer": c.pk}), 404, "not_found"
    )
    assert "牛奶" not in error["message"]


def test_explain_needs_a_customer(explained_world, admin_api):
    _world, rule, _prefs = explained_world
    assert_error(admin_api.get(f"/api/v1/rules/{rule.pk}/explain"), 400, "invalid")
    assert_error(
        admin_api.get(f"/api/v1/rules/{rule.pk}/explain", {"customer": "abc"}), 404, "not_found"
    )


def test_outsider_gets_nothing(explained_world, outsider):
    _world, rule, _prefs = explained_world
    c = CustomerFactory()
    response = client_for(outsider).get(f"/api/v1/rules/{rule.pk}/explain", {"customer": c.pk})
    assert_error(response, 404, "not_found")


def test_explained_tag_names_are_shown(world, tag_admin):
    group = TagGroupFactory(name="兴趣")
    hobby = TagFactory(group=group, name="钓鱼")
    rule = make_rule({"tag": hobby.pk}, world.high_value)
    c = CustomerFactory()
    steps = (
        client_for(tag_admin)
        .get(f"/api/v1/rules/{rule.pk}/explain", {"customer": c.pk})
        .json()["steps"]
    )
    assert "钓鱼" in steps[0]["condition"]
