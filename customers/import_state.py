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
        if connection.vendor == "postgresql":
            for pk, ext, phone, name, department_id, owner_id in _matching_postgresql(
                exts, phones, lock=lock
            ):
                found[pk] = CustomerState(
                    pk, ext, phone, name, department_id=department_id, owner_id=owner_id
                )
            held = _HeldTags(held_tag_facts)
            for customer_id, tags in _held_tags_postgresql(list(found)):
                held.give(found[customer_id], tags)
        else:
            for pk, ext, phone, name, department_id, owner_id in _matching_customers(exts, phones):
                if pk not in found:
                    found[pk] = CustomerState(
                        pk, ext, phone, name, department_id=department_id, owner_id=owner_id
                    )
            facts = held_tag_facts
            for customer_id, tag_id in _held_tags(list(found)):
                customer = found[customer_id]
                customer.tags.add(tag_id)
                group_id, corporate, exclusive = facts.get(tag_id, (None, False, False))
                if corporate:
                    customer.corporate += 1
                if exclusive and group_id is not None:
                    customer.exclusive[group_id] = tag_id
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
        for customer in found.values():
            self.add(customer)

    def add(self, customer: CustomerState) -> None:
        if customer.external_userid:
            self.by_ext[customer.external_userid] = customer
        if customer.phone:
            self.by_phone[customer.phone] = customer


class _HeldTags:
    """What a customer's held tags mean for the row checks (the set, the corporate count, the
    exclusive group → tag map), worked out once per distinct combination: customers of one
    file hold a few combinations over and over. Bounded like a cache."""

    LIMIT = 10_000

    def __init__(self, facts: Mapping[int, tuple[int | None, bool, bool]]) -> None:
        self.facts = facts
        self.memo: dict[str, tuple[frozenset[int], int, dict[int, int]]] = {}

    def give(self, customer: CustomerState, tags: str) -> None:
        """``tags``: the customer's tag ids, comma-separated in id order."""
        known = self.memo.get(tags)
        if known is None:
            if len(self.memo) >= self.LIMIT:
                self.memo.clear()
            ids = frozenset(int(pk) for pk in tags.split(","))
            corporate, exclusive = 0, {}
            for tag_id in sorted(ids):
                group_id, is_corporate, is_exclusive = self.facts.get(tag_id, (None, False, False))
                if is_corporate:
                    corporate += 1
                if is_exclusive and group_id is not None:
                    exclusive[group_id] = tag_id
            known = self.memo[tags] = (ids, corporate, exclusive)
        ids, customer.corporate, exclusive = known
        customer.tags = set(ids)
        if exclusive:
            customer.exclusive = dict(exclusive)  # the row checks replace it, never share it


# The identifiers travel as one comma-joined text each (external userids and E.164 phones hold no
# comma; ids are digits): binding a 5,000-element array literal costs the client more than the
# query. Each identifier is looked up by its own index probe (LATERAL … LIMIT 1, which the planner
# cannot flatten into a join): ``= ANY(array)`` lets it pick a hashed sequential scan of the whole
# table for a 5,000-identifier chunk, which is cheap at 100,000 customers and makes every chunk
# cost more as the table grows (a 1,000,000-row file: 200 scans of up to a million rows).
_MATCHING = """
    WITH ids AS MATERIALIZED (
        SELECT c.id FROM unnest(string_to_array(%s, ',')) AS k (v)
        CROSS JOIN LATERAL (
            SELECT id FROM customers_customer WHERE external_userid = k.v LIMIT 1
        ) AS c
        UNION
        SELECT c.id FROM unnest(string_to_array(%s, ',')) AS k (v)
        CROSS JOIN LATERAL (SELECT id FROM customers_customer WHERE phone = k.v LIMIT 1) AS c
    )
    SELECT x.id, x.external_userid, x.phone, x.name, x.department_id, x.owner_id
    FROM (SELECT id FROM ids ORDER BY id) AS i
    CROSS JOIN LATERAL (
        SELECT id, external_userid, phone, name, department_id, owner_id
        FROM customers_customer WHERE id = i.id LIMIT 1 {lock}
    ) AS x
    ORDER BY x.id
"""


def _matching_postgresql(exts: list[str], phones: list[str], *, lock: bool) -> list[tuple]:
    """(pk, external_userid, phone, name, department_id, owner_id) of the customers holding
    one of the identifiers, in one query; when ``lock``, each is locked in id order (the
    nested loop over the sorted ids takes the locks in that order)."""
    with connection.cursor() as cursor:
        cursor.execute(
            _MATCHING.format(lock="FOR UPDATE" if lock else ""),
            [",".join(exts), ",".join(phones)],
        )
        return cursor.fetchall()


def _held_tags_postgresql(customer_ids: list[int]) -> list[tuple[int, str]]:
    """(customer id, its tag ids comma-joined) of the customers holding any: one row per
    customer, not one per assignment, each by its own probe of the (customer, tag) index. A
    statement of its own, after the lock above, so that it sees what a concurrent writer that
    held the lock committed."""
    if not customer_ids:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k.id, h.tags FROM unnest(string_to_array(%s, ',')::bigint[]) AS k (id)"
            " CROSS JOIN LATERAL (SELECT string_agg(tag_id::text, ',') AS tags"
            " FROM tagging_tagassignment WHERE customer_id = k.id) AS h"
            " WHERE h.tags IS NOT NULL",
            [",".join(map(str, customer_ids))],
        )
        return cursor.fetchall()


def _matching_customers(exts: list[str], phones: list[str]) -> Iterator[tuple]:
    """(pk, external_userid, phone, name, department_id, owner_id) of customers holding one of
    the identifiers, in chunked IN lists (a customer matched by both comes twice)."""
    base = Customer.objects.order_by("pk")
    for field_name, values in (("external_userid", exts), ("phone", phones)):
        for chunk in _chunks(values):
            yield from base.filter(**{f"{field_name}__in": chunk}).values_list(
                "pk", "external_userid", "phone", "name", "department_id", "owner_id"
            )


def _held_tags(customer_ids: list[int]) -> Iterator[tuple[int, int]]:
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
    """Two imports at once could both create the same new customer; take turns (PostgreSQL).
    Also turns JIT compilation off for the import's transaction: its per-chunk statements are
    thousands of index probes each, which the planner costs above ``jit_above_cost``, and
    compiling them (~30 ms a statement) costs more than it saves."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('tagdesk.customers.import'))")
            cursor.execute("SET LOCAL jit = off")
