"""Real-time auto tags: changed customers are marked dirty and re-evaluated within seconds.

The path, end to end:

1. **Mark.** ``customers.services`` (events, attribute saves) and ``tagging.services``
   (assignment changes) call their hook registries inside their transaction; the listeners
   registered here (``RulesConfig.ready``) upsert one ``rules_dirtycustomer`` row per customer
   touched, in the same transaction, with the *dependency keys* that changed
   (``event:purchase``, ``attr:total_spend``, ``tag:12``; ``*`` for a new customer). A key no
   real-time rule reads marks nothing (the dependency index is cached, so an unrelated change
   costs no query). A crash loses nothing: the mark commits with the change.
2. **Wake.** On commit, :func:`schedule` enqueues ``rules.realtime_batch`` once per debounce
   window (a cache key): a burst of 100 events for one customer is one dirty row, one
   evaluation. A beat entry sweeps every minute in case a wake-up was lost (broker down).
3. **Claim.** A worker claims up to :data:`BATCH_SIZE` rows (``FOR UPDATE SKIP LOCKED``, a
   claim token, committed): two workers never evaluate one customer at once.
4. **Evaluate.** The enabled real-time rules whose dependencies intersect the batch's keys (and,
   transitively, the rules reading their tags) run in dependency order through
   ``rules.services.apply_rule`` with ``customer_ids``: the same compiler and the same one-
   statement diff, restricted to the customers whose keys the rule reads (plus those evaluated
   for a rule whose tag it reads).
5. **Finish,** in the evaluation's transaction: the claimed rows are deleted, except those
   re-marked meanwhile (a change during the evaluation sets ``remarked_at``), which are released
   for the next batch — so no update is lost. One ``RealtimeBatch`` row records the batch.

The nightly run stays the full reconciliation. Its ``missed`` count (real-time rules only) is the
number of changes it made for customers that had **no pending dirty mark** when it ran: their
last real-time evaluation already saw every input that changed through the hooks, so a nightly
change there is one the real-time path missed. For event-driven rules (no relative time window,
no "days since") it must be 0; for rules reading relative time it also counts windows that
expired without a new event, which only the nightly run handles by design.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from customers.hooks import ALL_FIELDS, Change
from rules import dsl
from rules.models import DirtyCustomer, RealtimeBatch, Rule, RuleMode

log = logging.getLogger(__name__)

ALL = "*"
BATCH_SIZE = 500  # customers per claimed batch: one short transaction per batch
STALE_CLAIM = dt.timedelta(minutes=5)  # a claim this old lost its worker: claim it again
MAX_KEYS_LENGTH = 2000  # a row's key list longer than this becomes "*" (evaluate everything)
RUN_FOR = 50.0  # seconds one task drains batches before handing over to a fresh task
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
    contains = "strpos(d.keys, excluded.keys)" if _pg() else "instr(d.keys, excluded.keys)"
    sql = (
        "INSERT INTO rules_dirtycustomer AS d (customer_id, since, keys, claim, claimed_at, "
        "remarked_at) VALUES {values} ON CONFLICT (customer_id) DO UPDATE SET "
        "keys = CASE WHEN d.keys = '*' OR excluded.keys = '*' THEN '*' "
        f"WHEN {contains} > 0 THEN d.keys "
        f"WHEN length(d.keys) > {MAX_KEYS_LENGTH} THEN '*' "
        "ELSE d.keys || excluded.keys END, "
        "remarked_at = CASE WHEN d.claim <> '' THEN coalesce(d.remarked_at, excluded.since) "
        "ELSE NULL END"
    )
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


# --- claiming and evaluating ------------------------------------------------------------------


@dataclass
class BatchResult:
    customers: int = 0
    rules: int = 0
    added: int = 0
    removed: int = 0
    latency_ms: int = 0
    per_rule: dict[str, list[int]] = field(default_factory=dict)


def claim(limit: int = BATCH_SIZE) -> tuple[str, dict[int, tuple[dt.datetime, set[str]]]]:
    """Claim up to ``limit`` dirty customers, oldest first, in a short committed transaction.
    Returns the claim token and ``{customer_id: (since, keys)}``."""
    token = uuid.uuid4().hex
    now = timezone.now()
    lock = " FOR UPDATE SKIP LOCKED" if _pg() else ""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "UPDATE rules_dirtycustomer SET claim = %s, claimed_at = %s WHERE customer_id IN ("
            "SELECT customer_id FROM rules_dirtycustomer WHERE claim = '' OR claimed_at < %s "
            f"ORDER BY since LIMIT %s{lock}) RETURNING customer_id, since, keys",
            [token, now, now - STALE_CLAIM, limit],
        )
        rows = cursor.fetchall()
    return token, {pk: (_aware(since), _decode(keys)) for pk, since, keys in rows}


def _aware(value) -> dt.datetime:
    if isinstance(value, str):  # SQLite returns text from a raw RETURNING
        value = dt.datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, dt.UTC)


def _release(token: str) -> None:
    DirtyCustomer.objects.filter(claim=token).update(claim="", claimed_at=None)


def _load_rules() -> list[tuple[Rule, dsl.Node, set[str]]]:
    from rules.services import dependency_order

    loaded = []
    rules = Rule.objects.select_related("tag__group").filter(enabled=True, mode=RuleMode.REALTIME)
    for rule in dependency_order(rules):
        try:
            node = dsl.parse_tree(rule.tree, rule.tree_version)
        except dsl.RuleSyntaxError:
            continue  # the nightly run records it as rejected
        loaded.append((rule, node, dependencies(node)))
    return loaded


def evaluate(token: str, batch: dict[int, tuple[dt.datetime, set[str]]]) -> BatchResult:
    """Evaluate the claimed customers and delete (or release) their rows: one transaction."""
    from rules.services import RuleInvalid, apply_rule

    started_at = timezone.now()
    result = BatchResult(customers=len(batch))
    now = started_at
    with transaction.atomic():
        evaluated: dict[int, list[int]] = {}  # tag id -> customers evaluated for its rule
        for rule, node, deps in _load_rules():
            scope = {pk for pk, (_since, keys) in batch.items() if ALL in keys or keys & deps}
            for dep in deps:
                if dep.startswith("tag:"):
                    scope.update(evaluated.get(int(dep[4:]), ()))
            if not scope:
                continue
            ids = sorted(scope)
            try:
                outcome = apply_rule(rule, now=now, customer_ids=ids, node=node)
            except RuleInvalid as exc:  # e.g. its tag was archived: the nightly run reports it
                log.warning("real-time evaluation of rule %s refused: %s", rule.pk, exc)
                continue
            evaluated[rule.tag_id] = ids
            result.rules += 1
            result.added += outcome.added
            result.removed += outcome.removed
            result.per_rule[str(rule.pk)] = [len(ids), outcome.added, outcome.removed]
        ids = list(batch)
        # Re-marked during the evaluation: released (since = the re-mark), not deleted.
        DirtyCustomer.objects.filter(claim=token, remarked_at__isnull=True).delete()
        released = DirtyCustomer.objects.filter(claim=token)
        if released.exists():
            from django.db.models import F as Col

            released.update(claim="", claimed_at=None, since=Col("remarked_at"), remarked_at=None)
        finished_at = timezone.now()
        oldest = min(since for since, _keys in batch.values())
        result.latency_ms = max(0, int((finished_at - oldest).total_seconds() * 1000))
        RealtimeBatch.objects.create(
            started_at=started_at,
            finished_at=finished_at,
            customers=len(ids),
            rules=result.rules,
            added=result.added,
            removed=result.removed,
            latency_ms=result.latency_ms,
            per_rule=result.per_rule,
        )
    return result


def process(*, run_for: float = RUN_FOR, limit: int = BATCH_SIZE) -> list[BatchResult]:
    """Claim and evaluate batches until none is left (or ``run_for`` seconds have passed)."""
    results = []
    deadline = time.monotonic() + run_for
    while time.monotonic() < deadline:
        token, batch = claim(limit)
        if not batch:
            break
        try:
            results.append(evaluate(token, batch))
        except Exception:
            _release(token)  # the rows stay dirty: the next batch retries them
            raise
    return results


def pending() -> int:
    return DirtyCustomer.objects.count()


def prune_batches(keep: dt.timedelta = dt.timedelta(days=7)) -> int:
    """Batch rows older than ``keep`` are deleted (nightly)."""
    deleted, _ = RealtimeBatch.objects.filter(started_at__lt=timezone.now() - keep).delete()
    return deleted
