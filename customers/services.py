"""Customer records and behaviour events (docs/taxonomy.md#customers). Entry points call these; they
audit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction
from django.db.models import Count, DecimalField, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from customers.models import Customer, CustomerEvent, EventKind
from customers.phones import InvalidPhone, normalize_phone
from tagging.errors import TaggingError
from tagging.models import AssignmentSource, AuditAction, AuditEntry

CONTACT_KINDS = [
    EventKind.MESSAGE,
    EventKind.BROADCAST_REPLY,
    EventKind.INQUIRY,
    EventKind.ADD_EMPLOYEE,
]


class CustomerError(TaggingError):
    code = "invalid_customer"


def identifier_conflict_message(identifier: str) -> str:
    """The one message of ``identifier_conflict`` (services, API, import): it names no customer,
    so it reads the same whether the holder is a customer the caller sees or one outside their
    scope (no oracle either way)."""
    if identifier == "phone":
        return _("This phone belongs to another customer.")
    return _("This external userid belongs to another customer.")


def identifier_conflict(identifier: str) -> CustomerError:
    return CustomerError(identifier_conflict_message(identifier), code="identifier_conflict")


@transaction.atomic
def upsert_customer(
    *,
    external_userid: str | None = None,
    phone: str | None = None,
    actor: Any = None,
    via: str = AssignmentSource.API,
    **attributes: Any,
) -> tuple[Customer, bool]:
    """Find a customer by external_userid, else by phone, and create or update it.

    A customer known only by phone gains its external_userid here (its tags stay). A phone that
    already belongs to a customer with a different external_userid is refused
    (``identifier_conflict``). ``via`` is the audit provenance (api, import, sync...);
    ``source`` among the attributes is the customer's acquisition channel. Returns
    ``(customer, created)``.
    """
    external_userid = (external_userid or "").strip() or None
    if phone not in (None, ""):
        try:
            phone = normalize_phone(phone)
        except InvalidPhone as exc:
            raise CustomerError(str(exc), code="invalid_phone") from exc
    else:
        phone = None
    if not external_userid and not phone:
        raise CustomerError(
            _("A customer needs an external userid or a mobile phone."), code="missing_identifier"
        )
    if external_userid:
        from customers.models import EXTERNAL_USERID_RE

        if not EXTERNAL_USERID_RE.match(external_userid):
            raise CustomerError(
                _("External userid may contain only letters, digits, “_” and “-” (at most 64)."),
                code="invalid_external_userid",
            )
    by_ext = (
        Customer.objects.select_for_update().filter(external_userid=external_userid).first()
        if external_userid
        else None
    )
    by_phone = Customer.objects.select_for_update().filter(phone=phone).first() if phone else None
    if by_ext and by_phone and by_ext.pk != by_phone.pk:
        raise identifier_conflict("phone")
    if (
        by_phone
        and external_userid
        and by_phone.external_userid
        and by_phone.external_userid != external_userid
    ):
        raise identifier_conflict("phone")
    found = by_ext or by_phone
    created = found is None
    before = None if found is None else _snapshot(found)
    if found is None:
        customer = Customer(external_userid=external_userid, phone=phone)
    else:
        customer = found
        customer.external_userid = customer.external_userid or external_userid
        customer.phone = customer.phone or phone
    for key, value in attributes.items():
        if key not in _EDITABLE:
            raise CustomerError(_("Unknown customer field “%(field)s”.") % {"field": key})
        setattr(customer, key, value)
    _save_audited(customer, before=before, actor=actor, via=via)
    return customer, created


@transaction.atomic
def save_customer(
    customer: Customer, *, actor: Any, via: str = AssignmentSource.MANUAL
) -> Customer:
    """Save a customer edited in a form (the admin) and audit what changed, before and after.
    The form has already validated and normalised the fields."""
    before = None
    if customer.pk is not None:
        stored = Customer.objects.select_for_update().filter(pk=customer.pk).first()
        before = _snapshot(stored) if stored is not None else None
    _save_audited(customer, before=before, actor=actor, via=via)
    return customer


def _save_audited(
    customer: Customer, *, before: dict[str, Any] | None, actor: Any, via: str
) -> None:
    customer.save()
    after = _snapshot(customer)
    if after != before:
        AuditEntry.objects.create(
            action=AuditAction.CUSTOMER_CREATED if before is None else AuditAction.CUSTOMER_UPDATED,
            actor_id=getattr(actor, "pk", None),
            source=via,
            customer=customer,
            object_repr=str(customer)[:255],
            before=before,
            after=after,
        )


_EDITABLE = {
    "name",
    "remark",
    "company",
    "owner",
    "owner_id",
    "department",
    "department_id",
    "source",
    "attributes",
    "added_at",
}


def _snapshot(customer: Customer) -> dict[str, Any]:
    return {
        "external_userid": customer.external_userid,
        "phone": customer.phone,
        "name": customer.name,
        "remark": customer.remark,
        "company": customer.company,
        "owner": customer.owner_id,
        "department": customer.department_id,
        "source": customer.source,
    }


@transaction.atomic
def record_events(events: Iterable[Mapping[str, Any]]) -> int:
    """Append behaviour events (dicts of CustomerEvent fields with ``customer_id``); an event
    whose ``client_event_id`` its customer already has (stored, or earlier in ``events``) is
    skipped. Ids are unique per customer: the same id on another customer is another event
    (two departments' clients may number their events alike). Refreshes the customers'
    aggregates. Returns how many were new."""
    rows = [CustomerEvent(**event) for event in events]
    if not rows:
        return 0
    keyed = [r for r in rows if r.client_event_id]
    known: set[tuple[int, str | None]] = set()
    if keyed:
        known = set(
            CustomerEvent.objects.filter(
                customer_id__in={r.customer_id for r in keyed},
                client_event_id__in={r.client_event_id for r in keyed},
            ).values_list("customer_id", "client_event_id")
        )
    fresh = []
    for row in rows:
        if row.client_event_id:
            key = (row.customer_id, row.client_event_id)
            if key in known:
                continue
            known.add(key)
        fresh.append(row)
    CustomerEvent.objects.bulk_create(fresh, batch_size=2000, ignore_conflicts=True)
    refresh_aggregates({r.customer_id for r in fresh})
    return len(fresh)


def refresh_aggregates(customer_ids: Iterable[int] | None = None) -> int:
    """Recompute total spend, order count, last order and last contact from events, set-based.
    ``None`` means every customer (used after bulk loads)."""
    purchases = CustomerEvent.objects.filter(
        customer_id=OuterRef("pk"), kind=EventKind.PURCHASE
    ).values("customer_id")
    contacts = CustomerEvent.objects.filter(
        customer_id=OuterRef("pk"), kind__in=CONTACT_KINDS
    ).values("customer_id")
    qs = Customer.objects.all()
    if customer_ids is not None:
        customer_ids = list(customer_ids)
        if not customer_ids:
            return 0
        qs = qs.filter(pk__in=customer_ids)
    money = DecimalField(max_digits=14, decimal_places=2)
    return qs.update(
        total_spend=Coalesce(
            Subquery(purchases.annotate(s=Sum("amount")).values("s"), output_field=money),
            Value(0, output_field=money),
        ),
        order_count=Coalesce(Subquery(purchases.annotate(n=Count("pk")).values("n")), Value(0)),
        last_order_at=Subquery(purchases.annotate(m=Max("occurred_at")).values("m")),
        last_contact_at=Subquery(contacts.annotate(m=Max("occurred_at")).values("m")),
    )


def search_customers(queryset: QuerySet[Customer], term: str) -> QuerySet[Customer]:
    """Filter by name, remark, company or external_userid (substring) or phone in any spelling."""
    from customers.phones import clean_phone_text, try_normalize_phone

    term = (term or "").strip()
    if not term:
        return queryset
    condition = (
        Q(name__icontains=term)
        | Q(external_userid=term)
        | Q(remark__icontains=term)
        | Q(company__icontains=term)
    )
    phone = try_normalize_phone(term)
    if phone:
        condition |= Q(phone=phone)
    else:
        digits = clean_phone_text(term).lstrip("+")
        if digits.isdigit() and len(digits) >= 4:
            condition |= Q(phone__contains=digits)
    return queryset.filter(condition)
