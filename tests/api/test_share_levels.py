"""Customer shares (issue 11 item 5): a view share is read-only in every door (API, admin,
import, segments), an edit share lets the grantee change the customers too. The policy decides
(``policy.editable_customers`` / ``require_customers(..., level=EDIT)``)."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from customers.models import Customer, CustomerEvent
from permissions import policy
from permissions import services as grants
from permissions.models import ShareLevel
from tagging import segments
from tagging.models import TagAssignment
from tests.api.conftest import assert_error, tag

pytestmark = pytest.mark.django_db


@pytest.fixture
def shared(world, superuser):
    """finance's customers shared with 销售部 at VIEW."""
    grants.share_customers(world.finance, with_department=world.sales, actor=superuser)
    return world.finance_customers[0]


def _event(customer):
    return {
        "customer": customer.pk,
        "kind": "purchase",
        "occurred_at": "2026-11-20T10:00:00+08:00",
        "client_event_id": f"share-{customer.pk}",
        "amount": "10.00",
    }


def test_policy_view_share_sees_but_does_not_edit(world, shared, sales_operator):
    assert policy.visible_customers(sales_operator).filter(pk=shared.pk).exists()
    assert not policy.editable_customers(sales_operator).filter(pk=shared.pk).exists()
    own = world.sales_customers[0]
    assert policy.editable_customers(sales_operator).filter(pk=own.pk).exists()
    assert policy.require_customers(sales_operator, [shared.pk]) == [shared.pk]
    with pytest.raises(policy.Denied):
        policy.require_customers(sales_operator, [own.pk, shared.pk], policy.Level.EDIT)
    # not visible at all stays a 404, before any 403
    outsider_customer = Customer.objects.create(external_userid="wmNOBODY")
    with pytest.raises(policy.NotVisible):
        policy.require_customers(
            sales_operator, [shared.pk, outsider_customer.pk], policy.Level.EDIT
        )


def test_api_view_share_reads_but_writes_are_403(world, shared, sales_api):
    assert sales_api.get(f"/api/v1/customers/{shared.pk}").status_code == 200
    high = tag(world.intent, "高").pk
    before = (TagAssignment.objects.count(), CustomerEvent.objects.count(), shared.name)
    for method, path, body in [
        ("post", f"/api/v1/customers/{shared.pk}/tags", {"add": [high]}),
        ("post", "/api/v1/tags/batch", {"customers": [shared.pk], "add": [high]}),
        ("post", "/api/v1/events", {"events": [_event(shared)]}),
        (
            "post",
            "/api/v1/customers/upsert",
            {"external_userid": shared.external_userid, "name": "x"},
        ),
    ]:
        response = getattr(sales_api, method)(path, body, format="json")
        assert_error(response, 403, "permission_denied")
    shared.refresh_from_db()
    assert (TagAssignment.objects.count(), CustomerEvent.objects.count(), shared.name) == before


def test_api_edit_share_writes(world, shared, sales_api, superuser):
    grants.share_customers(
        world.finance, with_department=world.sales, actor=superuser, level=ShareLevel.EDIT
    )
    high = tag(world.intent, "高").pk
    response = sales_api.post(f"/api/v1/customers/{shared.pk}/tags", {"add": [high]}, format="json")
    assert response.status_code == 200, response.content
    assert (
        sales_api.post("/api/v1/events", {"events": [_event(shared)]}, format="json").json()[
            "created"
        ]
        == 1
    )


def test_admin_view_share_page_is_read_only_and_bulk_tagging_refused(world, shared, sales_operator):
    from django.contrib.auth.models import Permission

    # may edit customers at all (model permission); the share decides which
    sales_operator.user_permissions.add(
        Permission.objects.get(content_type__app_label="customers", codename="change_customer")
    )
    client = Client()
    client.force_login(sales_operator)
    url = reverse("admin:customers_customer_change", args=[shared.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert b'name="_save"' not in page.content
    assert client.post(url, {"name": "改名"}).status_code == 403
    own_page = client.get(
        reverse("admin:customers_customer_change", args=[world.sales_customers[0].pk])
    )
    assert b'name="_save"' in own_page.content
    response = client.post(
        reverse("admin:customers_customer_changelist"),
        {
            "action": "add_tags",
            "_selected_action": [shared.pk, world.sales_customers[0].pk],
            "_apply": "1",
            "tags": [tag(world.intent, "高").pk],
            "reason": "",
        },
    )
    assert response.status_code == 200
    assert b"You may only view customer" in response.content
    shared.refresh_from_db()
    assert shared.name != "改名" and TagAssignment.objects.count() == 0


def test_segment_batch_tagging_leaves_read_only_customers(world, shared, sales_operator):
    high = tag(world.intent, "高")
    expression = segments.parse(
        f"@department = {world.finance.pk} OR @department = {world.sales.pk}", sales_operator
    )
    result = segments.tag_segment(expression, high, user=sales_operator)
    assert result.read_only == len(world.finance_customers)
    assert result.added == len(world.sales_customers)
    assert not TagAssignment.objects.filter(customer__department=world.finance).exists()


def test_see_all_customers_is_read_only_beyond_the_holders_own_scope(world, sales_operator):
    from tests.conftest import give_permission

    give_permission(sales_operator, "view_all_customers")
    foreign = world.finance_customers[0]
    assert policy.visible_customers(sales_operator).filter(pk=foreign.pk).exists()
    assert not policy.editable_customers(sales_operator).filter(pk=foreign.pk).exists()
    assert policy.editable_customers(sales_operator).filter(pk=world.sales_customers[0].pk).exists()


def test_tag_admins_change_every_customer(world, tag_admin):
    ids = [c.pk for c in world.finance_customers + world.sales_customers]
    assert policy.require_customers(tag_admin, ids, policy.Level.EDIT) == ids


def test_require_customers_edit_is_one_query(
    world, shared, sales_operator, django_assert_num_queries
):
    ids = [c.pk for c in world.sales_customers]
    policy.require_customers(sales_operator, ids, policy.Level.EDIT)  # permission cache
    with django_assert_num_queries(1):
        policy.require_customers(sales_operator, ids, policy.Level.EDIT)
