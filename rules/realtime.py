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
   transitively, the rules reading their tags) run in dependency order, restricted to the
   customers whose keys the rule reads (plus those evaluated for a rule whose tag it reads),
   with the same compiler and the same diff as ``rules.services.apply_rule``. On PostgreSQL the
   rules that do not read each other's writes share ONE statement (``diff.
   evaluate_and_write_pg_batch``), and the rule lock, settings and exclusive groups are taken
   once per batch: a fixed number of statements per batch (:func:`evaluate`). Elsewhere each
   rule goes through ``apply_rule(customer_ids=…)``.
5. **Finish,** in the evaluation's transaction: the claimed rows are locked in customer order
   (like an ingest's marks: no deadlock), the replaced tags of exclusive groups marked, and the
   claimed rows deleted, except those
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
from typing import Any

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
from tagging import hooks
from tagging.models import TagStatus

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


_PARSED: dict[tuple[int, int, str], tuple[dsl.Node, set[str], frozenset[int]] | None] = {}


def _parsed(rule: Rule) -> tuple[dsl.Node, set[str], frozenset[int]] | None:
    """The rule's tree, dependency keys and the tags it reads, parsed once per tree version
    (a batch reloads the rules but no longer re-parses them); None for an invalid tree."""
    import json

    key = (rule.pk, rule.tree_version, json.dumps(rule.tree, sort_keys=True))
    if key not in _PARSED:
        if len(_PARSED) > 1000:
            _PARSED.clear()
        try:
            node = dsl.parse_tree(rule.tree, rule.tree_version)
        except dsl.RuleSyntaxError:
            _PARSED[key] = None  # the nightly run records it as rejected
        else:
            _PARSED[key] = (node, dependencies(node), frozenset(dsl.referenced_tags(node)))
    return _PARSED[key]


def _load_rules() -> list[tuple[Rule, dsl.Node, set[str]]]:
    from rules.services import dependency_order

    loaded = []
    rules = Rule.objects.select_related("tag__group").filter(enabled=True, mode=RuleMode.REALTIME)
    for rule in dependency_order(rules):
        parsed = _parsed(rule)
        if parsed is not None:
            loaded.append((rule, parsed[0], parsed[1]))
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


@dataclass
class _Planned:
    rule: Rule
    node: dsl.Node
    ids: list[int]


def _plan(
    loaded: list[tuple[Rule, dsl.Node, set[str]]],
    batch: dict[int, tuple[dt.datetime, set[str]]],
    present: set[int],
) -> list[_Planned]:
    """The rules to evaluate, in dependency order, each with its customers: those whose keys it
    reads, plus those evaluated for a rule whose tag it reads."""
    planned = []
    evaluated: dict[int, list[int]] = {}  # tag id -> customers evaluated for its rule
    for rule, node, deps in loaded:
        scope = {
            pk
            for pk, (_since, keys) in batch.items()
            if pk in present and (ALL in keys or keys & deps)
        }
        for dep in deps:
            if dep.startswith("tag:"):
                scope.update(evaluated.get(int(dep[4:]), ()))
        if scope:
            ids = sorted(scope)
            evaluated[rule.tag_id] = ids
            planned.append(_Planned(rule, node, ids))
    return planned


def _same(a: Rule, b: Rule) -> bool:
    fields = ("tree", "tree_version", "enabled", "mode", "tag_id")
    return all(getattr(a, f) == getattr(b, f) for f in fields) and (
        a.tag.status,
        a.tag.group_id,
        a.tag.group.exclusive,
    ) == (b.tag.status, b.tag.group_id, b.tag.group.exclusive)


def _lock_rules(
    batch: dict[int, tuple[dt.datetime, set[str]]], present: set[int]
) -> list[_Planned]:
    """Plan the batch and lock the rules it evaluates: ONE ``SELECT … FOR UPDATE`` for all of
    them (id order, so two workers never deadlock; a nightly run of one of them and the batch
    take turns), which also re-reads them. A rule edited between the plan and the lock is
    planned again from the locked rows."""
    planned = _plan(_load_rules(), batch, present)
    locked: set[int] = set()
    for _attempt in range(3):
        wanted = sorted({p.rule.pk for p in planned} - locked)
        if not wanted:
            return planned
        fresh = {
            r.pk: r
            for r in Rule.objects.select_related("tag__group")
            .select_for_update(of=("self",))
            .filter(pk__in=wanted)
            .order_by("pk")
        }
        locked |= set(wanted)
        if all(
            p.rule.pk in fresh and _same(p.rule, fresh[p.rule.pk])
            for p in planned
            if p.rule.pk in wanted
        ):
            for p in planned:
                p.rule = fresh.get(p.rule.pk, p.rule)
            return planned
        planned = _plan(_load_rules(), batch, present)  # a rule changed meanwhile
    raise RuntimeError("the real-time rules keep changing; the batch is retried")


def _lock_groups(planned: list[_Planned]) -> dict[int, list[int]]:
    """Lock the exclusive groups the batch writes (id order; rules of one exclusive group write
    one at a time, so exclusivity holds) and return each one's tags: ONE statement."""
    groups = sorted({p.rule.tag.group_id for p in planned if p.rule.tag.group.exclusive})
    if not groups:
        return {}
    tags: dict[int, list[int]] = {pk: [] for pk in groups}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT g.id, t.id FROM tagging_taggroup g LEFT JOIN tagging_tag t ON t.group_id = g.id "
            "WHERE g.id = ANY(%s) ORDER BY g.id, t.id FOR UPDATE OF g",
            [groups],
        )
        for group_id, tag_id in cursor.fetchall():
            if tag_id is not None:
                tags[group_id].append(tag_id)
    return tags


def _statements(planned: list[_Planned], group_tags: dict[int, list[int]]) -> list[list[_Planned]]:
    """Group the planned rules into statements with the visibility of evaluating them one by
    one, in order: a rule goes after every earlier rule writing a tag it reads or a tag it
    writes too (its own; an exclusive group's), and not before an earlier rule reading a tag it
    writes. Every rule of one statement reads the snapshot from before it."""
    levels: list[int] = []
    writes: list[set[int]] = []
    reads: list[frozenset[int]] = []
    for i, p in enumerate(planned):
        tag = p.rule.tag
        written = {tag.pk} | (
            set(group_tags.get(tag.group_id, ())) if tag.group.exclusive else set()
        )
        parsed = _parsed(p.rule)
        read = parsed[2] if parsed is not None else frozenset()
        level = 0
        for j in range(i):
            if writes[j] & read or writes[j] & written:
                level = max(level, levels[j] + 1)
            elif reads[j] & written:
                level = max(level, levels[j])
        levels.append(level)
        writes.append(written)
        reads.append(read)
    grouped: list[list[_Planned]] = [[] for _ in range(max(levels, default=-1) + 1)]
    for level, p in zip(levels, planned, strict=True):
        grouped[level].append(p)
    return grouped


def _evaluate_pg(
    planned: list[_Planned], now: dt.datetime, result: BatchResult
) -> dict[int, set[str]]:
    """PostgreSQL: the batch's rules in as few statements as their tags allow (one per level of
    :func:`_statements`); the rule lock, session settings and exclusive-group lookups once per
    batch. A rule whose tag is not active (archived: it may still remove) takes the portable
    path of ``apply_rule`` on its own, between the statements. Returns the customers to mark
    dirty for the tags an exclusive group's newcomer replaced (:func:`_finish` marks them)."""
    from rules import diff
    from rules.services import RuleInvalid, apply_rule, check_batch_rule

    group_tags = _lock_groups(planned)
    index = index_keys()
    reads_tags = any(key.startswith("tag:") for key in index)
    mark_keys = sorted(
        key
        for tags in group_tags.values()
        for key in (f"tag:{pk}" for pk in tags)
        if reads_tags and key in index
    )
    runnable: list[_Planned] = []
    for p in planned:
        try:
            check_batch_rule(p.rule)
        except RuleInvalid as exc:  # e.g. its tag was archived: the nightly run reports it
            log.warning("real-time evaluation of rule %s refused: %s", p.rule.pk, exc)
            continue
        runnable.append(p)
    marks: dict[int, set[str]] = {}
    written: set[int] = set()  # the batch statements' tags with changed assignments
    evaluated: set[int] = set()  # and the customers they were evaluated for
    with connection.cursor() as cursor:
        # No JIT: a batch statement of a dozen rules costs just over jit_above_cost, and
        # compiling its ~700 expressions took 415 of its 540 ms at 1M (for a few hundred rows).
        cursor.execute(f"SET LOCAL work_mem = '{diff.PG_WORK_MEM}'; SET LOCAL jit = off")
        for statement in _statements(runnable, group_tags):
            fast = [p for p in statement if p.rule.tag.status == TagStatus.ACTIVE]
            if fast:
                outcomes, replaced = diff.evaluate_and_write_pg_batch(
                    cursor,
                    [diff.BatchRule(p.rule, p.node, p.ids) for p in fast],
                    now=now,
                    mark_keys=mark_keys,
                )
                for customer_id, key in replaced:
                    marks.setdefault(customer_id, set()).add(key)
                for p, outcome in zip(fast, outcomes, strict=True):
                    _record(result, p, outcome)
                    if outcome.added or outcome.removed or outcome.replaced:
                        written.add(p.rule.tag_id)
                        if outcome.replaced:  # its exclusive group's tags (locked above)
                            written.update(group_tags.get(p.rule.tag.group_id, ()))
                        evaluated.update(p.ids)
            for p in statement:
                if p.rule.tag.status == TagStatus.ACTIVE:
                    continue
                try:
                    _record(result, p, apply_rule(p.rule, now=now, customer_ids=p.ids, node=p.node))
                except RuleInvalid as exc:
                    log.warning("real-time evaluation of rule %s refused: %s", p.rule.pk, exc)
    if written:  # apply_rule (above) tells the hook itself; the batch statements once here
        hooks.rule_assignments_written(sorted(written), sorted(evaluated))
    return marks


def _record(result: BatchResult, p: _Planned, outcome) -> None:
    result.rules += 1
    result.added += outcome.added
    result.removed += outcome.removed
    result.per_rule[str(p.rule.pk)] = [len(p.ids), outcome.added, outcome.removed]


def _evaluate_portable(planned: list[_Planned], now: dt.datetime, result: BatchResult) -> None:
    """SQLite: each rule through ``apply_rule`` (its portable diff), in dependency order."""
    from rules.services import RuleInvalid, apply_rule

    for p in planned:
        try:
            outcome = apply_rule(p.rule, now=now, customer_ids=p.ids, node=p.node)
        except RuleInvalid as exc:  # e.g. its tag was archived: the nightly run reports it
            log.warning("real-time evaluation of rule %s refused: %s", p.rule.pk, exc)
            continue
        _record(result, p, outcome)


def evaluate(token: str, batch: dict[int, tuple[dt.datetime, set[str]]]) -> BatchResult:
    """Evaluate the claimed customers and delete (or release) their rows: one transaction.

    On PostgreSQL a batch costs a fixed number of statements, whatever its number of customers:
    the customers' key-share lock, the rules' load and lock, the exclusive groups' lock, the
    session settings, one statement per level of rules (:func:`_statements`) and three to finish
    (``tests/rules/test_realtime_queries.py`` states the bound)."""
    started_at = timezone.now()
    result = BatchResult(customers=len(batch))
    now = started_at
    with transaction.atomic():
        present = _lock_present(batch)
        marks: dict[int, set[str]] = {}
        if _pg():
            planned = _lock_rules(batch, present)
            if planned:
                marks = _evaluate_pg(planned, now, result)
        else:
            _evaluate_portable(_plan(_load_rules(), batch, present), now, result)
        _finish(token, batch, started_at, result, marks)
    return result


def _finish(
    token: str,
    batch: dict[int, tuple[dt.datetime, set[str]]],
    started_at: dt.datetime,
    result: BatchResult,
    marks: dict[int, set[str]] | None = None,
) -> None:
    """The claimed rows are deleted, except those re-marked during the evaluation
    (``remarked_at``): released for the next batch (since = the re-mark), so no change is lost.
    One RealtimeBatch row records the batch. ``marks``: the replaced tags to mark (re-marks of
    the batch's own rows). Three statements on PostgreSQL (four with marks)."""
    finished_at = timezone.now()
    oldest = min(since for since, _keys in batch.values())
    result.latency_ms = max(0, int((finished_at - oldest).total_seconds() * 1000))
    fields: dict[str, Any] = {
        "started_at": started_at,
        "finished_at": finished_at,
        "customers": len(batch),
        "rules": result.rules,
        "added": result.added,
        "removed": result.removed,
        "latency_ms": result.latency_ms,
        "per_rule": result.per_rule,
    }
    if not _pg():
        DirtyCustomer.objects.filter(claim=token, remarked_at__isnull=True).delete()
        released = DirtyCustomer.objects.filter(claim=token)
        if released.exists():
            from django.db.models import F as Col

            released.update(claim="", claimed_at=None, since=Col("remarked_at"), remarked_at=None)
        RealtimeBatch.objects.create(**fields)
        return
    import json

    with connection.cursor() as cursor:
        # The batch's dirty rows locked in customer order before any is written, like every
        # marking writer (an ingest upserts its customers' rows in order): no deadlock.
        # Every statement finds the rows by primary key: under constant churn the table holds
        # far more dead rows than live ones (470,000 to 540 after the 1M bench), so a scan on
        # ``claim`` alone read the whole table three times a batch.
        ids = sorted(batch)
        cursor.execute(
            "SELECT customer_id FROM rules_dirtycustomer WHERE customer_id = ANY(%s) "
            "AND claim = %s ORDER BY customer_id FOR UPDATE",
            [ids, token],
        )
        if marks:  # the replaced tags: re-marks of the batch's own (claimed) rows
            mark(marks, wanted={key for keys in marks.values() for key in keys})
        # Two statements, not one: a re-mark committed while the DELETE runs makes it skip the
        # row (it re-checks the new version), and only a later statement's snapshot sees the
        # re-mark to release the row (one statement would leave it claimed until it went stale).
        cursor.execute(
            "DELETE FROM rules_dirtycustomer WHERE customer_id = ANY(%s) AND claim = %s "
            "AND remarked_at IS NULL",
            [ids, token],
        )
        cursor.execute(
            "WITH released AS (UPDATE rules_dirtycustomer SET claim = '', claimed_at = NULL, "
            "since = remarked_at, remarked_at = NULL "
            "WHERE customer_id = ANY(%(ids)s) AND claim = %(token)s "
            "AND remarked_at IS NOT NULL) "
            "INSERT INTO rules_realtimebatch (started_at, finished_at, customers, rules, added, "
            "removed, latency_ms, per_rule) VALUES (%(started_at)s, %(finished_at)s, "
            "%(customers)s, %(rules)s, %(added)s, %(removed)s, %(latency_ms)s, %(per_rule)s::jsonb)",
            {"token": token, "ids": ids, **fields, "per_rule": json.dumps(fields["per_rule"])},
        )


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
