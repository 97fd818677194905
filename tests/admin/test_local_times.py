"""Every date and time the admin shows is Asia/Shanghai time, never UTC (issue 13 §2).

Every datetime column of the demo data is set to one instant, two days ago at 16:MM UTC, which
is 00:MM the next day in Shanghai; then every admin page is rendered. "16:MM" must appear
nowhere, and the pages that show those times must show "00:MM" (MM: see ``pick_minute``)."""

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

APPEND_ONLY = {"tagging.AuditEntry", "customers.CustomerEvent"}


def pick_minute() -> int:
    """A minute M such that no time on an admin page can read "16:M" except a leftover UTC one.

    Append-only rows keep their seeded times (relative to now, one a minute), and rows created
    during the test carry "now": at 08:47 UTC an event reads "16:47" in Shanghai and would look
    like a UTC leftover (the stop-17 CI failure, and again once the seeded times hit 16:47). So M
    is one that neither the append-only rows nor the clock during the next ten minutes reach."""
    from django.utils import timezone

    from customers.models import CustomerEvent
    from tagging.models import AuditEntry

    shanghai = dt.timezone(dt.timedelta(hours=8))
    now = timezone.now()
    taken = {now + dt.timedelta(minutes=m) for m in range(-1, 11)}
    for model, fields in (
        (CustomerEvent, ("occurred_at", "created_at")),
        (AuditEntry, ("created_at",)),
    ):
        for row in model.objects.values_list(*fields):
            taken.update(value for value in row if value is not None)
    busy = {t.astimezone(shanghai).minute for t in taken if t.astimezone(shanghai).hour == 16}
    return next(m for m in (47, *range(60)) if m not in busy)


@pytest.fixture
def one_instant(_seeded, db, settings):
    from django.utils import timezone, translation

    settings.TIME_ZONE = "Asia/Shanghai"
    settings.LANGUAGE_CODE = "zh-hans"  # 24-hour times ("2026年3月2日 00:47")
    translation.activate("zh-hans")
    from customers.models import Customer, CustomerEvent, EventKind
    from tagging.models import AssignmentSource, AuditAction, AuditEntry

    minute = pick_minute()
    INSTANT = (timezone.now() - dt.timedelta(days=2)).replace(
        hour=16, minute=minute, second=0, microsecond=0, tzinfo=dt.UTC
    )

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
    return customer, entry, event, f"16:{minute:02d}", f"00:{minute:02d}"


def test_every_admin_datetime_is_shanghai_time(one_instant, client):
    from rules.models import Rule

    customer, entry, event, UTC_TEXT, SHANGHAI_TEXT = one_instant
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
