"""Auto tags are never added or removed by hand, through any door: the service, the admin bulk
actions, import and the API. In each case nothing changes, even for a superuser."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from rules.services import apply_rule
from tagging import services as tagging
from tagging.errors import RuleTagNotAssignable
from tagging.models import AuditEntry, TagAssignment
from tests.factories import TagFactory
from tests.rules.conftest import NOW, customer

pytestmark = pytest.mark.django_db

RICH = {"attribute": "total_spend", "op": "gt", "value": 1000}


@pytest.fixture
def world(make_rule, auto_tag, auto_group):
    """A rule-made assignment (``held``) and a customer without it (``bare``)."""
    held, bare = customer(total_spend=5000), customer(total_spend=0, external_userid="wmBARE")
    rule = make_rule(RICH, tag=auto_tag)
    apply_rule(rule, now=NOW)
    other_rule = make_rule(
        {"attribute": "total_spend", "op": "lt", "value": 1}, tag=TagFactory(group=auto_group)
    )
    return {"held": held, "bare": bare, "rule": rule, "other_rule": other_rule, "tag": auto_tag}


def snapshot():
    return (
        sorted(TagAssignment.objects.values_list("customer_id", "tag_id", "source")),
        AuditEntry.objects.filter(action__startswith="assignment.").count(),
    )


@pytest.mark.parametrize("source", ["manual", "import", "api", "sync", "merge"])
def test_service_refuses_every_other_source(world, superuser, source):
    before = snapshot()
    with pytest.raises(RuleTagNotAssignable):
        tagging.assign_tags([world["bare"]], [world["tag"]], actor=superuser, source=source)
    with pytest.raises(RuleTagNotAssignable):
        tagging.unassign_tags([world["held"]], [world["tag"]], actor=superuser, source=source)
    assert snapshot() == before


def test_service_refuses_a_rule_that_does_not_own_the_tag(world):
    before = snapshot()
    for call in (tagging.assign_tags, tagging.unassign_tags):
        with pytest.raises(RuleTagNotAssignable, match="does not own"):
            call(
                [world["held"], world["bare"]],
                [world["tag"]],
                actor=None,
                source="rule",
                rule=world["other_rule"],
            )
    assert snapshot() == before


@pytest.mark.parametrize("action", ["add_tags", "remove_tags"])
def test_admin_bulk_actions_refuse(world, superuser, action, settings):
    settings.LANGUAGE_CODE = "en"
    client = Client()
    client.force_login(superuser)
    before = snapshot()
    response = client.post(
        reverse("admin:customers_customer_changelist"),
        {
            "action": action,
            "_selected_action": [world["held"].pk, world["bare"].pk],
            "_apply": "1",
            "tags": [world["tag"].pk],
            "reason": "by hand",
        },
        follow=True,
    )
    assert response.status_code == 200
    assert snapshot() == before


def test_import_refuses(world, superuser):
    from customers.importing import import_file

    tag = world["tag"]
    data = f"external_userid,phone,name,tags\nwmBARE,,客户,{tag.group.name}:{tag.name}\n".encode()
    before = snapshot()
    report = import_file(data, user=superuser, filename="tags.csv")
    assert [e.code for e in report.errors] == ["rule_tag_not_assignable"]
    assert snapshot() == before


@pytest.fixture
def api(superuser):
    client = APIClient()
    client.force_authenticate(superuser)
    return client


def test_api_mark_and_unmark_refuse(world, api):
    before = snapshot()
    for customer_obj, body in (
        (world["bare"], {"add": [world["tag"].pk]}),
        (world["held"], {"remove": [world["tag"].pk]}),
    ):
        response = api.post(f"/api/v1/customers/{customer_obj.pk}/tags", body, format="json")
        assert response.status_code in (400, 403, 409, 422), response.content
        assert response.json()["error"]["code"] == "rule_tag_not_assignable"
    assert snapshot() == before


def test_api_batch_refuses(world, api):
    before = snapshot()
    for key, target in (("add", world["bare"]), ("remove", world["held"])):
        response = api.post(
            "/api/v1/tags/batch",
            {"customers": [target.pk], key: [world["tag"].pk]},
            format="json",
        )
        assert response.status_code in (400, 403, 409, 422), response.content
        assert response.json()["error"]["code"] == "rule_tag_not_assignable"
    assert snapshot() == before
