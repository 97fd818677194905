"""A user never learns the name of a group they cannot view: not in lists, pickers, filters,
forms, error messages or the permission pages (docs/permissions.md#never-an-existence-oracle)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from permissions import policy, services
from permissions.policy import Level
from tagging import services as tagging_services
from tagging.models import AssignmentSource, TagStatus
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

SECRET = "促销活动"


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def scene(granted, departments, promo_group, superuser, finance_operator):
    customer = CustomerFactory(name="财务客户", department=departments["财务部"])
    # The customer carries a promo tag: its chip must not show to 财务部.
    tagging_services.assign_tags(
        [customer], [promo_group.tags.first()], actor=superuser, source=AssignmentSource.MANUAL
    )
    tagging_services.create_tag(promo_group, "待定", actor=superuser, status=TagStatus.PENDING)
    return {"customer": customer, "promo_tag": promo_group.tags.first()}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("persona", ["finance_operator", "sales_operator", "outsider"])
def test_pages_never_name_an_invisible_group(request, scene, promo_group, persona):
    user = request.getfixturevalue(persona)
    client = client_for(user)
    customer = scene["customer"]
    pages = [
        reverse("admin:index"),
        reverse("admin:tagging_taggroup_changelist"),
        reverse("admin:tagging_tag_changelist"),
        reverse("admin:tagging_tag_changelist") + f"?group={promo_group.pk}",
        reverse("admin:tagging_tag_add"),
        reverse("admin:tagging_auditentry_changelist"),
        reverse("admin:tagging_taggroup_change", args=[promo_group.pk]),
        reverse("admin:tagging_tag_change", args=[scene["promo_tag"].pk]),
        reverse("admin:customers_customer_changelist"),
        reverse("admin:customers_customer_changelist") + f"?tag={scene['promo_tag'].pk}",
        reverse("admin:customers_customer_change", args=[customer.pk]),
        reverse("admin:permissions_tagproposal_changelist"),
        reverse("admin:permissions_group_matrix", args=[promo_group.pk]),
    ]
    for url in pages:
        response = client.get(url, follow=True)
        assert SECRET not in response.content.decode(), url
    # Searching by the name finds nothing (the search box echoes only what the user typed).
    for name in ("admin:tagging_taggroup_changelist", "admin:tagging_tag_changelist"):
        found = client.get(reverse(name) + f"?q={SECRET}")
        assert found.context["cl"].result_count == 0, name
    # The bulk-tagging picker (an action's intermediate page).
    picker = client.post(
        reverse("admin:customers_customer_changelist"),
        {"action": "add_tags", "_selected_action": [customer.pk]},
        follow=True,
    )
    assert SECRET not in picker.content.decode()
    # Posting the invisible tag's id: refused without naming it.
    posted = client.post(
        reverse("admin:customers_customer_changelist"),
        {
            "action": "add_tags",
            "_selected_action": [customer.pk],
            "_apply": "1",
            "tags": [scene["promo_tag"].pk],
        },
        follow=True,
    )
    assert SECRET not in posted.content.decode()


def test_policy_errors_never_name_an_invisible_group(scene, finance_operator, promo_group):
    with pytest.raises(policy.NotVisible) as caught:
        policy.require_tags(finance_operator, [scene["promo_tag"].pk], Level.VIEW)
    assert SECRET not in str(caught.value)
    assert caught.value.code == "not_found"
    with pytest.raises(policy.NotVisible) as caught:
        services.propose_tag(promo_group, "新的", actor=finance_operator)
    assert SECRET not in str(caught.value)


def test_matrix_page_is_404_for_invisible_and_403_for_visible_non_admin(
    scene, finance_operator, promo_group, payment_group
):
    client = client_for(finance_operator)
    assert (
        client.get(reverse("admin:permissions_group_matrix", args=[promo_group.pk])).status_code
        == 404
    )
    assert (
        client.get(reverse("admin:permissions_group_matrix", args=[payment_group.pk])).status_code
        == 403
    )
    assert client.get(reverse("admin:permissions_group_matrix", args=[999999])).status_code == 404


def test_grant_pages_are_for_tag_admins_only(scene, finance_operator):
    client = client_for(finance_operator)
    for name in (
        "admin:permissions_departmentgrant_changelist",
        "admin:permissions_employeegrant_changelist",
        "admin:permissions_customershare_changelist",
        "admin:permissions_permissiontemplate_changelist",
    ):
        assert client.get(reverse(name)).status_code == 403, name
