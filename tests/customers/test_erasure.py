"""Customer erasure (PIPL right to deletion, issue 11 §7): rows gone, audit kept but redacted,
the erasure itself audited without identifiers; tag admins only, everywhere; all or nothing."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.admin import helpers
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from customers import services
from customers.models import Customer, CustomerEvent, Follower
from permissions import policy
from tagging import segments
from tagging import services as tagging_services
from tagging.models import AssignmentSource, AuditAction, AuditEntry, TagAssignment
from tests.conftest import tag

pytestmark = pytest.mark.django_db

PHONE, EXTERNAL, NAME = "+8613800138123", "wmErase01", "陈秘密"
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the audit trigger and the index are PostgreSQL's"
)


@pytest.fixture
def people(tag_admin, sales_operator, departments, intent_group, source_group):
    """Customer ``gone`` (to erase: audited create + edit, two tags, a follower, events) and
    ``kept`` (same tag, must stay)."""
    gone, _ = services.upsert_customer(
        external_userid=EXTERNAL,
        phone=PHONE,
        name=NAME,
        company="秘密科技",
        remark="VIP 陈秘密",
        actor=tag_admin,
        department=departments["销售部"],
    )
    services.save_customer(_renamed(gone, "陈秘密2"), actor=tag_admin)
    kept, _ = services.upsert_customer(external_userid="wmKeep", name="留下", actor=tag_admin)
    high, fair = tag(intent_group, "高"), tag(source_group, "展会")
    tagging_services.assign_tags(
        [gone.pk, kept.pk], [high], actor=tag_admin, source=AssignmentSource.MANUAL
    )
    tagging_services.assign_tags(
        [gone.pk], [fair], actor=tag_admin, source=AssignmentSource.MANUAL, reason="展会认识"
    )
    Follower.objects.create(customer=gone, employee=sales_operator)
    services.record_events(
        [
            {
                "customer_id": gone.pk,
                "kind": "purchase",
                "occurred_at": timezone.now(),
                "amount": 9,
            },
            {"customer_id": gone.pk, "kind": "message", "occurred_at": timezone.now()},
            {"customer_id": kept.pk, "kind": "message", "occurred_at": timezone.now()},
        ]
    )
    return gone, kept, high


def _renamed(customer, name):
    customer.name = name
    return customer


def _identifiers_in(entries) -> list[str]:
    text = json.dumps(
        [[e.object_repr, e.reason, e.before, e.after] for e in entries], ensure_ascii=False
    )
    return [
        value for value in (PHONE, EXTERNAL, "陈秘密", "秘密科技", "13800138123") if value in text
    ]


def test_erasure_deletes_the_rows_and_redacts_the_audit(people, tag_admin):
    gone, kept, high = people
    entries_before = AuditEntry.objects.filter(customer_id=gone.pk).count()
    assert entries_before >= 4 and _identifiers_in(AuditEntry.objects.filter(customer_id=gone.pk))

    result = services.erase_customers([gone.pk], actor=tag_admin, reason="PIPL request #42")

    assert result.as_dict() == {
        "customers": 1,
        "assignments": 2,
        "events": 2,
        "followers": 1,
        "audit_entries_redacted": entries_before,
    }
    assert not Customer.objects.filter(pk=gone.pk).exists()
    assert not TagAssignment.objects.filter(customer_id=gone.pk).exists()
    assert not CustomerEvent.objects.filter(customer_id=gone.pk).exists()
    assert not Follower.objects.filter(customer_id=gone.pk).exists()
    # The other customer is untouched.
    assert TagAssignment.objects.filter(customer=kept, tag=high).exists()
    assert CustomerEvent.objects.filter(customer=kept).count() == 1

    history = list(AuditEntry.objects.filter(customer_id=gone.pk))
    assert len(history) == entries_before  # kept, never deleted
    assert _identifiers_in(history) == []
    created = next(e for e in history if e.action == AuditAction.CUSTOMER_CREATED)
    assert created.object_repr == services.ERASED
    assert created.after["phone"] == services.ERASED and created.after["source"] == ""
    assert created.after["department"] is not None  # not an identifier: kept
    added = [e for e in history if e.action == AuditAction.ASSIGNMENT_ADDED]
    assert {e.object_repr for e in added} == {"意向:高", "客户来源:展会"}  # tags stay
    assert {e.reason for e in added} == {"", "展会认识"}
    assert all(e.actor_id == tag_admin.pk for e in history)

    erasure = AuditEntry.objects.get(action=AuditAction.CUSTOMER_ERASED)
    assert erasure.actor_id == tag_admin.pk and erasure.customer_id is None
    assert erasure.reason == "PIPL request #42"
    assert erasure.after == {**result.as_dict()}
    assert _identifiers_in([erasure]) == [] and erasure.object_repr == "1 customer"


@postgres_only
def test_the_trigger_still_refuses_any_other_change(people, tag_admin):
    gone, _kept, _high = people
    entry = AuditEntry.objects.filter(customer_id=gone.pk).first()
    statements = [
        ("UPDATE tagging_auditentry SET object_repr = 'x' WHERE id = %s", False),
        ("DELETE FROM tagging_auditentry WHERE id = %s", False),
        # Even with the redaction flag on, who/when/what cannot change and nothing is deleted.
        ("UPDATE tagging_auditentry SET actor_id = NULL WHERE id = %s", True),
        ("UPDATE tagging_auditentry SET action = 'tag.created' WHERE id = %s", True),
        ("DELETE FROM tagging_auditentry WHERE id = %s", True),
    ]
    for sql, flag in statements:
        with (
            pytest.raises(DatabaseError, match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            if flag:
                cursor.execute("SET LOCAL tagdesk.audit_redaction = 'on'")
            cursor.execute(sql, [entry.pk])
    # The flag is scoped to the redaction function's call: not left on for the session.
    with connection.cursor() as cursor:
        services.erase_customers([gone.pk], actor=tag_admin, reason="r")
        cursor.execute("SELECT current_setting('tagdesk.audit_redaction', true)")
        assert cursor.fetchone()[0] in (None, "", "off")


@postgres_only
def test_segment_index_follows_the_erasure(people, tag_admin):
    gone, kept, high = people
    assert segments.count({"tag": high.pk}, tag_admin) == 2
    everyone = segments.count({"not": {"tag": high.pk}}, tag_admin)
    services.erase_customers([gone.pk], actor=tag_admin, reason="r")
    assert segments.customer_ids({"tag": high.pk}, tag_admin) == [kept.pk]
    assert segments.count({"not": {"tag": high.pk}}, tag_admin) == everyone


def _nothing_changed(gone):
    assert Customer.objects.filter(pk=gone.pk).exists()
    assert TagAssignment.objects.filter(customer_id=gone.pk).count() == 2
    assert _identifiers_in(AuditEntry.objects.filter(customer_id=gone.pk))
    assert not AuditEntry.objects.filter(action=AuditAction.CUSTOMER_ERASED).exists()


def test_only_tag_admins_may_erase(people, sales_operator, outsider):
    gone, _kept, _high = people
    for user in (sales_operator, outsider):
        with pytest.raises(policy.Denied):
            services.erase_customers([gone.pk], actor=user, reason="r")
    _nothing_changed(gone)


def test_all_or_nothing_and_scope(people, tag_admin):
    gone, _kept, _high = people
    with pytest.raises(policy.NotVisible):
        services.erase_customers([gone.pk, 10**12], actor=tag_admin, reason="r")
    with pytest.raises(services.CustomerError) as refused:
        services.erase_customers([gone.pk], actor=tag_admin, reason="   ")
    assert refused.value.code == "reason_required"
    with pytest.raises(policy.NotVisible):
        services.erase_customers(["abc"], actor=tag_admin, reason="r")
    _nothing_changed(gone)


def test_batch_limit(people, tag_admin, settings):
    gone, kept, _high = people
    settings.TAGDESK_MAX_BATCH_CUSTOMERS = 1
    with pytest.raises(services.CustomerError) as refused:
        services.erase_customers([gone.pk, kept.pk], actor=tag_admin, reason="r")
    assert refused.value.code == "limit_exceeded"
    _nothing_changed(gone)


# --- admin --------------------------------------------------------------------------------------


def _changelist_post(client, data):
    return client.post(reverse("admin:customers_customer_changelist"), data)


def test_admin_action_confirms_then_erases(people, tag_admin):
    gone, kept, _high = people
    client = Client()
    client.force_login(tag_admin)
    listing = client.get(reverse("admin:customers_customer_changelist"))
    assert 'value="erase_customers"' in listing.content.decode()
    selection = {"action": "erase_customers", helpers.ACTION_CHECKBOX_NAME: [gone.pk]}
    confirm = _changelist_post(client, selection)
    assert confirm.status_code == 200
    assert "cannot be undone" in confirm.content.decode()
    assert Customer.objects.filter(pk=gone.pk).exists()
    unticked = _changelist_post(client, {**selection, "_apply": "1", "reason": "req 1"})
    assert unticked.status_code == 200 and Customer.objects.filter(pk=gone.pk).exists()
    done = _changelist_post(
        client, {**selection, "_apply": "1", "reason": "req 1", "confirm": "on"}
    )
    assert done.status_code == 302
    assert not Customer.objects.filter(pk=gone.pk).exists()
    assert Customer.objects.filter(pk=kept.pk).exists()
    page = client.get(done["Location"])
    assert "Erased 1 customer with 2 tag assignments" in page.content.decode()


def test_admin_action_is_not_offered_to_others(people, superuser, sales_operator):
    gone, _kept, _high = people
    sales_operator.is_staff = True
    sales_operator.save()
    client = Client()
    client.force_login(sales_operator)
    listing = client.get(reverse("admin:customers_customer_changelist"))
    assert 'value="erase_customers"' not in listing.content.decode()
    _changelist_post(
        client,
        {
            "action": "erase_customers",
            helpers.ACTION_CHECKBOX_NAME: [gone.pk],
            "_apply": "1",
            "reason": "r",
            "confirm": "on",
        },
    )
    _nothing_changed(gone)


# --- command ------------------------------------------------------------------------------------


def _command(*args):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        call_command("erase_customers", *args, stdout=out, stderr=err)
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue().strip().splitlines()[-1] if out.getvalue().strip() else ""


def test_command_erases_by_any_identifier(people, tag_admin):
    gone, kept, _high = people
    code, last = _command(
        "--phone", "138 0013 8123", "--user", tag_admin.username, "--reason", "r", "--json"
    )
    assert code == 0
    assert json.loads(last) == {
        "erased": 1,
        "assignments": 2,
        "events": 2,
        "followers": 1,
        "audit_entries_redacted": json.loads(last)["audit_entries_redacted"],
    }
    assert not Customer.objects.filter(pk=gone.pk).exists()
    code, last = _command("--id", str(kept.pk), "--user", tag_admin.username, "--reason", "r")
    assert code == 0 and "erased 1 customers" in last


def test_command_refusals(people, tag_admin, sales_operator):
    gone, _kept, _high = people
    code, last = _command(
        "--id", str(gone.pk), "--user", sales_operator.username, "--reason", "r", "--json"
    )
    assert code == 1
    assert json.loads(last) == {
        "erased": 0,
        "error": {"code": "permission_denied", "message": "Only tag admins may erase customers."},
    }
    code, last = _command(
        "--id", str(gone.pk), "--external-userid", "wmNobody", "--user", tag_admin.username,
        "--reason", "r", "--json",
    )  # fmt: skip
    assert code == 1 and json.loads(last)["error"]["code"] == "not_found"
    _nothing_changed(gone)
