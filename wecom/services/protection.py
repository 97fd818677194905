"""The protection lock: which customer fields may leave TagDesk (docs/wecom.md#protection-lock--保护锁).

Every outbound path goes through this module twice. Bodies are *built* from
:func:`customer_data`, which gives a customer's keys (TagDesk id, external_userid) and only the
released fields; and every body is *checked* by :func:`guard` just before it is sent — the
mark_tag and add_msg_template calls to WeCom and every CRM webhook POST — which refuses it if a
locked field's value of the customers concerned appears anywhere in it. The check catches a
future code path that forgets the builder; the builder keeps the check from ever firing.

Defaults are fail-closed: the lock row stores the *released* fields, so every field is locked
until a tag admin releases it, and so is a field added to :data:`LOCKABLE_FIELDS` later.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from customers.models import Customer, Follower
from tagging.errors import TaggingError
from tagging.models import AssignmentSource, AuditAction, AuditEntry
from wecom.models import ProtectionLock

# Always sent: without them the receiver cannot tell which customer changed. external_userid is
# WeCom's pseudonymous id (WeCom itself requires it on mark_tag).
KEY_FIELDS = ("id", "external_userid")

# Every customer field an outbound body could carry. Order is the admin's.
LOCKABLE_FIELDS: dict[str, Any] = {
    "name": gettext_lazy("name"),
    "phone": gettext_lazy("mobile phone (remark_mobiles)"),
    "remark": gettext_lazy("remark"),
    "company": gettext_lazy("company"),
    "follower_remarks": gettext_lazy("followers' remarks"),
    "source": gettext_lazy("source channel"),
    "attributes": gettext_lazy("attributes"),
    "total_spend": gettext_lazy("total spend"),
    "order_count": gettext_lazy("orders"),
    "last_order_at": gettext_lazy("last order"),
    "added_at": gettext_lazy("added"),
}
_COLUMNS = [f for f in LOCKABLE_FIELDS if f != "follower_remarks"]
# Strings shorter than this are only refused when a whole value equals them (a one-character
# name such as 高 would otherwise match every tag containing it).
MIN_SUBSTRING = 4


class ProtectedFieldError(Exception):
    """A body about to leave TagDesk carries a locked field's value: it is not sent."""

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(
            _("Refused by the protection lock: the body contains a customer's %(field)s.")
            % {"field": LOCKABLE_FIELDS.get(field, field)}
        )


def released_fields() -> list[str]:
    """The fields released by the lock, in catalogue order (unknown names are ignored)."""
    lock = ProtectionLock.objects.filter(pk=1).first()
    released = set(lock.released if lock else [])
    return [f for f in LOCKABLE_FIELDS if f in released]


def locked_fields() -> list[str]:
    released = set(released_fields())
    return [f for f in LOCKABLE_FIELDS if f not in released]


def set_locked_fields(
    locked: Iterable[str], *, actor: Any, source: str = AssignmentSource.MANUAL
) -> ProtectionLock:
    """Lock exactly ``locked`` and release every other lockable field (tag admins, from the
    admin). Atomic with its audit entry (``wecom.lock_changed``: who, when, the locked fields
    before and after); saving the same fields again changes nothing and writes no entry. Unknown
    field names are refused."""
    wanted = set(locked)
    unknown = sorted(wanted - set(LOCKABLE_FIELDS))
    if unknown:
        raise TaggingError(
            _("Unknown customer field: %(fields)s.") % {"fields": ", ".join(unknown)},
            code="unknown_field",
        )
    with transaction.atomic():
        lock, _created = ProtectionLock.objects.select_for_update().get_or_create(pk=1)
        before = [f for f in LOCKABLE_FIELDS if f not in set(lock.released)]
        after = [f for f in LOCKABLE_FIELDS if f in wanted]
        if before == after:
            return lock
        now = timezone.now()
        lock.released = [f for f in LOCKABLE_FIELDS if f not in wanted]
        lock.updated_at = now
        lock.updated_by = actor if getattr(actor, "pk", None) else None
        lock.save()
        # Field keys, not labels: the audit log renders them in the reader's language
        # (lock_audit_display, registered with tagging.audit_view).
        AuditEntry.objects.create(
            created_at=now,
            actor=lock.updated_by,
            action=AuditAction.WECOM_LOCK_CHANGED,
            source=source,
            object_repr="protection lock",
            before={"locked": before},
            after={"locked": after},
        )
    return lock


def lock_audit_display(entry: AuditEntry) -> None:
    """How the audit log shows a ``wecom.lock_changed`` entry (``tagging.audit_view``, in
    memory, in the reader's language): the lock's name, the fields locked before and after by
    their labels, and in ``reason`` what was locked and released."""
    before = _keys(entry.before)
    after = _keys(entry.after)
    entry.object_repr = str(_("Protection lock"))
    locked_label = str(_("locked fields"))
    entry.before = {locked_label: _labels(before)}
    entry.after = {locked_label: _labels(after)}
    parts = []
    newly_locked = [f for f in after if f not in before]
    newly_released = [f for f in before if f not in after]
    if newly_locked:
        parts.append(_("locked: %(fields)s") % {"fields": _labels(newly_locked)})
    if newly_released:
        parts.append(_("released: %(fields)s") % {"fields": _labels(newly_released)})
    entry.reason = "; ".join(parts)


def _keys(snapshot: Any) -> list[str]:
    locked = snapshot.get("locked") if isinstance(snapshot, dict) else None
    return [str(f) for f in locked] if isinstance(locked, list) else []


def _labels(fields: list[str]) -> str:
    # A field no longer in the catalogue keeps its key.
    separator = pgettext("list separator", ", ")
    return separator.join(str(LOCKABLE_FIELDS.get(f, f)) for f in fields) or "—"


def customer_data(customer_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """{customer id: the keys and released fields}: the only customer data an outbound body
    may contain. Two queries at most (customers; followers' remarks if released)."""
    ids = sorted(set(customer_ids))
    released = released_fields()
    columns = [f for f in released if f in _COLUMNS]
    out: dict[int, dict[str, Any]] = {}
    for row in Customer.objects.filter(pk__in=ids).values(*KEY_FIELDS, *columns):
        out[row["id"]] = {k: _jsonable(v) for k, v in row.items()}
    if "follower_remarks" in released:
        for data in out.values():
            data["follower_remarks"] = []
        for customer_id, remark in (
            Follower.objects.filter(customer_id__in=ids)
            .exclude(remark="")
            .order_by("customer_id", "id")
            .values_list("customer_id", "remark")
        ):
            out[customer_id]["follower_remarks"].append(remark)
    return out


def guard(
    body: Any,
    customer_ids: Iterable[int] = (),
    *,
    external_userids: Iterable[str] = (),
    allowed: Iterable[str] = (),
) -> None:
    """Raise :class:`ProtectedFieldError` if ``body`` (a JSON-able value about to be sent) holds
    a locked field's value of one of these customers (by id or external_userid): a string
    equal to it, or containing it when it has at least :data:`MIN_SUBSTRING` characters. Phones
    are also looked for without the +86 prefix. At most four small queries. Numbers and dates
    are kept out by :func:`customer_data` alone (they would match any count in a body).

    ``allowed``: strings of the body that are not customer data and are not searched — the
    names and outbound codes of the tags a webhook reports (a tag 官网 is not a leak of a
    customer whose source channel is 官网: the tag change is what the webhook is for), its own
    ids and timestamps. The caller takes them from the database, never from the body."""
    ids = set(customer_ids)
    externals = sorted(set(external_userids))
    if externals:
        ids.update(
            Customer.objects.filter(external_userid__in=externals).values_list("pk", flat=True)
        )
    secrets = set(_locked_values(ids))
    if not secrets:
        return
    # Distinct strings only, and the customers' own external_userids (keys, always sent) are
    # not searched: a mass message names 10,000 of them.
    leaves = set(_strings(body)) - set(externals) - set(allowed)
    exact = {value: field for field, value in secrets}
    for leaf in leaves:
        if leaf in exact:
            raise ProtectedFieldError(exact[leaf])
    long_leaves = [leaf for leaf in leaves if len(leaf) >= MIN_SUBSTRING]
    for field, value in secrets:
        if len(value) >= MIN_SUBSTRING and any(value in leaf for leaf in long_leaves):
            raise ProtectedFieldError(field)


def _locked_values(ids: set[int]) -> Iterator[tuple[str, str]]:
    if not ids:
        return
    locked = locked_fields()
    textual = [f for f in locked if f in {"name", "phone", "remark", "company", "source"}]
    if textual or "attributes" in locked:
        columns = textual + (["attributes"] if "attributes" in locked else [])
        for row in Customer.objects.filter(pk__in=ids).values(*columns):
            for field in textual:
                value = row[field]
                if not value:
                    continue
                yield field, value
                if field == "phone" and value.startswith("+86"):
                    yield field, value[3:]
            # Values only: the keys (city, member_level...) are the schema, not the customer's
            # data, and a key such as "name" would refuse every body.
            for value in _values(row.get("attributes") or {}):
                if value:
                    yield "attributes", value
    if "follower_remarks" in locked:
        for remark in (
            Follower.objects.filter(customer_id__in=ids)
            .exclude(remark="")
            .values_list("remark", flat=True)
        ):
            yield "follower_remarks", remark


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple | set):
        for v in value:
            yield from _strings(v)


def _values(value: Any) -> Iterator[str]:
    """The string leaves of a JSON value, without its keys."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _values(v)
    elif isinstance(value, list | tuple | set):
        for v in value:
            yield from _values(v)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
