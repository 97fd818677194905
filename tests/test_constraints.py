"""Integrity that the database itself enforces, whoever writes (docs/taxonomy.md): raw ORM writes
and SQL that bypass the services still cannot break these."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from customers.models import Customer, CustomerEvent, EventKind, Follower
from tagging.models import AssignmentSource, AuditAction, AuditEntry, TagAssignment, TagGroup
from tests.factories import CustomerFactory, TagFactory, UserFactory

pytestmark = pytest.mark.django_db


def refused(exc=IntegrityError):
    """The statement fails and the surrounding test transaction stays usable."""

    class _Refused:
        def __enter__(self):
            self.atomic = transaction.atomic()
            self.atomic.__enter__()
            self.raises = pytest.raises(exc)
            self.raises.__enter__()

        def __exit__(self, *exc_info):
            self.atomic.__exit__(*exc_info)  # rolls the savepoint back when the statement failed
            return self.raises.__exit__(*exc_info)

    return _Refused()


# --- customers ----------------------------------------------------------------------------------


def test_customer_needs_an_identifier():
    with refused():
        Customer.objects.create(name="无名氏")
    with refused():
        Customer.objects.bulk_create([Customer(name="无名氏", external_userid=None, phone=None)])
    with refused():  # blank strings are no identifier either
        Customer.objects.bulk_create([Customer(name="空", external_userid="", phone="")])
    assert Customer.objects.create(phone="+8613800138000").pk
    assert Customer.objects.create(external_userid="wmOnlyWeCom").pk


def test_customer_clean_explains_the_missing_identifier():
    with pytest.raises(ValidationError, match="external userid or a mobile phone"):
        Customer(name="无名氏").full_clean()


def test_external_userid_and_phone_are_unique_when_present():
    CustomerFactory(external_userid="wmSame", phone="+8613800138000")
    with refused():
        Customer.objects.create(external_userid="wmSame", phone="+8613900139000")
    with refused():
        Customer.objects.create(external_userid="wmOther", phone="+8613800138000")
    # external_userid is case-sensitive; several customers may lack one identifier
    assert Customer.objects.create(external_userid="WMSAME").pk
    Customer.objects.create(phone="+8613700137000")
    Customer.objects.create(phone="+8613600136000")
    assert Customer.objects.filter(external_userid=None).count() == 2


def test_follower_once_per_employee():
    customer, employee = CustomerFactory(), UserFactory()
    Follower.objects.create(customer=customer, employee=employee)
    with refused():
        Follower.objects.create(customer=customer, employee=employee)


def test_client_event_id_is_idempotent_and_events_are_append_only():
    customer = CustomerFactory()
    event = CustomerEvent.objects.create(
        customer=customer, kind=EventKind.PURCHASE, occurred_at=timezone.now(), client_event_id="e1"
    )
    with refused():
        CustomerEvent.objects.create(
            customer=customer,
            kind=EventKind.BROWSE,
            occurred_at=timezone.now(),
            client_event_id="e1",
        )
    event.text = "changed"
    with pytest.raises(ValidationError, match="append-only"):
        event.save()


# --- assignments and taxonomy -------------------------------------------------------------------


def test_assignment_is_unique_per_customer_and_tag():
    customer, tag = CustomerFactory(), TagFactory()
    TagAssignment.objects.create(customer=customer, tag=tag, source=AssignmentSource.MANUAL)
    with refused():
        TagAssignment.objects.create(customer=customer, tag=tag, source=AssignmentSource.IMPORT)
    with refused():
        TagAssignment.objects.bulk_create(
            [TagAssignment(customer=customer, tag=tag, source=AssignmentSource.API)]
        )
    assert TagAssignment.objects.filter(customer=customer, tag=tag).count() == 1


def test_tag_names_unique_in_group_after_folding():
    tag = TagFactory(name="VIP")
    with refused():
        TagFactory(group=tag.group, name="ｖｉｐ")  # full-width, other case: same name
    assert TagFactory(name="VIP").pk  # another group may use it


def test_personal_group_needs_an_owner_and_shared_groups_have_none():
    owner = UserFactory()
    with refused():
        TagGroup.objects.create(name="我的", kind="personal")
    with refused():
        TagGroup.objects.create(name="公司", kind="corporate", owner=owner)
    assert TagGroup.objects.create(name="我的", kind="personal", owner=owner).pk


# --- audit log ----------------------------------------------------------------------------------


@pytest.fixture
def entry():
    return AuditEntry.objects.create(
        action=AuditAction.TAG_CREATED, source=AssignmentSource.MANUAL, object_repr="意向:高"
    )


def test_audit_entries_cannot_be_changed_or_deleted_through_the_orm(entry):
    entry.reason = "rewrite history"
    with pytest.raises(ValidationError, match="append-only"):
        entry.save()
    with pytest.raises(ValidationError, match="append-only"):
        entry.delete()
    with pytest.raises(ValidationError, match="append-only"):
        AuditEntry.objects.filter(pk=entry.pk).update(reason="x")
    with pytest.raises(ValidationError, match="append-only"):
        AuditEntry.objects.filter(pk=entry.pk).delete()
    entry.refresh_from_db()
    assert entry.reason == ""


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL")
def test_audit_trigger_refuses_raw_sql_on_postgresql(entry):
    table = AuditEntry._meta.db_table
    with refused(DatabaseError), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET reason = 'x' WHERE id = %s", [entry.pk])
    with refused(DatabaseError), connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE id = %s", [entry.pk])
    assert AuditEntry.objects.filter(pk=entry.pk, reason="").exists()


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers are PostgreSQL's")
def test_the_audit_log_refuses_truncate_unless_the_transaction_allows_it(entry):
    from tagging.models import allow_audit_truncate

    refuse = "append-only"
    with pytest.raises(DatabaseError, match=refuse), transaction.atomic(), connection.cursor() as c:
        c.execute("TRUNCATE tagging_auditentry")
    with pytest.raises(DatabaseError, match=refuse), transaction.atomic(), connection.cursor() as c:
        c.execute("TRUNCATE tagging_tag, tagging_auditentry CASCADE")  # nor among other tables
    assert AuditEntry.objects.filter(pk=entry.pk).exists()
    with transaction.atomic(), connection.cursor() as cursor:
        allow_audit_truncate(cursor)
        cursor.execute("TRUNCATE tagging_auditentry")
    assert not AuditEntry.objects.exists()
