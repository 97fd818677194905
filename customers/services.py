"""Customer records and behaviour events (docs/taxonomy.md#customers). Entry points call these; they
audit."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from django.conf import settings
from django.db import connection, models, transaction
from django.db.models import Count, DecimalField, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, StrIndex
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from customers import hooks
from customers.models import (
    EXTERNAL_USERID_RE,
    AddWay,
    Customer,
    CustomerEvent,
    EventKind,
    Follower,
)
from customers.phones import InvalidPhone, normalize_phone
from permissions import policy
from tagging.errors import TaggingError
from tagging.models import AssignmentSource, AuditAction, AuditEntry, TagAssignment

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
    before = None if found is None else customer_snapshot(found)
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
        before = customer_snapshot(stored) if stored is not None else None
    _save_audited(customer, before=before, actor=actor, via=via)
    return customer


def _save_audited(
    customer: Customer, *, before: dict[str, Any] | None, actor: Any, via: str
) -> None:
    customer.save()
    after = customer_snapshot(customer)
    # What changed, as Customer columns (for real-time rules); added_at is not in the snapshot.
    hooks.fields_changed(
        [customer.pk],
        [hooks.ALL_FIELDS]
        if before is None
        else [_COLUMNS.get(k, k) for k in after if after[k] != before.get(k)] + ["added_at"],
    )
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


_COLUMNS = {"owner": "owner_id", "department": "department_id"}  # snapshot key -> column


def customer_snapshot(customer: Customer) -> dict[str, Any]:
    """A customer's audited fields, as its audit entries record them (before / after)."""
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
    kinds: dict[int, set[str]] = {}
    for row in fresh:
        kinds.setdefault(row.customer_id, set()).add(row.kind)
    hooks.customers_changed(
        {pk: hooks.Change(frozenset(k), frozenset(aggregate_columns(k))) for pk, k in kinds.items()}
    )
    return len(fresh)


def aggregate_columns(kinds: Iterable[str]) -> list[str]:
    """The Customer columns :func:`refresh_aggregates` derives from events of these kinds."""
    kinds = set(kinds)
    columns = []
    if EventKind.PURCHASE in kinds:
        columns += ["total_spend", "order_count", "last_order_at"]
    if kinds & set(CONTACT_KINDS):
        columns.append("last_contact_at")
    return columns


# PostgreSQL, for given customers (every record_events call): ONE grouped pass over their
# purchase and contact events instead of four correlated subqueries per customer, and only the
# rows whose values change are written (a browse changes nothing: no new row version, no entry
# in the customer table's nine indexes). The same values as the portable UPDATE below.
_PG_REFRESH = """
UPDATE customers_customer c
SET total_spend = coalesce(a.spend, 0), order_count = a.orders,
    last_order_at = a.last_order, last_contact_at = a.last_contact
FROM (SELECT u.id,
             sum(e.amount) FILTER (WHERE e.kind = %(purchase)s) AS spend,
             count(e.id) FILTER (WHERE e.kind = %(purchase)s) AS orders,
             max(e.occurred_at) FILTER (WHERE e.kind = %(purchase)s) AS last_order,
             max(e.occurred_at) FILTER (WHERE e.kind = ANY(%(contact)s)) AS last_contact
      FROM unnest(%(ids)s::bigint[]) u(id)
      LEFT JOIN customers_customerevent e
        ON e.customer_id = u.id AND (e.kind = %(purchase)s OR e.kind = ANY(%(contact)s))
      GROUP BY u.id) a
WHERE c.id = a.id
  AND (c.total_spend, c.order_count, c.last_order_at, c.last_contact_at)
      IS DISTINCT FROM (coalesce(a.spend, 0), a.orders, a.last_order, a.last_contact)
"""


def refresh_aggregates(customer_ids: Iterable[int] | None = None) -> int:
    """Recompute total spend, order count, last order and last contact from events, set-based.
    ``None`` means every customer (used after bulk loads). Returns the number of customers
    written (on PostgreSQL, for given customers, only those whose values changed)."""
    if customer_ids is not None and connection.vendor == "postgresql":
        ids = sorted(customer_ids)
        if not ids:
            return 0
        with connection.cursor() as cursor:
            cursor.execute(
                _PG_REFRESH,
                {
                    "ids": ids,
                    "purchase": EventKind.PURCHASE.value,
                    "contact": [kind.value for kind in CONTACT_KINDS],
                },
            )
            return int(cursor.rowcount)
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
    condition = Q(name__icontains=term) | Q(remark__icontains=term) | Q(company__icontains=term)
    if len(term) >= 3 and EXTERNAL_USERID_RE.fullmatch(term):
        # Part of an external userid ("wmAbC…" pasted half): case-sensitive like the id itself.
        # STRPOS / INSTR, not LIKE: SQLite's LIKE ignores case (Django's ``contains`` there too).
        queryset = queryset.alias(external_userid_at=StrIndex("external_userid", Value(term)))
        condition |= Q(external_userid_at__gt=0)
    else:
        condition |= Q(external_userid=term)
    phone = try_normalize_phone(term)
    if phone:
        condition |= Q(phone=phone)
    else:
        digits = clean_phone_text(term).lstrip("+")
        if digits.isdigit() and len(digits) >= 4:
            condition |= Q(phone__contains=digits)
    return queryset.filter(condition)


# --- followers (docs/taxonomy.md#customers: the employees who added the customer) ---------------------------------


def _follower_snapshot(follower: Follower) -> dict[str, Any]:
    return {
        "employee": follower.employee_id,
        "employee_name": str(follower.employee),
        "added_at": follower.added_at.isoformat() if follower.added_at else None,
        "add_way": follower.add_way,
        "remark": follower.remark,
    }


def _follower_audit(
    action: str,
    follower: Follower,
    *,
    actor: Any,
    via: str,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditEntry:
    return AuditEntry(
        action=action,
        actor_id=getattr(actor, "pk", None),
        source=via,
        customer_id=follower.customer_id,
        object_repr=str(follower.employee)[:255],
        before=before,
        after=after,
    )


@transaction.atomic
def add_followers(
    pairs: Iterable[tuple[int, int]],
    *,
    actor: Any,
    via: str,
    add_way: int = AddWay.UNKNOWN,
    remark: str = "",
) -> int:
    """Make each (customer_id, employee_id) pair a follower; pairs that exist are left as they
    are. The caller has checked scope (``permissions.policy``). One audit entry per follower
    added. A constant number of queries (PostgreSQL: the pairs are COPied into a temporary
    table and one ``INSERT … ON CONFLICT DO NOTHING RETURNING`` feeds the audit insert, as the
    import's tag assignments do). Returns how many were added."""
    pairs = list(dict.fromkeys(pairs))
    if not pairs:
        return 0
    if connection.vendor == "postgresql":
        return _add_followers_postgresql(
            pairs, actor_id=getattr(actor, "pk", None), via=via, add_way=add_way, remark=remark
        )
    customer_ids = {c for c, _e in pairs}
    existing = set(
        Follower.objects.filter(
            customer_id__in=customer_ids, employee_id__in={e for _c, e in pairs}
        ).values_list("customer_id", "employee_id")
    )
    new = [
        Follower(customer_id=c, employee_id=e, add_way=add_way, remark=remark)
        for c, e in pairs
        if (c, e) not in existing
    ]
    Follower.objects.bulk_create(new, batch_size=2000, ignore_conflicts=True)
    names = _employee_names({f.employee_id for f in new})
    AuditEntry.objects.bulk_create(
        [
            AuditEntry(
                action=AuditAction.FOLLOWER_ADDED,
                actor_id=getattr(actor, "pk", None),
                source=via,
                customer_id=f.customer_id,
                object_repr=names.get(f.employee_id, "")[:255],
                after={
                    "employee": f.employee_id,
                    "employee_name": names.get(f.employee_id, ""),
                    "add_way": f.add_way,
                    "remark": f.remark,
                },
            )
            for f in new
        ],
        batch_size=2000,
    )
    return len(new)


def _add_followers_postgresql(
    pairs: list[tuple[int, int]], *, actor_id: int | None, via: str, add_way: int, remark: str
) -> int:
    from django.contrib.auth import get_user_model

    users = get_user_model()._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS tagdesk_follower_stage"
            " (customer_id bigint NOT NULL, employee_id bigint NOT NULL) ON COMMIT DELETE ROWS"
        )
        cursor.execute("TRUNCATE tagdesk_follower_stage")
        with cursor.copy(
            "COPY tagdesk_follower_stage (customer_id, employee_id) FROM STDIN"
        ) as copy:
            for pair in pairs:
                copy.write_row(pair)
        cursor.execute(
            f"""
            WITH added AS (
                INSERT INTO {Follower._meta.db_table}
                    (customer_id, employee_id, added_at, add_way, remark)
                SELECT customer_id, employee_id, %(now)s, %(add_way)s, %(remark)s
                FROM tagdesk_follower_stage
                ON CONFLICT (customer_id, employee_id) DO NOTHING
                RETURNING customer_id, employee_id
            ), named AS (
                SELECT a.customer_id, a.employee_id,
                       COALESCE(NULLIF(u.display_name, ''),
                                NULLIF(TRIM(u.first_name || ' ' || u.last_name), ''),
                                u.username) AS name
                FROM added a JOIN {users} u ON u.id = a.employee_id
            )
            INSERT INTO {AuditEntry._meta.db_table}
                (created_at, actor_id, action, source, customer_id, object_repr, after, reason)
            SELECT %(now)s, %(actor)s::bigint, %(action)s, %(via)s, customer_id, left(name, 255),
                   jsonb_build_object('employee', employee_id, 'employee_name', name,
                                      'add_way', %(add_way)s, 'remark', %(remark)s::text),
                   ''
            FROM named
            """,
            {
                "now": timezone.now(),
                "add_way": add_way,
                "remark": remark,
                "actor": actor_id,
                "action": AuditAction.FOLLOWER_ADDED,
                "via": via,
            },
        )
        return int(cursor.rowcount)


@transaction.atomic
def save_follower(
    follower: Follower, *, actor: Any, via: str = AssignmentSource.MANUAL
) -> Follower:
    """Create or change one follower (the admin inline), audited with before/after."""
    before = None
    if follower.pk is not None:
        stored = Follower.objects.select_related("employee").filter(pk=follower.pk).first()
        before = _follower_snapshot(stored) if stored is not None else None
    follower.save()
    after = _follower_snapshot(follower)
    if after != before:
        action = AuditAction.FOLLOWER_ADDED if before is None else AuditAction.FOLLOWER_UPDATED
        _follower_audit(action, follower, actor=actor, via=via, before=before, after=after).save()
    return follower


@transaction.atomic
def remove_followers(customer_id: int, employee_ids: Iterable[int], *, actor: Any, via: str) -> int:
    """Remove these employees from the customer's followers, one audit entry each. Returns how
    many were removed (absent ones are ignored)."""
    followers = list(
        Follower.objects.select_related("employee").filter(
            customer_id=customer_id, employee_id__in=list(employee_ids)
        )
    )
    if not followers:
        return 0
    Follower.objects.filter(pk__in=[f.pk for f in followers]).delete()
    AuditEntry.objects.bulk_create(
        [
            _follower_audit(
                AuditAction.FOLLOWER_REMOVED,
                f,
                actor=actor,
                via=via,
                before=_follower_snapshot(f),
            )
            for f in followers
        ]
    )
    return len(followers)


def _employee_names(ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    from django.contrib.auth import get_user_model

    return {u.pk: str(u) for u in get_user_model().objects.filter(pk__in=ids)}


# --- erasure (PIPL right to deletion) ---------------------------------------------------------

# What identifies a person in audit entries: these keys of before/after (customer snapshots,
# see _snapshot) and, in the customer's own ``customer.*`` entries, object_repr and reason.
IDENTIFYING_KEYS = ("external_userid", "phone", "name", "remark", "company")
ERASED = "[erased]"


@dataclass(frozen=True)
class ErasureResult:
    customers: int
    assignments: int
    events: int
    followers: int
    audit_entries_redacted: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


@transaction.atomic
def erase_customers(
    customer_ids: Iterable[Any], *, actor: Any, reason: str, via: str = AssignmentSource.MANUAL
) -> ErasureResult:
    """Erase customers for good (PIPL right to deletion): their rows, tag assignments, events
    and followers are deleted (the segment index follows through its triggers), and their audit
    entries are kept with every identifier redacted (``IDENTIFYING_KEYS`` → ``ERASED``).

    Who may: tag admins (``policy.may_erase_customers``), for customers in their scope; anyone
    else gets ``policy.Denied``, an id outside the scope or unknown ``policy.NotVisible``, and a
    missing reason or too many customers a :class:`CustomerError`; nothing is changed then.
    Atomic: all the customers or none. Audited by one ``customer.erased`` entry holding who,
    when, why and how many, and no identifier.

    Real-time rules: nothing is marked (an erased customer has nothing left to evaluate) and
    the customers' pending dirty rows go with them (``rules_dirtycustomer`` cascades); a batch
    that claimed them first key-share locks its customers, so it and the erasure take turns.
    """
    if not policy.may_erase_customers(actor):
        raise policy.Denied(_("Only tag admins may erase customers."))
    reason = " ".join((reason or "").split())
    if not reason:
        raise CustomerError(
            _("Give the reason for the erasure (e.g. the request's reference)."),
            code="reason_required",
        )
    ids = policy.require_customers(actor, customer_ids)
    if not ids:
        raise CustomerError(_("Choose the customers to erase."), code="invalid")
    limit = settings.TAGDESK_MAX_BATCH_CUSTOMERS
    if len(ids) > limit:
        raise CustomerError(
            _("At most %(n)d customers can be erased at once.") % {"n": limit},
            code="limit_exceeded",
        )
    # Lock in id order (as every customer writer does), so a concurrent tagging waits.
    list(Customer.objects.select_for_update().filter(pk__in=ids).order_by("pk").values("pk"))
    hooks.customers_erased(ids)  # other apps' copies (CRM webhook deliveries), same transaction
    assignments = TagAssignment.objects.filter(customer_id__in=ids).delete()[0]
    events = CustomerEvent.objects.filter(customer_id__in=ids).delete()[0]
    followers = Follower.objects.filter(customer_id__in=ids).delete()[0]
    _deleted, per_model = Customer.objects.filter(pk__in=ids).delete()
    result = ErasureResult(
        customers=per_model.get(Customer._meta.label, 0),
        assignments=assignments,
        events=events,
        followers=followers,
        audit_entries_redacted=_redact_audit(ids),
    )
    AuditEntry.objects.create(
        action=AuditAction.CUSTOMER_ERASED,
        actor_id=getattr(actor, "pk", None),
        source=via,
        object_repr=ngettext("%(n)d customer", "%(n)d customers", result.customers)
        % {"n": result.customers},
        after=result.as_dict(),
        reason=reason[:255],
    )
    return result


def _redact_audit(customer_ids: list[int]) -> int:
    """Redact the customers' audit entries; returns how many entries there were.

    On PostgreSQL the audit log refuses UPDATE (a trigger); the SECURITY DEFINER function of
    tagging migration 0007 is the one door, and it lets only these texts change. Elsewhere (the
    SQLite demo) the same fields are redacted here, past the model's append-only guard."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT tagging_audit_redact_customers(%s::bigint[], %s::text[], %s)",
                [customer_ids, list(IDENTIFYING_KEYS), ERASED],
            )
            return int(cursor.fetchone()[0])
    # A plain QuerySet: AuditEntry's own manager refuses every update.
    unguarded: models.QuerySet[AuditEntry] = models.QuerySet(AuditEntry)
    entries = list(unguarded.filter(customer_id__in=customer_ids))
    for entry in entries:
        if entry.action.startswith("customer."):
            entry.object_repr = ERASED
            entry.reason = ERASED if entry.reason else ""
        entry.before, entry.after = redacted(entry.before), redacted(entry.after)
    unguarded.bulk_update(entries, ["object_repr", "reason", "before", "after"], batch_size=500)
    return len(entries)


def redacted(doc: Any, keys: Iterable[str] = IDENTIFYING_KEYS) -> Any:
    """``doc`` (a customer snapshot) with every non-empty value of ``keys`` replaced by
    ``ERASED``: the one redaction rule, also used by apps' erasure listeners."""
    if not isinstance(doc, dict):
        return doc
    keys = frozenset(keys)
    return {
        key: ERASED if key in keys and value not in (None, "", []) else value
        for key, value in doc.items()
    }
