"""Every date and time the admin shows is Asia/Shanghai time, never UTC (issue 13 §2).

Every datetime column of the demo data is set to one instant, two days ago at 16:47 UTC, which
is 00:47 the next day in Shanghai; then every admin page is rendered. "16:47" must appear
nowhere, and the pages that show those times must show "00:47"."""

from __future__ import annotations

import datetime as dt

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import models

from tests.admin.pages import admin_pages, crawl
from tests.seeded import seeded_demo

pytestmark = pytest.mark.django_db

_seeded = seeded_demo(20, "--events-per-customer", "2")

# Rows created during the test carry "now" (CustomerEvent.created_at, say), shown in Shanghai
# time: at 08:47 UTC that reads "16:47" and would look like a UTC leftover. So the minute is one
# the clock cannot reach while the test runs (it takes well under ten minutes).
_NOW = dt.datetime.now(dt.UTC)
MINUTE = 47 if abs(_NOW.minute - 47) > 10 else 17
INSTANT = (_NOW - dt.timedelta(days=2)).replace(hour=16, minute=MINUTE, second=0, microsecond=0)
UTC_TEXT, SHANGHAI_TEXT = f"16:{MINUTE:02d}", f"00:{MINUTE:02d}"
APPEND_ONLY = {"tagging.AuditEntry", "customers.CustomerEvent"}


@pytest.fixture
def one_instant(_seeded, db, settings):
    from django.utils import translation

    settings.TIME_ZONE = "Asia/Shanghai"
    settings.LANGUAGE_CODE = "zh-hans"  # 24-hour times ("2026年3月2日 00:47")
    translation.activate("zh-hans")
    from customers.models import Customer, CustomerEvent, EventKind
    from tagging.models import AssignmentSource, AuditAction, AuditEntry

    for model in apps.get_models():
        if model._meta.label in APPEND_ONLY or not model._meta.managed:
            continue
        fields = [
            f.name
            for f in model._meta.concrete_fields
            if isinstance(f, models.DateTimeField) and not f.primary_key
        ]
        if fields and model._meta.app_label in ("customers", "tagging", "rules", "permissions"):
            model._default_manager.update(**dict.fromkeys(fields, INSTANT))
    customer = Customer.objects.order_by("pk").first()
    CustomerEvent.objects.create(
        customer=customer, kind=EventKind.PURCHASE, occurred_at=INSTANT, amount=10
    )
    entry = AuditEntry.objects.create(
        created_at=INSTANT,
        action=AuditAction.CUSTOMER_UPDATED,
        source=AssignmentSource.MANUAL,
        customer=customer,
        object_repr=str(customer),
    )
    event = CustomerEvent.objects.filter(occurred_at=INSTANT).get()
    return customer, entry, event


def test_every_admin_datetime_is_shanghai_time(one_instant, client):
    from rules.models import Rule

    customer, entry, event = one_instant
    admin = get_user_model().objects.get(username="admin")
    client.force_login(admin)
    rule = Rule.objects.filter(runs__isnull=False).order_by("pk").first()
    shown: dict[str, bool] = {}

    def utc_leftovers(html: str) -> list[str]:
        return [UTC_TEXT] if UTC_TEXT in html else []

    broken, utc = crawl(client, admin_pages(admin, custom=True), utc_leftovers)
    assert not broken and not utc, utc
    for url in (
        "/admin/rules/rule/",
        f"/admin/rules/rule/{rule.pk}/change/",
        "/admin/rules/rulerun/",
        f"/admin/customers/customer/{customer.pk}/change/",
        f"/admin/tagging/auditentry/{entry.pk}/change/",
        f"/admin/customers/customerevent/{event.pk}/change/",
        "/admin/tagging/tag/",
    ):
        shown[url] = SHANGHAI_TEXT in client.get(url).content.decode()
    assert all(shown.values()), shown
