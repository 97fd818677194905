"""Marking customers dirty for the real-time rules (``rules.realtime`` evaluates them).

The lower half of the real-time path, split off so that the writers in ``rules.services`` (the
set-based rule diff, rule deletion) can mark the customers whose tags they change without an
import cycle (``rules.realtime`` imports ``rules.services``): the dependency index, the dirty-row
upsert and the worker wake-up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from customers.hooks import ALL_FIELDS, Change
from rules import dsl
from rules.models import Rule, RuleMode

log = logging.getLogger(__name__)

ALL = "*"
MAX_KEYS_LENGTH = 2000  # a row's key list longer than this becomes "*" (evaluate everything)
INDEX_TIMEOUT = 300  # seconds; rule saves and deletes also drop it at once


# --- dependency index -------------------------------------------------------------------------


def dependencies(node: dsl.Node) -> set[str]:
    """The keys a rule tree reads: event kinds, Customer columns, tags."""
    from rules import fields as F

    keys: set[str] = set()
    for n in dsl.walk(node):
        if isinstance(n, dsl.Attribute):
            keys.add(f"attr:{n.field.column}")
        elif isinstance(n, dsl.Event):
            keys.add(f"event:{n.selector.kind}")
        elif isinstance(n, dsl.Ratio):
            keys |= {f"event:{n.numerator.kind}", f"event:{n.denominator.kind}"}
        elif isinstance(n, dsl.HasTag):
            keys.add(f"tag:{n.tag_id}")
        elif isinstance(n, dsl.Rfm):
            keys.add(f"attr:{F.RFM_METRICS[n.metric]['column']}")
    return keys


def _relative(window: dsl.Window | None) -> bool:
    return window is not None and window.days is not None


def reads_relative_time(node: dsl.Node) -> bool:
    """Whether the tree can change by time passing alone (a "last N days" window, "days
    since"): the nightly run then also adds/removes tags whose window expired without an event."""
    from rules import fields as F

    for n in dsl.walk(node):
        if (
            (isinstance(n, dsl.Attribute) and n.field.type == F.DAYS)
            or (
                isinstance(n, dsl.Event)
                and (n.agg == "days_since_last" or _relative(n.selector.window))
            )
            or (
                isinstance(n, dsl.Ratio)
                and (_relative(n.numerator.window) or _relative(n.denominator.window))
            )
            or (isinstance(n, dsl.Rfm) and n.metric == "recency")
        ):
            return True
    return False


def _index_key() -> str:
    # Per database: test databases of parallel workers share one Redis.
    return f"rules:realtime:index:{connection.settings_dict['NAME']}"


def refresh_index(**_kwargs) -> frozenset[str]:
    """Recompute and cache the index (after a rule is saved or deleted, and again when that
    transaction commits), so marking never waits for a query."""
    keys: set[str] = set()
    for tree, version in Rule.objects.filter(enabled=True, mode=RuleMode.REALTIME).values_list(
        "tree", "tree_version"
    ):
        try:
            keys |= dependencies(dsl.parse_tree(tree, version))
        except dsl.RuleSyntaxError:
            continue
    cache.set(_index_key(), sorted(keys), INDEX_TIMEOUT)
    return frozenset(keys)


def on_rule_changed(**_kwargs) -> None:
    refresh_index()
    transaction.on_commit(refresh_index)


def index_keys() -> frozenset[str]:
    """Every key some enabled real-time rule reads (cached; empty when there is none)."""
    keys = cache.get(_index_key())
    return refresh_index() if keys is None else frozenset(keys)


def prime_index(keys: Iterable[str] = ()) -> None:
    """Set the cached index without a query (tests start from an empty rules table)."""
    cache.set(_index_key(), sorted(keys), INDEX_TIMEOUT)


# --- marking ----------------------------------------------------------------------------------


def _change_keys(change: Change) -> set[str]:
    if ALL_FIELDS in change.fields:
        return {ALL}
    return {f"event:{k}" for k in change.events} | {f"attr:{c}" for c in change.fields}


def on_customers_changed(changes: dict[int, Change]) -> None:
    """customers.hooks listener: events recorded, attributes saved, customers created."""
    wanted = index_keys()
    if not wanted:
        return
    mark({pk: _change_keys(change) for pk, change in changes.items()}, wanted=wanted)


def on_assignments_changed(added: list[tuple[int, int]], removed: list[tuple[int, int]]) -> None:
    """tagging.hooks listener: tags added to or removed from customers."""
    wanted = index_keys()
    if not wanted:
        return
    keys: dict[int, set[str]] = {}
    for customer_id, tag_id in (*added, *removed):
        keys.setdefault(customer_id, set()).add(f"tag:{tag_id}")
    mark(keys, wanted=wanted)


def mark(keys_by_customer: dict[int, set[str]], *, wanted: Iterable[str] | None = None) -> int:
    """Upsert dirty rows for the customers whose changed keys some real-time rule reads; wake a
    worker when the transaction commits. Returns the number of customers marked."""
    wanted = frozenset(index_keys() if wanted is None else wanted)
    rows = []
    for customer_id in sorted(keys_by_customer):
        keys = keys_by_customer[customer_id]
        relevant = {ALL} if ALL in keys else keys & wanted
        if relevant and wanted:
            rows.append((customer_id, relevant))
    if not rows:
        return 0
    now = timezone.now()
    sql = "INSERT INTO rules_dirtycustomer AS d (customer_id, since, keys, claim, claimed_at, "
    sql += "remarked_at) VALUES {values} " + upsert_clause()
    with connection.cursor() as cursor:
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            params: list = []
            for customer_id, keys in chunk:
                params += [customer_id, now, _encode(keys)]
            values = ", ".join(["(%s, %s, %s, '', NULL, NULL)"] * len(chunk))
            cursor.execute(sql.format(values=values), params)
    transaction.on_commit(schedule)
    return len(rows)


def upsert_clause() -> str:
    """The ``ON CONFLICT`` of every dirty-row insert (alias ``d``): keys merged, a claimed row
    re-marked (released, not deleted, when its batch finishes)."""
    contains = "strpos(d.keys, excluded.keys)" if _pg() else "instr(d.keys, excluded.keys)"
    return (
        "ON CONFLICT (customer_id) DO UPDATE SET "
        "keys = CASE WHEN d.keys = '*' OR excluded.keys = '*' THEN '*' "
        f"WHEN {contains} > 0 THEN d.keys "
        f"WHEN length(d.keys) > {MAX_KEYS_LENGTH} THEN '*' "
        "ELSE d.keys || excluded.keys END, "
        "remarked_at = CASE WHEN d.claim <> '' THEN coalesce(d.remarked_at, excluded.since) "
        "ELSE NULL END"
    )


def wanted_tag_keys(tag_ids: Iterable[int]) -> list[str]:
    """``tag:<id>`` keys of these tags that some enabled real-time rule reads (cached index)."""
    wanted = index_keys()
    return sorted(key for key in {f"tag:{pk}" for pk in tag_ids} if key in wanted)


def _encode(keys: set[str]) -> str:
    return ALL if ALL in keys else "," + ",".join(sorted(keys)) + ","


def _decode(text: str) -> set[str]:
    return {ALL} if text == ALL else {k for k in text.split(",") if k}


def _pg() -> bool:
    return connection.vendor == "postgresql"


def _wake_key() -> str:
    return f"rules:realtime:wake:{connection.settings_dict['NAME']}"


_enqueue: list[Callable[[float], object]] = []


def set_enqueue(enqueue: Callable[[float], object]) -> None:
    """``enqueue(countdown)`` queues the batch task (``rules.tasks``, an adapter this module must
    not import; ``RulesConfig.ready`` wires it)."""
    _enqueue[:] = [enqueue]


def schedule() -> None:
    """Enqueue one batch task per debounce window (marks within it share the task)."""
    if _enqueue and cache.add(_wake_key(), 1, timeout=30):
        try:
            _enqueue[0](settings.TAGDESK_REALTIME_DEBOUNCE)
        except Exception:  # broker down: the minute sweep picks the rows up
            cache.delete(_wake_key())
            log.exception("could not enqueue the real-time batch task")
