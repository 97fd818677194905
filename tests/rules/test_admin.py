"""The rule editor in the admin: tag admins only; validation and preview before saving; runs,
history and templates."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from rules.models import Rule, RuleRun, RunStatus
from tagging.models import AuditAction, AuditEntry, TagAssignment
from tests.rules.conftest import customer

pytestmark = pytest.mark.django_db

RICH = {"attribute": "total_spend", "op": "gt", "value": 1000}


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def client(tag_admin):
    c = Client()
    c.force_login(tag_admin)
    return c


def test_only_tag_admins(sales_operator, make_rule, auto_tag):
    rule = make_rule(RICH, tag=auto_tag)
    c = Client()
    c.force_login(sales_operator)
    assert c.get(reverse("admin:rules_rule_changelist")).status_code == 403
    assert c.get(reverse("admin:rules_rule_change", args=[rule.pk])).status_code == 403
    response = c.post(reverse("admin:rules_rule_preview"), {"tree": json.dumps(RICH)})
    assert response.status_code == 403
    assert c.post(reverse("admin:rules_rule_run", args=[rule.pk])).status_code == 403
    assert not RuleRun.objects.exists()


def test_changelist_shows_summary_and_last_run(client, make_rule, auto_tag):
    rule = make_rule(
        {
            "all": [
                {
                    "event": "purchase",
                    "agg": "sum",
                    "measure": "amount",
                    "window": {"days": 90},
                    "op": "gt",
                    "value": 2000,
                },
                {"attribute": "days_since_last_order", "op": "gte", "value": 60},
            ]
        },
        tag=auto_tag,
    )
    client.post(reverse("admin:rules_rule_run", args=[rule.pk]))
    body = client.get(reverse("admin:rules_rule_changelist")).content.decode()
    assert (
        "total amount of purchase in the last 90 days &gt; 2000 and days since last order ≥ 60 days"
        in body
    )
    assert "succeeded" in body


def test_add_valid_rule_is_saved_and_audited(client, tag_admin, auto_tag):
    response = client.post(
        reverse("admin:rules_rule_add"),
        {
            "name": "高消费",
            "tag": auto_tag.pk,
            "enabled": "on",
            "description": "",
            "tree": json.dumps(RICH),
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    rule = Rule.objects.get()
    assert rule.tree == RICH and rule.created_by == tag_admin
    assert AuditEntry.objects.filter(
        action=AuditAction.RULE_CREATED, rule_id=rule.pk, actor=tag_admin
    ).exists()


@pytest.mark.parametrize(
    ("tree", "message"),
    [
        ("{}", "no conditions"),
        ('{"all": []}', "non-empty list"),
        ("{not json", "Enter a valid JSON"),
    ],
)
def test_invalid_rule_is_refused_on_save(client, auto_tag, tree, message):
    response = client.post(
        reverse("admin:rules_rule_add"),
        {"name": "坏规则", "tag": auto_tag.pk, "enabled": "on", "tree": tree},
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Rule.objects.exists()


def test_tag_picker_offers_only_free_auto_tags(
    client, make_rule, auto_tag, auto_group, source_group
):
    from tests.factories import TagFactory

    make_rule(RICH, tag=auto_tag)
    free = TagFactory(group=auto_group, name="空闲")
    body = client.get(reverse("admin:rules_rule_add")).content.decode()
    assert f'value="{free.pk}"' in body
    assert f'value="{auto_tag.pk}"' not in body
    assert f'value="{source_group.tags.first().pk}"' not in body


def test_live_validation_and_preview(client, auto_tag):
    rich = customer(total_spend=5000, name="大客户")
    customer(total_spend=1)
    url = reverse("admin:rules_rule_preview")
    bad = client.post(
        url,
        {"tree": json.dumps({"attribute": "nope", "op": "eq", "value": 1}), "validate_only": "1"},
    ).json()
    assert bad["ok"] is False and "Unknown customer field" in bad["errors"][0]
    ok = client.post(url, {"tree": json.dumps(RICH), "validate_only": "1"}).json()
    assert ok == {"ok": True, "summary": "total spend > 1000"}
    preview = client.post(url, {"tree": json.dumps(RICH), "tag": auto_tag.pk}).json()
    assert (preview["matched"], preview["to_add"], preview["to_remove"]) == (1, 1, 0)
    assert preview["samples"]["to_add"] == [
        {
            "id": rich.pk,
            "name": "大客户",
            "external_userid": rich.external_userid,
            "phone": rich.phone,
        }
    ]
    assert not TagAssignment.objects.exists()  # a preview writes nothing
    assert client.post(url, {"tree": "{oops"}).json()["ok"] is False


def test_run_now_button_and_history(client, tag_admin, make_rule, auto_tag):
    customer(total_spend=5000)
    rule = make_rule(RICH, tag=auto_tag)
    response = client.post(reverse("admin:rules_rule_run", args=[rule.pk]))
    assert response.status_code == 302
    run = RuleRun.objects.get()
    assert (run.status, run.added, run.triggered_by) == (RunStatus.SUCCEEDED, 1, tag_admin)
    page = client.get(reverse("admin:rules_rule_change", args=[rule.pk])).content.decode()
    assert "rule-runs" in page and "run now (admin)" in page
    runs_page = client.get(reverse("admin:rules_rulerun_changelist")).content.decode()
    assert rule.name in runs_page


def test_run_now_action(client, make_rule, auto_tag):
    rule = make_rule(RICH, tag=auto_tag)
    client.post(
        reverse("admin:rules_rule_changelist"),
        {"action": "dry_run_now", "_selected_action": [rule.pk]},
    )
    assert RuleRun.objects.get().dry_run is True


def test_create_from_template(client, auto_tag):
    listing = client.get(reverse("admin:rules_rule_templates")).content.decode()
    assert "Purchase frequency" in listing
    url = reverse("admin:rules_rule_template", args=["purchase_frequency"])
    assert client.get(url).status_code == 200
    bad = client.post(
        url,
        {
            "rule-name": "高频",
            "rule-tag": auto_tag.pk,
            "rule-enabled": "on",
            "t-count": 0,
            "t-days": 30,
        },
    )
    assert bad.status_code == 200 and not Rule.objects.exists()
    response = client.post(
        url,
        {
            "rule-name": "高频",
            "rule-tag": auto_tag.pk,
            "rule-enabled": "on",
            "t-count": 2,
            "t-days": 30,
        },
    )
    assert response.status_code == 302
    rule = Rule.objects.get()
    assert rule.tree == {
        "event": "purchase",
        "agg": "count",
        "window": {"days": 30},
        "op": "gte",
        "value": 2,
    }


def test_delete_removes_the_rules_assignments(client, make_rule, auto_tag):
    customer(total_spend=5000)
    rule = make_rule(RICH, tag=auto_tag)
    client.post(reverse("admin:rules_rule_run", args=[rule.pk]))
    assert TagAssignment.objects.count() == 1
    response = client.post(reverse("admin:rules_rule_delete", args=[rule.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not TagAssignment.objects.exists() and not Rule.objects.exists()


def test_auto_tag_page_shows_its_rule(superuser, make_rule, auto_tag, auto_group):
    from tests.factories import TagFactory

    rule = make_rule(RICH, tag=auto_tag, name="高消费规则")
    orphan = TagFactory(group=auto_group, name="无规则")
    c = Client()
    c.force_login(superuser)
    page = c.get(reverse("admin:tagging_tag_change", args=[auto_tag.pk])).content.decode()
    assert reverse("admin:rules_rule_change", args=[rule.pk]) in page
    assert "高消费规则" in page and "total spend &gt; 1000" in page
    page = c.get(reverse("admin:tagging_tag_change", args=[orphan.pk])).content.decode()
    assert "No rule yet" in page
