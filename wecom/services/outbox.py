"""Assignments to WeCom: the outbox (docs/wecom.md#what-syncs--同步内容).

Every TagDesk assignment change on a synced tag writes, in the change's own transaction, one
outbox row per WeCom relationship (follower, customer) of the customer — mark_tag handles one
relationship per call. The worker (:func:`drain`) claims rows with ``SELECT … FOR UPDATE SKIP
LOCKED``, serialises each relationship with a transaction-scoped advisory lock (PostgreSQL), and
sends the relationship's *final* state: tags TagDesk holds that WeCom lacks are added, synced tags
WeCom holds that TagDesk dropped are removed, in one call. A call retried after a crash therefore
sends the same state again and nothing more. Calls are rate-limited for the whole corp through
the shared cache; transient errors (-1, 45009, HTTP 5xx, timeouts) back off and retry, others go
to the dead letters with WeCom's errcode.

Groups with a sync delay (docs/wecom.md#sync-delay--同步延迟) get rows of their own, held until
their due time: the row's ``next_attempt_at`` is its hold, and every later row of its
relationship gets at least that hold (``delays.wait_behind_holds``), so the claim's due filter
keeps them back and rows of one relationship still go out in order, with no extra condition in
the claim. A send leaves the tags of those waiting rows, and of changes an operator cancelled
(``WecomWithheld``), as WeCom holds them.

Rows a rule run wrote for an auto tag WeCom has no rule-group tag for yet name it
(``change["tags"]``) and wait for the strategy push rather than go without it
(:func:`_wait_for_push`, :func:`release_waiting`; docs/wecom.md, rule-group tags).
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from tagging.models import TagAssignment
from wecom.client import INVALID_TAG, Wecom, WecomError, is_enabled
from wecom.models import (
    OutboxStatus,
    WecomOutbox,
    WecomRelation,
    WecomRelationTag,
    WecomWithheld,
)
from wecom.services import common, delays, sql
from wecom.services.common import (
    SyncedTag,
    managed_wecom_ids,
    pending_strategy_tags,
    record_issue,
    synced_tag_info,
    synced_tag_map,
)
from wecom.services.protection import ProtectedFieldError, guard

CLAIM_WINDOW = 20
# Rows naming an auto tag WeCom does not have yet wait for its push this long at most, retried
# this often (docs/wecom.md, rule-group tags).
PUSH_WAIT_SECONDS = 120
PUSH_RETRY_SECONDS = 5
RELEASE_CHUNK = 1000


# --- enqueueing ---------------------------------------------------------------------------------


def on_assignments_changed(added: list[tuple[int, int]], removed: list[tuple[int, int]]) -> int:
    """Behind the tagging hook (``wecom.tasks.assignments_listener``): runs inside the
    assignment service's transaction and returns the rows written. No query at all while the
    integration is off."""
    if not is_enabled():
        return 0
    tag_ids = {t for _c, t in added} | {t for _c, t in removed}
    info = synced_tag_info(tag_ids)
    if not info:
        return 0
    changes: dict[int, dict[str, list[int]]] = defaultdict(lambda: {"add": [], "remove": []})
    for c, t in added:
        if t in info:
            changes[c]["add"].append(t)
    for c, t in removed:
        if t in info:
            changes[c]["remove"].append(t)
    _forget_withheld(changes)
    return enqueue_customers(changes, info)


def _forget_withheld(changes: dict[int, dict[str, list[int]]]) -> None:
    """A new change of a tag on a customer is a new decision: what an operator cancelled for
    that tag there no longer holds it back. One query (two when something was withheld)."""
    tag_ids = {t for change in changes.values() for op in ("add", "remove") for t in change[op]}
    found = WecomWithheld.objects.filter(customer_id__in=list(changes), tag_id__in=tag_ids)
    stale = [
        pk
        for pk, c, t in found.values_list("pk", "customer_id", "tag_id")
        if t in changes[c]["add"] or t in changes[c]["remove"]
    ]
    if stale:
        WecomWithheld.objects.filter(pk__in=stale).delete()


def enqueue_customers(changes: dict[int, dict], info: dict[int, SyncedTag] | None = None) -> int:
    """One row per relationship of each customer in ``changes`` ({customer_id: change}), the
    changes of each delayed group in rows of their own, held until the group's delay has passed
    (``info``: :func:`synced_tag_info` of the tags, read here unless given). Returns the number
    of rows written (the caller's adapter schedules a drain)."""
    if not changes:
        return 0
    if info is None:
        info = synced_tag_info(
            {
                t
                for change in changes.values()
                for op in ("add", "remove")
                for t in change.get(op, ())
            }
        )
    now = timezone.now()
    ids = list(changes)
    written = 0
    for start in range(0, len(ids), 5000):
        rows = []
        for customer_id in ids[start : start + 5000]:
            parts = _split_by_delay(changes[customer_id], info)
            waits = delays.chain_holds([delay for _g, delay in parts])
            for seq, (((group_id, delay), change), wait) in enumerate(
                zip(parts.items(), waits, strict=True)
            ):
                held = sql.when(now + timedelta(minutes=delay)) if delay else None
                next_at = sql.when(now + timedelta(minutes=wait))
                rows.append((customer_id, seq, change, group_id, held, next_at))
        written += _insert_outbox(
            _CUSTOMER_PARTS, rows, "r.customer_id = p.customer_id", "SELECT customer_id FROM p", now
        )
    return written


# The rows an INSERT … SELECT turns into outbox rows, one per relationship each selects.
_CUSTOMER_PARTS = [
    ("customer_id", "bigint"),
    ("seq", "integer"),
    ("change", "jsonb"),
    ("held_group_id", "bigint"),
    ("held_until", "timestamptz"),
    ("next_at", "timestamptz"),
]
_RELATIONS = [("relation_id", "bigint"), ("seq", "integer"), ("change", "jsonb")]


def _insert_outbox(columns: list, rows: list, join: str, customers: str, now) -> int:
    """One ``INSERT … SELECT`` of the outbox rows for ``rows`` (``columns``: customer parts,
    one row per relationship of the customer, or relationships), in the order the per-row code
    wrote them (relationship id, then part; or the order given), each due no earlier than the
    holds already queued on its relationship (``delays.latest_holds_sql`` of ``customers``,
    the SQL of their customer ids; ``join`` relates ``r``, the relationship, to ``p``)."""
    if not rows:
        return 0
    source, params = sql.rows_source(columns, rows)
    names = {name for name, _k in columns}
    held_group = "p.held_group_id" if "held_group_id" in names else "NULL"
    held_until = "p.held_until" if "held_until" in names else "NULL"
    next_at = "p.next_at" if "next_at" in names else "%s"
    order = "r.id, p.seq" if "customer_id" in names else "p.seq"
    # The WITH inside the INSERT: SQLite's driver counts the rows of a statement that starts
    # with INSERT only.
    statement = f"""
        INSERT INTO wecom_wecomoutbox
            (userid, external_userid, customer_id, change, status, attempts, next_attempt_at,
             error, created_at, held_group_id, held_until)
        WITH p AS ({source}),
             h AS ({delays.latest_holds_sql(customers)})
        SELECT r.userid, r.external_userid, r.customer_id, p.change, %s, 0,
               {sql.greatest(next_at, "COALESCE(h.until, " + next_at + ")")},
               '', %s, {held_group}, {held_until}
        FROM p
        JOIN wecom_wecomrelation r ON {join}
        LEFT JOIN h ON h.userid = r.userid AND h.external_userid = r.external_userid
        ORDER BY {order}
    """
    stamp = sql.param(now)
    args = [*params, stamp, OutboxStatus.PENDING]
    if next_at == "%s":
        args += [stamp, stamp]
    args.append(stamp)
    with connection.cursor() as cursor:
        cursor.execute(statement, args)
        return max(cursor.rowcount, 0)


def _split_by_delay(change: dict, info: dict[int, SyncedTag]) -> dict[tuple[int | None, int], dict]:
    """{(delayed group id or None, delay minutes): the part of ``change`` it holds}; the tags of
    groups without a delay stay together (one row, as before delays existed) and come first: a
    row behind a held one waits for it, and one change has no order among its groups."""
    if not any(
        info[t].delay_minutes for op in ("add", "remove") for t in change.get(op, ()) if t in info
    ):
        return {(None, 0): change}
    parts: dict[tuple[int | None, int], dict] = {(None, 0): {"add": [], "remove": []}}
    for op in ("add", "remove"):
        for t in change.get(op, ()):
            tag = info.get(t)
            key = (tag.group_id, tag.delay_minutes) if tag and tag.delay_minutes else (None, 0)
            parts.setdefault(key, {"add": [], "remove": []})[op].append(t)
    if not any(parts[(None, 0)].values()):
        del parts[(None, 0)]
    return parts


def enqueue_relations(
    relations: Iterable[WecomRelation], reason: str, *, tags: list[int] | None = None
) -> int:
    """Rows for these relationships (a sync, repair or rule run found them different from
    TagDesk). ``tags``: auto tags WeCom does not have yet that the rows wait for (``_send``)."""
    # A queryset (the strategy comparison's, up to every relationship) is read as ids only.
    ids = (
        relations.values_list("pk", flat=True)
        if isinstance(relations, QuerySet)
        else [r.pk for r in relations]
    )
    return enqueue_relation_ids(ids, reason, tags=tags)


def enqueue_relation_ids(
    relation_ids: Iterable[int], reason: str, *, tags: list[int] | None = None
) -> int:
    """:func:`enqueue_relations` by relationship id, in the order given, one statement per
    5,000."""
    ids = list(relation_ids)
    now = timezone.now()
    change: dict = {"reason": reason, "tags": tags} if tags else {"reason": reason}
    return sum(
        _insert_outbox(
            _RELATIONS,
            [(pk, start + i, change) for i, pk in enumerate(ids[start : start + 5000])],
            "r.id = p.relation_id",
            "SELECT r0.customer_id FROM wecom_wecomrelation r0 JOIN p ON r0.id = p.relation_id",
            now,
        )
        for start in range(0, len(ids), 5000)
    )


# --- the relationship's final state ---------------------------------------------------------


def desired_tags(
    customer_ids: Iterable[int], links: dict[int, str] | None = None
) -> dict[int, set[str]]:
    """{customer_id: WeCom ids of the synced tags TagDesk gives the customer}; ``links`` is
    {tag id: WeCom id} of the synced tags (read here unless given)."""
    if links is None:
        links = synced_tag_map()
    out: dict[int, set[str]] = defaultdict(set)
    ids = list(customer_ids)
    for start in range(0, len(ids), 5000):
        # A customer holds a few tags, the library thousands: filter the links here rather
        # than sending every linked tag id with each query (the drain asks per relationship).
        for c, t in TagAssignment.objects.filter(
            customer_id__in=ids[start : start + 5000]
        ).values_list("customer_id", "tag_id"):
            if t in links:
                out[c].add(links[t])
    return out


def leave_frozen(
    desired: set[str], known: set[str], frozen: set[int], links: dict[int, str]
) -> set[str]:
    """``desired`` with the tags of held or cancelled changes (``frozen``, TagDesk tag ids from
    ``delays.frozen_tags``) left as WeCom holds them (``known``)."""
    if not frozen:
        return desired
    kept = {links[t] for t in frozen if t in links}
    return (desired - kept) | (known & kept)


def tags_delta(known: set[str], desired: set[str], managed: set[str]):
    """(add, remove) turning what WeCom holds for a relationship (``known``) into ``desired``;
    only synced tags (``managed``) are ever removed: tags TagDesk does not know are left alone."""
    return sorted(desired - known), sorted((known & managed) - desired)


# --- draining -----------------------------------------------------------------------------------


def drain(wecom: Wecom, *, deadline: float | None = None) -> dict[str, int]:
    """Send every due row; returns counts (sent, unchanged, retried, dead, and tags_gone: tags
    found deleted in WeCom, after which the library wants a sync; waiting_for_push:
    relationships postponed for auto tags WeCom does not have yet, which want a strategy push). Stops at ``deadline`` (a
    ``time.monotonic()`` value) if given. Safe to run in many workers.

    On PostgreSQL, outside a transaction, ``WECOM_OUTBOX_CONCURRENCY`` senders run side by side,
    each in its own thread with its own connection: one synchronous sender spends most of its
    time waiting for WeCom's answer and cannot reach the rate limit. Each relationship is still
    sent by one sender at a time (its advisory lock) in the order of its rows, and each send
    commits alone, so a crash repeats at most the calls in flight. Inside a transaction (tests,
    a caller's atomic block) the rows it wrote are visible to this connection only: one sender.
    """
    senders = settings.WECOM_OUTBOX_CONCURRENCY
    if senders <= 1 or connection.vendor != "postgresql" or connection.in_atomic_block:
        return _drain_serially(wecom, deadline)
    with ThreadPoolExecutor(senders, thread_name_prefix="wecom-outbox") as pool:
        results = list(pool.map(lambda _i: _sender(wecom, deadline), range(senders)))
    counts: dict[str, int] = {"sent": 0, "unchanged": 0, "retried": 0, "dead": 0}
    for result in results:
        for key, value in result.items():
            counts[key] = counts.get(key, 0) + value
    return counts


def _sender(wecom: Wecom, deadline: float | None) -> dict[str, int]:
    try:
        return _drain_serially(wecom, deadline)
    finally:
        connection.close()  # this thread's own connection


def _drain_serially(wecom: Wecom, deadline: float | None) -> dict[str, int]:
    counts = {"sent": 0, "unchanged": 0, "retried": 0, "dead": 0}
    library = _Library()
    while deadline is None or time.monotonic() < deadline:
        outcome = _drain_one(wecom, library)
        if outcome is None:
            break
        if outcome != "waiting":
            counts[outcome] += 1
    if library.gone:
        counts["tags_gone"] = library.gone
    if library.waiting:  # the caller starts the strategy push they wait for
        counts["waiting_for_push"] = library.waiting
    return counts


def next_due_in() -> float | None:
    """Seconds until the next pending row is due (None: nothing pending). A held row, and every
    row behind one, is due when the hold ends (its ``next_attempt_at``)."""
    row = (
        WecomOutbox.objects.filter(status=OutboxStatus.PENDING)
        .order_by("next_attempt_at")
        .values_list("next_attempt_at", flat=True)
        .first()
    )
    if row is None:
        return None
    return max((row - timezone.now()).total_seconds(), 0.0)


class _Library:
    """The synced tags, read once per few seconds of a drain rather than per relationship. A
    tag linked meanwhile is sent by the rows its push enqueues; one deleted meanwhile is
    answered 40068 and left out (``_mark``). ``pending``: auto tags not yet pushed to the 规则组
    (``common.pending_strategy_tags``), which rows naming them wait for."""

    TTL = 5.0

    def __init__(self) -> None:
        self.read_at = -self.TTL
        self.gone = 0
        self.waiting = 0

    def current(self) -> tuple[dict[int, str], set[str]]:
        if time.monotonic() - self.read_at >= self.TTL:
            self.links = synced_tag_map()
            self.managed = managed_wecom_ids()
            self.pending = pending_strategy_tags()
            self.read_at = time.monotonic()
        return self.links, self.managed


def _drain_one(wecom: Wecom, library: _Library) -> str | None:
    with transaction.atomic():
        now = timezone.now()
        # Held rows, and those behind them, are due when their hold ends (next_attempt_at):
        # the window stays full of sendable rows however many changes wait for review.
        claimable = (
            WecomOutbox.objects.select_for_update(skip_locked=True)
            .filter(status=OutboxStatus.PENDING, next_attempt_at__lte=now)
            .exclude(held_until__gt=now)  # its own hold, whatever set next_attempt_at
        )
        candidates = list(
            claimable.order_by("id").values_list("userid", "external_userid")[:CLAIM_WINDOW]
        )
        if not candidates:
            return None
        key = next((k for k in dict.fromkeys(candidates) if _lock_relation(*k)), None)
        if key is None:
            return None  # every due relationship is being sent by another worker
        rows = list(claimable.filter(userid=key[0], external_userid=key[1]).order_by("id"))
        if not rows:
            return None
        return _send(wecom, key, rows, library)


def _lock_relation(userid: str, external_userid: str) -> bool:
    if connection.vendor != "postgresql":
        return True  # SQLite serialises writers itself
    digest = hashlib.blake2b(f"{userid}\0{external_userid}".encode(), digest_size=8).digest()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_try_advisory_xact_lock(%s)", [int.from_bytes(digest, "big", signed=True)]
        )
        return bool(cursor.fetchone()[0])


def _send(wecom: Wecom, key: tuple[str, str], rows: list[WecomOutbox], library: _Library) -> str:
    ids = [r.pk for r in rows]
    relation = WecomRelation.objects.filter(userid=key[0], external_userid=key[1]).first()
    if relation is None:
        _finish(ids, OutboxStatus.DONE, error=_("The relationship no longer exists in WeCom."))
        return "unchanged"
    links, managed = library.current()
    if _wait_for_push(rows, library):
        return "waiting"
    desired = desired_tags([relation.customer_id], links).get(relation.customer_id, set())
    known = set(relation.tags.values_list("wecom_tag_id", flat=True))
    frozen = delays.frozen_tags(relation=key).get(key, set())
    add, remove = tags_delta(known, leave_frozen(desired, known, frozen, links), managed)
    if not add and not remove:
        _finish(ids, OutboxStatus.DONE, sent={})
        return "unchanged"
    body = {"userid": key[0], "external_userid": key[1], "add_tag": add, "remove_tag": remove}
    try:
        guard(body, [relation.customer_id])
    except ProtectedFieldError as exc:
        _finish(ids, OutboxStatus.DEAD, error=str(exc))
        return "dead"
    try:
        library.gone += _mark(wecom, relation, add, remove)
    except WecomError as exc:
        attempts = max(r.attempts for r in rows) + 1
        if exc.transient and attempts < settings.WECOM_OUTBOX_MAX_ATTEMPTS:
            delay = settings.WECOM_OUTBOX_RETRY_SECONDS * 2 ** (attempts - 1)
            WecomOutbox.objects.filter(pk__in=ids).update(
                attempts=attempts,
                next_attempt_at=timezone.now() + timedelta(seconds=min(delay, 3600)),
                errcode=exc.errcode,
                error=str(exc)[:255],
            )
            return "retried"
        WecomOutbox.objects.filter(pk__in=ids).update(attempts=attempts)
        _finish(ids, OutboxStatus.DEAD, errcode=exc.errcode, error=str(exc))
        return "dead"
    _finish(ids, OutboxStatus.DONE, sent={"add": add, "remove": remove})
    return "sent"


def _wait_for_push(rows: list[WecomOutbox], library: _Library) -> bool:
    """Rows naming an auto tag that has no rule-group tag in WeCom yet wait for its push (the
    drain's caller starts one) rather than go without it: postponed by
    :data:`PUSH_RETRY_SECONDS`, no attempt counted, for at most :data:`PUSH_WAIT_SECONDS` after
    the oldest was queued. Then they go with what WeCom has; the push queues the tag's
    relationships once it links it. No query unless the rows wait (then one UPDATE)."""
    waiting = library.pending & {t for r in rows for t in _named_tags(r.change)}
    if not waiting:
        return False
    now = timezone.now()
    if (now - min(r.created_at for r in rows)).total_seconds() >= PUSH_WAIT_SECONDS:
        return False
    WecomOutbox.objects.filter(pk__in=[r.pk for r in rows]).update(
        next_attempt_at=now + timedelta(seconds=PUSH_RETRY_SECONDS),
        error=_("Waiting for WeCom to create rule-group tags (TagDesk tags %(tags)s).")
        % {"tags": ", ".join(str(t) for t in sorted(waiting))},
    )
    library.waiting += 1
    return True


def release_waiting() -> int:
    """After a strategy push: the rows that waited for auto tags WeCom now has are due at once
    (or when the holds before them end). Returns the relationships released. One query when
    none waited; else the tags still pending and two per :data:`RELEASE_CHUNK` released."""
    waited = list(
        WecomOutbox.objects.filter(status=OutboxStatus.PENDING, change__has_key="tags")
        .exclude(error="")
        .values_list("userid", "external_userid", "change")
    )
    if not waited:
        return 0
    pending = pending_strategy_tags()
    keys = sorted(
        {(u, e) for u, e, change in waited if not (set(change.get("tags", ())) & pending)}
    )
    for start in range(0, len(keys), RELEASE_CHUNK):  # bounded IN lists (SQLite's 32,766)
        delays.due_again(set(keys[start : start + RELEASE_CHUNK]))
    return len(keys)


def _named_tags(change: dict | None) -> set[int]:
    change = change or {}
    return {t for key in ("add", "remove", "tags") for t in change.get(key, ())}


def _mark(wecom: Wecom, relation: WecomRelation, add: list[str], remove: list[str]) -> int:
    """mark_tag, then record what WeCom now holds. A tag deleted in WeCom while the change was
    queued (40068) is logged and left out, and the rest is sent again; returns how many such
    tags there were."""
    gone: list[str] = []
    throttle()
    try:
        wecom.mark_tag(relation.userid, relation.external_userid, add, remove)
    except WecomError as exc:
        if exc.errcode != INVALID_TAG:
            raise
        existing = {t["id"] for g in wecom.corp_tag_list([*add, *remove]) for t in g.get("tag", [])}
        gone = sorted(set(add + remove) - existing)
        for wecom_id in gone:
            record_issue(
                "tag",
                wecom_id,
                "deleted_in_wecom",
                _("Tag %(id)s was deleted in WeCom while a change was queued; left out.")
                % {"id": wecom_id},
            )
        WecomRelationTag.objects.filter(wecom_tag_id__in=gone).delete()
        add = [t for t in add if t in existing]
        remove = [t for t in remove if t in existing]
        if add or remove:
            throttle()
            wecom.mark_tag(relation.userid, relation.external_userid, add, remove)
    WecomRelationTag.objects.filter(relation=relation, wecom_tag_id__in=remove).delete()
    WecomRelationTag.objects.bulk_create(
        [WecomRelationTag(relation=relation, wecom_tag_id=t) for t in add], ignore_conflicts=True
    )
    return len(gone)


def _finish(ids, status, *, errcode=None, error="", sent=None) -> None:
    WecomOutbox.objects.filter(pk__in=ids).update(
        status=status,
        errcode=errcode,
        error=str(error)[:255],
        sent=sent,
        finished_at=timezone.now(),
    )


def throttle() -> None:
    """Block until this mark_tag call fits in ``WECOM_OUTBOX_RATE`` calls per second for the
    corp, all workers together."""
    common.throttle(settings.WECOM_OUTBOX_RATE, "mark_tag")


# --- dead letters --------------------------------------------------------------------------------


@transaction.atomic
def retry_dead(ids: Iterable[int]) -> int:
    """Put dead letters back in the queue (admin action); returns how many."""
    return WecomOutbox.objects.filter(pk__in=list(ids), status=OutboxStatus.DEAD).update(
        status=OutboxStatus.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        finished_at=None,
    )
