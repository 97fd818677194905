"""The rule editor's conditions form gets its fields, operators and tags from the registry the
validator uses (rules.fields), on the add and change pages."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client
from django.urls import reverse

from rules import fields as F
from rules.admin import builder_schema

pytestmark = pytest.mark.django_db


def test_schema_mirrors_the_registry(tag_admin, intent_group):
    schema = builder_schema(tag_admin)
    assert set(schema["attributes"]) == set(F.ATTRIBUTES)
    for key, spec in schema["attributes"].items():
        assert spec["operators"] == list(F.ATTRIBUTES[key].operators)
        assert all(op in schema["operators"] for op in spec["operators"])
    assert set(schema["aggregates"]) == set(F.AGGREGATES)
    assert set(schema["events"]) == set(F.EVENT_KINDS)
    assert [t[1] for t in schema["tags"]][:1] == ["意向:高"]


def test_schema_offers_only_tags_the_user_may_view(sales_operator, intent_group):
    assert builder_schema(sales_operator)["tags"] == []


@pytest.mark.parametrize("page", ["add", "change"])
def test_pages_embed_schema_and_script(tag_admin, make_rule, auto_tag, page):
    client = Client()
    client.force_login(tag_admin)
    if page == "add":
        url = reverse("admin:rules_rule_add")
    else:
        rule = make_rule({"attribute": "total_spend", "op": "gt", "value": 1}, tag=auto_tag)
        url = reverse("admin:rules_rule_change", args=[rule.pk])
    body = client.get(url).content.decode()
    assert "tagdesk/rule_builder.js" in body
    found = re.search(r'<script id="td-rule-schema" type="application/json">(.*?)</script>', body)
    assert found and "total_spend" in json.loads(found.group(1))["attributes"]
