"""Every admin page of the tagging and customer admins answers 200 to a superuser."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tagging.models import AuditEntry
from tests.admin.conftest import assign
from tests.conftest import tag
from tests.factories import EventFactory, FollowerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def objects(superuser, customers, intent_group, source_group):
    assign(customers[:2], [tag(intent_group, "高"), tag(source_group, "官网")], superuser)
    FollowerFactory(customer=customers[0], employee=superuser)
    event = EventFactory(customer=customers[0], amount=12)
    return {
        "taggroup": intent_group,
        "tag": tag(intent_group, "高"),
        "auditentry": AuditEntry.objects.first(),
        "customer": customers[0],
        "customerevent": event,
    }


PAGES = [
    ("tagging", "taggroup", True),
    ("tagging", "tag", True),
    ("tagging", "auditentry", False),
    ("customers", "customer", True),
    ("customers", "customerevent", False),
]


@pytest.mark.parametrize(("app", "model", "addable"), PAGES)
def test_changelist_add_and_change_pages(root_client, objects, app, model, addable):
    assert root_client.get(reverse(f"admin:{app}_{model}_changelist")).status_code == 200
    obj = objects[model]
    assert root_client.get(reverse(f"admin:{app}_{model}_change", args=[obj.pk])).status_code == 200
    add = root_client.get(reverse(f"admin:{app}_{model}_add"))
    assert add.status_code == (200 if addable else 403)


def test_index_and_app_pages(root_client, objects):
    assert root_client.get(reverse("admin:index")).status_code == 200
    for app in ("tagging", "customers"):
        assert root_client.get(reverse("admin:app_list", args=[app])).status_code == 200


def test_delete_confirmation_pages(root_client, objects):
    for model in ("taggroup", "tag"):
        url = reverse(f"admin:tagging_{model}_delete", args=[objects[model].pk])
        assert root_client.get(url).status_code == 200
    # Customers are not deleted from the admin: their assignments' removal would go unaudited.
    url = reverse("admin:customers_customer_delete", args=[objects["customer"].pk])
    assert root_client.post(url, {"post": "yes"}).status_code == 403


def test_custom_views(root_client, objects):
    changelist = reverse("admin:customers_customer_changelist")
    customer = objects["customer"]
    for action in ("add_tags", "remove_tags"):
        response = root_client.post(
            changelist, {"action": action, "_selected_action": [customer.pk]}
        )
        assert response.status_code == 200
        assert b'name="_apply"' in response.content
    response = root_client.post(
        reverse("admin:tagging_tag_changelist"),
        {"action": "merge_tags", "_selected_action": [objects["tag"].pk]},
    )
    assert response.status_code == 200
    assert b'name="_preview"' in response.content


def test_changelists_with_filters_and_search(root_client, objects):
    changelist = reverse("admin:customers_customer_changelist")
    assert root_client.get(changelist, {"tag": objects["tag"].pk}).status_code == 200
    assert root_client.get(changelist, {"q": "138"}).status_code == 200
    tags = reverse("admin:tagging_tag_changelist")
    assert root_client.get(tags, {"status": "archived"}).status_code == 200
    assert root_client.get(tags, {"group": objects["taggroup"].pk}).status_code == 200
    audit = reverse("admin:tagging_auditentry_changelist")
    assert root_client.get(audit, {"action": "assignment.added", "q": "高"}).status_code == 200
    assert (
        root_client.get(audit, {"customer__id__exact": objects["customer"].pk}).status_code == 200
    )
    groups = reverse("admin:tagging_taggroup_changelist")
    assert root_client.get(groups, {"o": "2"}).status_code == 200


def test_apply_permission_template_action_links_to_the_template_page(
    root_client, objects, source_group
):
    from permissions.models import PermissionTemplate

    template = PermissionTemplate.objects.create(name="门店标准权限")
    groups = [objects["taggroup"].pk, source_group.pk]
    response = root_client.post(
        reverse("admin:tagging_taggroup_changelist"),
        {"action": "apply_permission_template", "_selected_action": groups},
    )
    assert response.status_code == 200
    url = reverse("admin:permissions_template_apply", args=[template.pk])
    ids = ",".join(str(pk) for pk in sorted(groups))
    assert f"{url}?groups={ids}" in response.content.decode()


def test_group_change_page_links_the_permission_matrix(root_client, objects):
    group = objects["taggroup"]
    response = root_client.get(reverse("admin:tagging_taggroup_change", args=[group.pk]))
    assert reverse("admin:permissions_group_matrix", args=[group.pk]) in response.content.decode()
