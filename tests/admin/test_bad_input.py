"""No 5xx on bad input in the admin (issue 11 §8): a form error or a 4xx page, never a 500."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import Customer, ImportJob
from tagging.models import TagKind
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db

DEEP = "[" * 1000 + "]" * 1000


def _client(user) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.fixture
def root(superuser):
    return _client(superuser)


@pytest.fixture
def admin_client(tag_admin):
    return _client(tag_admin)


def _customer_form(customer, **changes):
    data = {
        "name": customer.name,
        "external_userid": customer.external_userid or "",
        "phone": "",
        "company": "",
        "remark": "",
        "owner": "",
        "department": "",
        "source": "",
        "attributes": "{}",
        "added_at_0": "2026-01-01",
        "added_at_1": "10:00:00",
        "followers-TOTAL_FORMS": "0",
        "followers-INITIAL_FORMS": "0",
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("attributes", "message"),
    [
        ('{"score": 9.9e999999}', "out of range"),
        ('{"score": NaN}', "NaN is not a number"),
        ('{"note": "a\\u0000b"}', "NUL"),
        ('{"note": "\\ud800"}', "NUL"),
        ("[" * 1000 + "]" * 1000, "nested"),
    ],
)
def test_customer_form_refuses_unstorable_attributes(root, attributes, message):
    customer = CustomerFactory(name="张三")
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    response = root.post(url, _customer_form(customer, attributes=attributes))
    assert response.status_code == 200, response.content[:500]
    assert message in response.content.decode()
    customer.refresh_from_db()
    assert customer.attributes == {}


@pytest.mark.parametrize(
    ("day", "time"), [("0001-01-01", "00:00:00"), ("9999-12-31", "23:59:59"), ("abc", "x")]
)
def test_customer_form_far_away_dates(root, day, time):
    customer = CustomerFactory(name="李四")
    url = reverse("admin:customers_customer_change", args=[customer.pk])
    response = root.post(url, _customer_form(customer, added_at_0=day, added_at_1=time))
    assert response.status_code in (200, 302), response.content[:500]
    assert root.get(url).status_code == 200
    assert root.get(reverse("admin:customers_customer_changelist")).status_code == 200


@pytest.mark.parametrize(
    "query",
    [
        {"q": "\x00"},
        {"q": "a\x00b"},
        {"p": str(10**20)},
        {"p": "-1"},
        {"o": "999"},
        {"q": "x" * 5000},
    ],
)
def test_changelists_with_absurd_queries(root, query):
    from django.contrib import admin

    CustomerFactory()
    for model in admin.site._registry:
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"
        response = root.get(reverse(name), query)
        assert response.status_code < 500, (name, query, response.status_code)


@pytest.mark.parametrize("text", ["NOT " * 1000 + "x", "(" * 1000, "(" * 1000 + "x" + ")" * 1000])
def test_segment_form_deep_text(root, text):
    response = root.post(reverse("admin:tagging_segment_add"), {"name": "deep", "text": text})
    assert response.status_code == 200
    assert "nested too deeply" in response.content.decode()


@pytest.fixture
def auto_tag(db):
    return TagFactory(group=TagGroupFactory(name="自动", kind=TagKind.AUTO), name="高价值")


BAD_TREES = [
    (
        {
            "event": "purchase",
            "agg": "count",
            "window": {"from": "2026-01-01", "to": "9999-12-31"},
            "op": "gte",
            "value": 1,
        },
        "Window dates lie between 1900-01-01 and 2199-12-31.",
    ),
    (
        {"attribute": "days_since_added", "op": "gte", "value": 10**12},
        "Days are a whole number from 0 to 36,500.",
    ),
    (
        {"event": "purchase", "agg": "days_since_last", "op": "between", "value": [1, 10**9]},
        "Days are a whole number from 0 to 36,500.",
    ),
    (
        {"rfm": "recency", "op": "gte", "value": 3, "thresholds": [1, 2, 3, 10**9]},
        "Recency thresholds are at most 36,500 days.",
    ),
]


@pytest.mark.parametrize(("tree", "message"), BAD_TREES)
def test_rule_preview_and_form_refuse_overflowing_values(admin_client, auto_tag, tree, message):
    preview = admin_client.post(
        reverse("admin:rules_rule_preview"), {"tree": json.dumps(tree), "tag": auto_tag.pk}
    )
    assert preview.status_code == 200
    assert preview.json()["ok"] is False
    assert any(message in m for m in preview.json()["errors"]), preview.json()
    save = admin_client.post(
        reverse("admin:rules_rule_add"),
        {
            "name": "r",
            "tag": auto_tag.pk,
            "enabled": "on",
            "description": "",
            "tree": json.dumps(tree),
        },
    )
    assert save.status_code == 200
    assert message in save.content.decode()


@pytest.mark.parametrize("tree", [DEEP, '{"a": 9.9e999999}', '"\\u0000"'])
def test_rule_preview_and_form_with_unparsable_tree(admin_client, auto_tag, tree):
    preview = admin_client.post(reverse("admin:rules_rule_preview"), {"tree": tree})
    assert preview.status_code == 200
    assert preview.json()["ok"] is False
    save = admin_client.post(
        reverse("admin:rules_rule_add"),
        {"name": "r", "tag": auto_tag.pk, "enabled": "on", "description": "", "tree": tree},
    )
    assert save.status_code == 200
    assert "Enter a valid JSON" in save.content.decode()


@pytest.mark.parametrize("job", ["abc", "", "-1", str(10**20), "1.5"])
def test_import_confirm_with_a_bad_job_id(root, job):
    response = root.post(reverse("admin:customers_customer_process_import"), {"job": job})
    assert response.status_code == 404
    assert ImportJob.objects.count() == 0


def test_import_job_page_of_someone_elses_or_missing_job(root):
    response = root.get(reverse("admin:customers_customer_import_job", args=[10**18]))
    assert response.status_code == 404
    assert Customer.objects.count() == 0
