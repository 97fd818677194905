"""Drag-sort endpoints: POST ids in their new order; CSRF-protected; only for users who may
manage the groups."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from permissions import services as grants
from permissions.policy import Level
from tagging.models import AuditAction, AuditEntry, TagGroup
from tests.factories import TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db

GROUPS = "admin:tagging_taggroup_reorder"


@pytest.fixture
def siblings(db):
    return [TagGroupFactory(name=n) for n in ("甲", "乙", "丙")]


def orders(model, objects):
    return list(
        model.objects.filter(pk__in=[o.pk for o in objects])
        .order_by("sort_order")
        .values_list("pk", flat=True)
    )


def test_group_order_is_saved_and_audited(root_client, siblings):
    new = [siblings[2].pk, siblings[0].pk, siblings[1].pk]
    response = root_client.post(reverse(GROUPS), {"ids": new})
    assert response.status_code == 200 and response.json()["ok"]
    assert orders(TagGroup, siblings) == new
    assert AuditEntry.objects.filter(action=AuditAction.GROUP_UPDATED).exists()


def test_tag_order_is_saved(root_client, intent_group):
    tags = list(intent_group.tags.order_by("sort_order"))
    new = [t.pk for t in reversed(tags)]
    url = reverse("admin:tagging_taggroup_reorder_tags", args=[intent_group.pk])
    assert root_client.post(url, {"ids": new}).status_code == 200
    assert list(intent_group.tags.order_by("sort_order").values_list("pk", flat=True)) == new


def test_tags_of_another_group_are_refused(root_client, intent_group, source_group):
    url = reverse("admin:tagging_taggroup_reorder_tags", args=[intent_group.pk])
    response = root_client.post(url, {"ids": [source_group.tags.first().pk]})
    assert response.status_code == 400


def test_csrf_token_is_required(superuser, siblings):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    response = client.post(reverse(GROUPS), {"ids": [g.pk for g in siblings]})
    assert response.status_code == 403
    assert orders(TagGroup, siblings) == [g.pk for g in siblings]


def test_csrf_token_from_the_page_is_accepted(superuser, siblings):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    client.get(reverse("admin:tagging_taggroup_changelist"))
    token = client.cookies["csrftoken"].value
    new = [g.pk for g in reversed(siblings)]
    response = client.post(reverse(GROUPS), {"ids": new}, HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 200
    assert orders(TagGroup, siblings) == new


def test_get_is_not_allowed(root_client):
    assert root_client.get(reverse(GROUPS)).status_code == 405


@pytest.mark.parametrize("ids", [[], ["x"], [1, 1]])
def test_bad_input(root_client, siblings, ids):
    assert root_client.post(reverse(GROUPS), {"ids": ids}).status_code == 400


def test_groups_under_different_parents_are_refused(root_client, siblings):
    child = TagGroupFactory(name="子", parent=siblings[0])
    response = root_client.post(reverse(GROUPS), {"ids": [child.pk, siblings[1].pk]})
    assert response.status_code == 400


def test_operator_with_edit_level_is_denied(
    admin_client_for, superuser, departments, sales_operator, intent_group, siblings
):
    grants.grant(intent_group, actor=superuser, level=Level.EDIT, department=departments["销售部"])
    other = TagGroupFactory(name="另一组")
    grants.grant(other, actor=superuser, level=Level.EDIT, department=departments["销售部"])
    client = admin_client_for(sales_operator)
    before = orders(TagGroup, [intent_group, other])
    response = client.post(reverse(GROUPS), {"ids": [other.pk, intent_group.pk]})
    assert response.status_code == 403
    assert orders(TagGroup, [intent_group, other]) == before
    url = reverse("admin:tagging_taggroup_reorder_tags", args=[intent_group.pk])
    tags = list(intent_group.tags.values_list("pk", flat=True))
    assert client.post(url, {"ids": tags[::-1]}).status_code == 403


def test_invisible_groups_answer_404_without_names(admin_client_for, outsider, siblings):
    client = admin_client_for(outsider)
    response = client.post(reverse(GROUPS), {"ids": [g.pk for g in siblings]})
    assert response.status_code == 404
    assert "甲" not in response.content.decode()
    url = reverse("admin:tagging_taggroup_reorder_tags", args=[siblings[0].pk])
    TagFactory(group=siblings[0], name="秘密")
    response = client.post(url, {"ids": [siblings[0].tags.get().pk]})
    assert response.status_code == 404
    assert "秘密" not in response.content.decode() and "甲" not in response.content.decode()


def test_operator_with_create_level_may_reorder_tags(
    admin_client_for, superuser, departments, sales_operator, intent_group
):
    grants.grant(
        intent_group, actor=superuser, level=Level.CREATE, department=departments["销售部"]
    )
    url = reverse("admin:tagging_taggroup_reorder_tags", args=[intent_group.pk])
    new = list(intent_group.tags.order_by("-sort_order").values_list("pk", flat=True))
    assert admin_client_for(sales_operator).post(url, {"ids": new}).status_code == 200
    assert list(intent_group.tags.order_by("sort_order").values_list("pk", flat=True)) == new


def test_changelist_renders_a_tree_with_handles(root_client, siblings):
    child = TagGroupFactory(name="子组", parent=siblings[1], colour="#FA541C")
    response = root_client.get(reverse("admin:tagging_taggroup_changelist"))
    rows = [g.pk for g in response.context["cl"].result_list]
    assert rows.index(child.pk) == rows.index(siblings[1].pk) + 1
    body = response.content.decode()
    assert 'class="td-drag"' in body and 'data-depth="1"' in body
    assert "background:#FA541C" in body
    assert "tagdesk/admin.js" in body
