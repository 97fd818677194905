"""Rules for tag admins: list, dry run (writes nothing), run (recorded)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from customers.models import Customer
from rules.models import Rule, RuleRun
from rules.services import save_rule
from tagging.models import TagAssignment
from tests.api.conftest import assert_error


@pytest.fixture
def rule(world, tag_admin):
    big, small = world.sales_customers[:2]
    Customer.objects.filter(pk=big.pk).update(total_spend=Decimal("5000"))
    Customer.objects.filter(pk=small.pk).update(total_spend=Decimal("10"))
    return save_rule(
        Rule(
            name="高消费",
            tag=world.high_value,
            tree={"attribute": "total_spend", "op": "gt", "value": 1000},
        ),
        actor=tag_admin,
    )


def test_list_and_detail(admin_api, rule):
    body = admin_api.get("/api/v1/rules").json()
    assert [r["name"] for r in body["results"]] == ["高消费"]
    assert body["results"][0]["tag_name"] == "高价值"
    assert admin_api.get(f"/api/v1/rules/{rule.pk}").json()["tree"]["attribute"] == "total_spend"


def test_dry_run_writes_nothing(admin_api, rule, world):
    body = admin_api.post(f"/api/v1/rules/{rule.pk}/dry-run").json()
    assert body["matched"] == 1 and body["added"] == 1 and body["dry_run"] is True
    assert [c["id"] for c in body["samples"]["to_add"]] == [world.sales_customers[0].pk]
    [because] = body["samples"]["to_add"][0]["because"]  # the leaf behind the gain
    assert because["condition"] == "total spend > 1000" and because["value"] == "5000"
    assert not TagAssignment.objects.exists()
    assert not RuleRun.objects.exists()


def test_run_applies_and_records(admin_api, rule, world, tag_admin):
    body = admin_api.post(f"/api/v1/rules/{rule.pk}/run").json()
    assert body["status"] == "succeeded" and body["added"] == 1 and body["trigger"] == "api"
    assignment = TagAssignment.objects.get()
    assert assignment.customer_id == world.sales_customers[0].pk and assignment.rule == rule
    assert RuleRun.objects.get().triggered_by == tag_admin


def test_invalid_rule_is_a_400_and_changes_nothing(admin_api, rule):
    Rule.objects.filter(pk=rule.pk).update(tree={"attribute": "gone", "op": "eq", "value": 1})
    assert_error(admin_api.post(f"/api/v1/rules/{rule.pk}/run"), 400, "rule_invalid")
    assert_error(admin_api.post(f"/api/v1/rules/{rule.pk}/dry-run"), 400, "rule_invalid")
    assert not TagAssignment.objects.exists()


def test_unknown_rule_is_a_404(admin_api, world):
    assert_error(admin_api.post("/api/v1/rules/999/run"), 404, "not_found")
