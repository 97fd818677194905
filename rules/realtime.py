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
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from rules import dsl
from rules.dirty import (  # noqa: F401 -- the real-time API: marking lives in rules.dirty
    ALL,
    _decode,
    _pg,
    _wake_key,
    dependencies,
    index_keys,
    mark,
    on_assignments_changed,
    on_customers_changed,
    on_rule_changed,
    prime_index,
    reads_relative_time,
    refresh_index,
    schedule,
    set_enqueue,
    upsert_clause,
    wanted_tag_keys,
)
from rules.models import DirtyCustomer, RealtimeBatch, Rule, RuleMode

log = logging.getLogger(__name__)

BATCH_SIZE = 500  # customers per claimed batch: one short transaction per batch
STALE_CLAIM = dt.timedelta(minutes=5)  # a claim this old lost its worker: claim it again
RUN_FOR = 50.0  # seconds one task drains batches before handing over to a fresh task

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


def _lock_present(batch: dict[int, tuple[dt.datetime, set[str]]]) -> set[int]:
    """The batch's customers that still exist, key-share locked until the batch commits.

    An erasure (``customers.services.erase_customers``) locks its customers FOR UPDATE and
    deletes them with their dirty rows: it and a batch take turns. A batch that waited for an
    erasure sees the customers gone and leaves them out (no assignment for an erased customer,
    no foreign-key failure for the rest of the batch); an erasure that waits for a batch deletes
    what the batch wrote. Ids in order, like every customer writer, so no deadlock."""
    from customers.models import Customer

    ids = sorted(batch)
    if not _pg():
        return set(Customer.objects.filter(pk__in=ids).values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM customers_customer WHERE id = ANY(%s) ORDER BY id FOR KEY SHARE",
            [ids],
        )
        return {row[0] for row in cursor.fetchall()}


def evaluate(token: str, batch: dict[int, tuple[dt.datetime, set[str]]]) -> BatchResult:
    """Evaluate the claimed customers and delete (or release) their rows: one transaction."""
    from rules.services import RuleInvalid, apply_rule

    started_at = timezone.now()
    result = BatchResult(customers=len(batch))
    now = started_at
    with transaction.atomic():
        present = _lock_present(batch)
        evaluated: dict[int, list[int]] = {}  # tag id -> customers evaluated for its rule
        for rule, node, deps in _load_rules():
            scope = {
                pk
                for pk, (_since, keys) in batch.items()
                if pk in present and (ALL in keys or keys & deps)
            }
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
