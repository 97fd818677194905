"""Creating a rule from a template: the auto tag may be created in the same step when none is
free; the description says what the rule does with the values entered; numbers stay numbers."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from rules.models import Rule
from rules.templates import TEMPLATES
from tagging.models import AuditAction, AuditEntry, Tag

pytestmark = pytest.mark.django_db

URL = "admin:rules_rule_template"


@pytest.fixture
def client(tag_admin):
    c = Client()
    c.force_login(tag_admin)
    return c


def post(client, key, **data):
    return client.post(reverse(URL, args=[key]), data)


def test_no_free_tag_offers_a_new_one(client, make_rule, auto_tag, auto_group):
    make_rule({"attribute": "total_spend", "op": "gt", "value": 1}, tag=auto_tag)
    page = client.get(reverse(URL, args=["customer_value"])).content.decode()
    assert "Every auto tag already has a rule" in page
    assert 'value="VIP-钻石级"' in page  # the template's suggested tag name
    response = post(
        client,
        "customer_value",
        **{
            "rule-name": "钻石",
            "rule-new_tag_name": "VIP-钻石级",
            "rule-new_tag_group": auto_group.pk,
            "rule-enabled": "on",
            "t-amount": "20000",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    tag = Tag.objects.get(name="VIP-钻石级", group=auto_group)
    rule = Rule.objects.get(name="钻石")
    assert rule.tag == tag
    assert AuditEntry.objects.filter(action=AuditAction.TAG_CREATED, tag=tag).exists()


def test_numbers_are_stored_as_numbers_and_described(client, auto_tag):
    post(
        client,
        "customer_value",
        **{"rule-name": "钻石", "rule-tag": auto_tag.pk, "rule-enabled": "on", "t-amount": "25000"},
    )
    rule = Rule.objects.get()
    assert rule.tree == {"attribute": "total_spend", "op": "gt", "value": 25000}
    assert "25000" in rule.description and "e.g." not in rule.description


def _numeric_strings(node) -> list:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k == "value" and isinstance(v, str)]
        found = [v for v in found if v.replace(".", "").isdigit()]
        return found + [x for v in node.values() for x in _numeric_strings(v)]
    if isinstance(node, list):
        return [x for item in node for x in _numeric_strings(item)]
    return []


def test_fractions_are_numbers_too():
    for key, template in TEMPLATES.items():
        form = template(prefix="t")
        data = {f"t-{name}": field.initial for name, field in form.fields.items()}
        bound = template({k: v for k, v in data.items() if v is not None}, prefix="t")
        if not bound.is_valid():
            continue  # templates that need a tag choice

        assert _numeric_strings(bound.tree()) == [], key


def test_both_or_neither_tag_is_an_error(client, auto_tag, auto_group):
    both = post(
        client,
        "customer_value",
        **{
            "rule-name": "x",
            "rule-tag": auto_tag.pk,
            "rule-new_tag_name": "新标签",
            "rule-new_tag_group": auto_group.pk,
            "t-amount": "1",
        },
    )
    assert "not both" in both.content.decode()
    neither = post(client, "customer_value", **{"rule-name": "x", "t-amount": "1"})
    assert "Choose a free auto tag or name a new one." in neither.content.decode()
    assert not Rule.objects.exists()


def test_a_refused_new_tag_writes_nothing(client, auto_tag, auto_group):
    response = post(
        client,
        "customer_value",
        **{
            "rule-name": "x",
            "rule-new_tag_name": auto_tag.name,  # duplicate name in the group
            "rule-new_tag_group": auto_group.pk,
            "t-amount": "1",
        },
    )
    assert response.status_code == 200
    assert not Rule.objects.exists()
    assert Tag.objects.filter(group=auto_group).count() == 1
