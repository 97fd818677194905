from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from customers.models import Customer, CustomerEvent, EventKind
from customers.services import CustomerError, record_events, search_customers, upsert_customer
from tagging import services as tagging
from tagging.models import AuditAction, AuditEntry, TagAssignment
from tests.conftest import tag
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


def test_upsert_creates_then_updates_by_external_userid(superuser):
    customer, created = upsert_customer(
        external_userid="wmA1", phone="138 0013 8000", name="张三", actor=superuser
    )
    assert created and customer.phone == "+8613800138000"
    same, created = upsert_customer(external_userid="wmA1", name="张三丰", actor=superuser)
    assert not created and same.pk == customer.pk and same.name == "张三丰"
    assert list(AuditEntry.objects.values_list("action", flat=True).order_by("id")) == [
        AuditAction.CUSTOMER_CREATED,
        AuditAction.CUSTOMER_UPDATED,
    ]


def test_phone_only_customer_gains_external_userid_and_keeps_tags(superuser, source_group):
    customer, _ = upsert_customer(phone="+86 138-0013-8001", actor=superuser)
    tagging.assign_tags([customer], [tag(source_group, "官网")], actor=superuser, source="import")
    again, created = upsert_customer(
        external_userid="wmLATE", phone="8613800138001", actor=superuser
    )
    assert not created and again.pk == customer.pk and again.external_userid == "wmLATE"
    assert TagAssignment.objects.filter(customer=customer).count() == 1


def test_phone_of_another_customer_is_identifier_conflict(superuser):
    upsert_customer(external_userid="wmOWNER", phone="13800138002", actor=superuser)
    with pytest.raises(CustomerError) as info:
        upsert_customer(external_userid="wmOTHER", phone="13800138002", actor=superuser)
    assert info.value.code == "identifier_conflict"
    assert not Customer.objects.filter(external_userid="wmOTHER").exists()


@pytest.mark.parametrize(
    "kwargs, code",
    [
        ({}, "missing_identifier"),
        ({"phone": "010-12345678"}, "invalid_phone"),
        ({"external_userid": "含中文"}, "invalid_external_userid"),
        ({"external_userid": "wm ok"}, "invalid_external_userid"),
    ],
)
def test_upsert_bad_input(kwargs, code):
    with pytest.raises(CustomerError) as info:
        upsert_customer(**kwargs)
    assert info.value.code == code
    assert not Customer.objects.exists()


def test_external_userids_are_case_sensitive():
    a, _ = upsert_customer(external_userid="wmCase")
    b, created = upsert_customer(external_userid="wmcase")
    assert created and a.pk != b.pk


def test_record_events_is_idempotent_and_maintains_aggregates():
    customer = CustomerFactory()
    now = timezone.now()
    events = [
        {
            "customer_id": customer.pk,
            "kind": EventKind.PURCHASE,
            "occurred_at": now - timedelta(days=3),
            "amount": Decimal("120.50"),
            "client_event_id": "o-1",
        },
        {
            "customer_id": customer.pk,
            "kind": EventKind.PURCHASE,
            "occurred_at": now - timedelta(days=1),
            "amount": Decimal("79.50"),
            "client_event_id": "o-2",
        },
        {
            "customer_id": customer.pk,
            "kind": EventKind.MESSAGE,
            "occurred_at": now,
            "text": "价格多少",
            "client_event_id": "m-1",
        },
    ]
    assert record_events(events) == 3
    assert record_events(events) == 0
    assert record_events([{**events[0], "amount": Decimal("999")}]) == 0  # same id, not replaced
    customer.refresh_from_db()
    assert customer.total_spend == Decimal("200.00")
    assert customer.order_count == 2
    assert customer.last_order_at == events[1]["occurred_at"]
    assert customer.last_contact_at == now
    assert CustomerEvent.objects.count() == 3


def test_events_are_append_only():
    event = CustomerEvent.objects.create(
        customer=CustomerFactory(), kind=EventKind.BROWSE, occurred_at=timezone.now()
    )
    event.text = "changed"
    with pytest.raises(Exception):  # noqa: B017 - ValidationError
        event.save()


@pytest.mark.parametrize(
    "term", ["138 0013 8000", "+86 138-0013-8000", "8613800138000", "13800138000", "0013 8000"]
)
def test_search_finds_phone_in_any_spelling(term):
    wanted = CustomerFactory(phone="+8613800138000", name="李四")
    CustomerFactory(phone="+8613900139000")
    assert list(search_customers(Customer.objects.all(), term)) == [wanted]


def test_search_by_name_and_external_userid():
    wanted = CustomerFactory(name="王小明", external_userid="wmXM01")
    CustomerFactory(name="赵六")
    assert list(search_customers(Customer.objects.all(), "小明")) == [wanted]
    assert list(search_customers(Customer.objects.all(), "wmXM01")) == [wanted]


def test_upsert_sets_the_acquisition_channel_and_audits_the_provenance(superuser):
    customer, _ = upsert_customer(
        external_userid="wmCH", source="官网", via="import", actor=superuser
    )
    assert customer.source == "官网"
    assert AuditEntry.objects.get(customer=customer).source == "import"
