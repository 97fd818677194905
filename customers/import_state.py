"""The database side of an import batch (docs/import-export.md#identity): which existing
customers the batch's identifiers name, whether the importer sees and may change each, and which
tags they hold — a few set queries per batch, never one per row (``customers.importing`` decides
what to do with them)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from django.db import connection
from django.db.models import Exists, OuterRef

from customers.import_plan import CustomerState
from customers.models import Customer
from permissions import policy
from tagging.models import TagAssignment

CHUNK = 5000  # identifiers per lookup query


class StateIndex:
    """Existing customers (and their held tags) for the identifiers of a batch: a few queries."""

    def __init__(
        self,
        user: Any,
        *,
        exts: list[str],
        phones: list[str],
        edits_all: bool,
        held_tag_facts: Mapping[int, tuple[int | None, bool, bool]],
        lock: bool,
    ) -> None:
        self.by_ext: dict[str, CustomerState] = {}
        self.by_phone: dict[str, CustomerState] = {}
        self.touched: dict[int, CustomerState] = {}
        found: dict[int, CustomerState] = {}
        for pk, ext, phone, name, department_id, owner_id in _matching_customers(
            exts, phones, lock=lock
        ):
            if pk not in found:
                found[pk] = CustomerState(
                    pk, ext, phone, name, department_id=department_id, owner_id=owner_id
                )
        if found and not edits_all:
            # {pk: editable} of the matched customers the importer sees (view shares: False).
            scope: dict[int, bool] = {}
            editable = policy.editable_customers(user).filter(pk=OuterRef("pk"))
            for chunk in _chunks(list(found)):
                scope.update(
                    policy.visible_customers(user)
                    .filter(pk__in=chunk)
                    .annotate(editable=Exists(editable))
                    .values_list("pk", "editable")
                )
            for pk, customer in found.items():
                customer.visible = pk in scope
                customer.editable = scope.get(pk, False)
        facts = held_tag_facts
        for customer_id, tag_id in _held_tags(list(found)):
            customer = found[customer_id]
            customer.tags.add(tag_id)
            group_id, corporate, exclusive = facts.get(tag_id, (None, False, False))
            if corporate:
                customer.corporate += 1
            if exclusive and group_id is not None:
                customer.exclusive[group_id] = tag_id
        for customer in found.values():
            self.add(customer)

    def add(self, customer: CustomerState) -> None:
        if customer.external_userid:
            self.by_ext[customer.external_userid] = customer
        if customer.phone:
            self.by_phone[customer.phone] = customer


def _matching_customers(exts: list[str], phones: list[str], *, lock: bool) -> Iterator[tuple]:
    """(pk, external_userid, phone, name, department_id, owner_id) of customers holding one of
    the identifiers. One
    query with array parameters on PostgreSQL (locking the rows when ``lock``); chunked IN
    lists elsewhere."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, external_userid, phone, name, department_id, owner_id"
                " FROM customers_customer"
                " WHERE external_userid = ANY(%s) OR phone = ANY(%s) ORDER BY id"
                + (" FOR UPDATE" if lock else ""),
                [exts, phones],
            )
            yield from cursor.fetchall()
        return
    base = Customer.objects.order_by("pk")
    for field_name, values in (("external_userid", exts), ("phone", phones)):
        for chunk in _chunks(values):
            yield from base.filter(**{f"{field_name}__in": chunk}).values_list(
                "pk", "external_userid", "phone", "name", "department_id", "owner_id"
            )


def _held_tags(customer_ids: list[int]) -> Iterator[tuple[int, int]]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT customer_id, tag_id FROM tagging_tagassignment WHERE customer_id = ANY(%s)",
                [customer_ids],
            )
            yield from cursor.fetchall()
        return
    for chunk in _chunks(customer_ids):
        yield from TagAssignment.objects.filter(customer_id__in=chunk).values_list(
            "customer_id", "tag_id"
        )


def _chunks(values: list, size: int = CHUNK) -> Iterator[list]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


class UpdatedIds:
    """The existing customers an import has changed so far, so that one changed by several
    chunks of a file counts as updated once, as in one pass. On PostgreSQL a temporary table
    (identifiers only, spilled to the database: a million changed customers cost the worker
    nothing); elsewhere a set."""

    def __init__(self) -> None:
        self._seen: set[int] = set()
        self._ready = False

    def count_new(self, ids: list[int]) -> int:
        """Record ``ids``; return how many were not recorded before."""
        if not ids:
            return 0
        if connection.vendor != "postgresql":
            new = set(ids) - self._seen
            self._seen |= new
            return len(new)
        with connection.cursor() as cursor:
            if not self._ready:
                cursor.execute(
                    "CREATE TEMP TABLE IF NOT EXISTS tagdesk_import_updated"
                    " (id bigint PRIMARY KEY) ON COMMIT DELETE ROWS"
                )
                cursor.execute("TRUNCATE tagdesk_import_updated")
                self._ready = True
            cursor.execute(
                "INSERT INTO tagdesk_import_updated SELECT unnest(%s::bigint[])"
                " ON CONFLICT DO NOTHING",
                [ids],
            )
            return cursor.rowcount


def serialise_imports() -> None:
    """Two imports at once could both create the same new customer; take turns (PostgreSQL)."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('tagdesk.customers.import'))")
