"""``expires_at`` on POST /api/v1/customers/{id}/tags and /api/v1/tags/batch: accepted when in
the future and within TAGDESK_MAX_TAG_EXPIRY_DAYS, refused otherwise, never ignored."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from tagging.models import AuditEntry, TagAssignment
from tests.api.conftest import assert_error, tag


def _iso(delta: timedelta) -> str:
    return (timezone.now() + delta).isoformat()


@pytest.mark.django_db
def test_mark_with_expiry_stores_it_and_shows_it(sales_api, world):
    customer = world.sales_customers[0]
    promo = tag(world.prefs, "牛奶过敏")
    response = sales_api.post(
        f"/api/v1/customers/{customer.pk}/tags",
        {"add": [promo.pk], "expires_at": _iso(timedelta(days=30))},
        format="json",
    )
    assert response.status_code == 200, response.content
    assignment = TagAssignment.objects.get(customer=customer, tag=promo)
    assert assignment.expires_at is not None
    assert timedelta(days=29) < assignment.expires_at - timezone.now() <= timedelta(days=30)
    shown = {t["id"]: t["expires_at"] for t in response.json()["tags"]}
    assert shown[promo.pk] is not None
    audit = AuditEntry.objects.get(customer=customer, tag=promo)
    assert audit.after["expires_at"]


@pytest.mark.django_db
@pytest.mark.parametrize("delta", [timedelta(seconds=-1), timedelta(days=-3), timedelta(0)])
def test_expiry_not_in_the_future_is_a_400_and_writes_nothing(sales_api, world, delta):
    customer = world.sales_customers[0]
    response = sales_api.post(
        f"/api/v1/customers/{customer.pk}/tags",
        {"add": [tag(world.prefs, "牛奶过敏").pk], "expires_at": _iso(delta)},
        format="json",
    )
    error = assert_error(response, 400, "invalid")
    assert "not in the future" in error["message"]
    assert error["message"].startswith("expires_at:")
    assert not TagAssignment.objects.exists()


@pytest.mark.django_db
def test_expiry_bound_follows_the_setting(sales_api, world, settings):
    settings.TAGDESK_MAX_TAG_EXPIRY_DAYS = 10
    customer = world.sales_customers[0]
    url = f"/api/v1/customers/{customer.pk}/tags"
    milk = tag(world.prefs, "牛奶过敏")
    too_far = sales_api.post(
        url, {"add": [milk.pk], "expires_at": _iso(timedelta(days=10, minutes=1))}, format="json"
    )
    assert "at most 10 days ahead" in assert_error(too_far, 400, "invalid")["message"]
    just_inside = sales_api.post(
        url, {"add": [milk.pk], "expires_at": _iso(timedelta(days=9, hours=23))}, format="json"
    )
    assert just_inside.status_code == 200, just_inside.content


@pytest.mark.django_db
def test_bad_expiry_text_is_a_400(sales_api, world):
    customer = world.sales_customers[0]
    response = sales_api.post(
        f"/api/v1/customers/{customer.pk}/tags",
        {"add": [tag(world.prefs, "牛奶过敏").pk], "expires_at": "next tuesday"},
        format="json",
    )
    assert assert_error(response, 400, "invalid")["message"].startswith("expires_at:")


@pytest.mark.django_db
def test_expiry_with_only_removals_is_refused(sales_api, world):
    customer = world.sales_customers[0]
    response = sales_api.post(
        f"/api/v1/customers/{customer.pk}/tags",
        {"remove": [tag(world.prefs, "牛奶过敏").pk], "expires_at": _iso(timedelta(days=1))},
        format="json",
    )
    assert "applies to tags added" in assert_error(response, 400, "invalid")["message"]


@pytest.mark.django_db
def test_batch_applies_the_expiry_to_every_customer(sales_api, world):
    ids = [c.pk for c in world.sales_customers]
    milk = tag(world.prefs, "牛奶过敏")
    response = sales_api.post(
        "/api/v1/tags/batch",
        {"customers": ids, "add": [milk.pk], "expires_at": _iso(timedelta(days=7))},
        format="json",
    )
    assert response.status_code == 200, response.content
    rows = TagAssignment.objects.filter(customer_id__in=ids, tag=milk)
    assert rows.count() == 3 and not rows.filter(expires_at__isnull=True).exists()
    past = sales_api.post(
        "/api/v1/tags/batch",
        {"customers": ids, "add": [milk.pk], "expires_at": _iso(-timedelta(days=1))},
        format="json",
    )
    assert_error(past, 400, "invalid")


@pytest.mark.django_db
def test_expired_assignments_leave_nightly(sales_api, world):
    from tagging.services import remove_expired_assignments

    customer = world.sales_customers[0]
    milk = tag(world.prefs, "牛奶过敏")
    sales_api.post(
        f"/api/v1/customers/{customer.pk}/tags",
        {"add": [milk.pk], "expires_at": _iso(timedelta(hours=1))},
        format="json",
    )
    assert remove_expired_assignments(timezone.now() + timedelta(minutes=59)) == 0
    assert remove_expired_assignments(timezone.now() + timedelta(hours=2)) == 1
    assert not TagAssignment.objects.filter(customer=customer).exists()
