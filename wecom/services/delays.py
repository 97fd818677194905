"""Sync delays (docs/wecom.md#sync-delay--同步延迟): review, cancel or send held changes.

A group's WeCom sync rule may delay its changes (``WecomGroupRule.delay_minutes``): the outbox
writes them as rows of their own, held until their due time (``wecom.services.outbox``). Until
then whoever may edit the group (``policy.group_levels`` ≥ EDIT; tag admins) may cancel them,
so they never reach WeCom while TagDesk keeps the assignment (``WecomWithheld`` remembers it for
the outbox and the drift report), or send them at once. Both are atomic, all or nothing, and
write one ``tagging.AuditEntry`` per customer and tag.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from permissions import policy
from tagging.models import AssignmentSource, AuditAction, AuditEntry, Tag, TagKind
from wecom.models import OutboxStatus, WecomOutbox, WecomWithheld

Relation = tuple[str, str]  # (userid, external_userid)


def reviewable_groups(user: Any):
    """Corporate groups whose held changes ``user`` may review: those they may edit."""
    return policy.visible_groups(user, policy.Level.EDIT).filter(kind=TagKind.CORPORATE)


def held_changes(user: Any, *, now: datetime | None = None) -> QuerySet[WecomOutbox]:
    """Rows still held (their due time not reached) in groups ``user`` may review; for tag
    admins also those whose group is gone (``held_group`` NULL): a deletion cancels its held
    rows (:func:`cancel_for_deletion`), but not while the integration was off, nor before that
    existed, and only tag admins decide about what is left of a deleted group."""
    now = now or timezone.now()
    groups = Q(held_group__in=reviewable_groups(user).values("pk"))
    if policy.is_tag_admin(user):
        groups |= Q(held_group__isnull=True)
    return WecomOutbox.objects.filter(groups, status=OutboxStatus.PENDING, held_until__gt=now)


def cancel_held(ids: Iterable[int], *, actor: Any) -> int:
    """Cancel held rows: they never reach WeCom; TagDesk keeps the assignments; each (customer,
    tag) is recorded as withheld on that relationship until TagDesk changes it again. Refuses
    the whole batch (``policy.Denied``) if ``actor`` may not edit one of the groups. Returns the
    rows cancelled (rows no longer held are left alone). The caller drains the outbox after the
    commit: rows behind a cancelled one may now go."""
    with transaction.atomic():
        rows = _locked_held(ids, actor)
        _cancel(rows, actor, _("Cancelled during its sync delay; not sent to WeCom."))
    return len(rows)


def _cancel(
    rows: list[WecomOutbox],
    actor: Any,
    error: str,
    *,
    reason: str = "",
    source: str = AssignmentSource.MANUAL,
) -> None:
    now = timezone.now()
    reviewer = actor if getattr(actor, "pk", None) else None
    WecomOutbox.objects.filter(pk__in=[r.pk for r in rows]).update(
        status=OutboxStatus.CANCELLED,
        finished_at=now,
        reviewed_by=reviewer,
        reviewed_at=now,
        error=error,
    )
    withheld = {}
    alive = set(
        Tag.objects.filter(pk__in={t for r in rows for _a, t in _tags_of(r)}).values_list(
            "pk", flat=True
        )
    )
    for row in rows:  # later rows win: the last cancelled change of a tag is the one kept
        for added, t in _tags_of(row):
            if t not in alive:
                continue  # deleted since: nothing of it can reach WeCom anyway
            withheld[(row.userid, row.external_userid, t)] = WecomWithheld(
                customer_id=row.customer_id,
                userid=row.userid,
                external_userid=row.external_userid,
                tag_id=t,
                added=added,
                outbox=row,
                withheld_by=reviewer,
                withheld_at=now,
            )
    if withheld:
        existing = WecomWithheld.objects.filter(
            userid__in={r.userid for r in rows},
            external_userid__in={r.external_userid for r in rows},
            tag_id__in={t for _u, _e, t in withheld},
        )
        stale = [
            pk
            for pk, u, e, t in existing.values_list("pk", "userid", "external_userid", "tag_id")
            if (u, e, t) in withheld
        ]
        if stale:
            WecomWithheld.objects.filter(pk__in=stale).delete()
        WecomWithheld.objects.bulk_create(withheld.values(), batch_size=1000)
    _audit(
        [(row, _tags_of(row)) for row in rows],
        AuditAction.WECOM_CHANGE_CANCELLED,
        reviewer,
        now,
        reason=reason,
        source=source,
    )
    _recompute_holds({(r.userid, r.external_userid) for r in rows}, now)


def cancel_for_deletion(tag_ids: list[int], group_ids: list[int], actor: Any, source: str) -> int:
    """Tags or groups are being deleted (``tagging.hooks.taxonomy_deleting``, inside the
    deletion's transaction): the changes still held for them must neither reach WeCom after
    they are gone nor wait where no review page lists them. A deleted group's held rows are
    cancelled; a deleted tag leaves its group's held rows, which are cancelled when it was all
    they held and otherwise keep waiting with their other tags. Each cancelled (customer, tag)
    is audited as ``wecom.change_cancelled`` with the reason "group deleted" / "tag deleted" and
    the deleting actor. Returns the rows changed (cancelled or narrowed); the caller drains the
    outbox after the commit, for rows that waited behind them. Two queries when nothing is held
    for them (the tags' groups, the held rows)."""
    groups = set(group_ids)
    doomed = set(tag_ids)
    tag_groups = set(Tag.objects.filter(pk__in=doomed).values_list("group_id", flat=True))
    if not groups and not tag_groups:
        return 0
    rows = list(
        WecomOutbox.objects.select_for_update()
        .filter(
            status=OutboxStatus.PENDING,
            held_until__isnull=False,  # held, or due and not sent yet: nothing of it goes now
            held_group_id__in=groups | tag_groups,
        )
        .order_by("id")
    )
    if not rows:
        return 0
    whole = [r for r in rows if r.held_group_id in groups]
    narrowed: list[tuple[WecomOutbox, list[tuple[bool, int]]]] = []
    for row in rows:
        if row.held_group_id in groups:
            continue
        gone = [(added, t) for added, t in _tags_of(row) if t in doomed]
        if not gone:
            continue
        if len(gone) == len(_tags_of(row)):
            whole.append(row)
        else:
            narrowed.append((row, gone))
    reason = _("group deleted") if groups else _("tag deleted")
    error = (
        _("Cancelled: its group was deleted during its sync delay.")
        if groups
        else _("Cancelled: its tag was deleted during its sync delay.")
    )
    if whole:
        _cancel(sorted(whole, key=lambda r: r.pk), actor, error, reason=reason, source=source)
    if narrowed:
        now = timezone.now()
        for row, _gone in narrowed:
            row.change = {
                op: [t for t in (row.change or {}).get(op, ()) if t not in doomed]
                for op in ("add", "remove")
            }
        WecomOutbox.objects.bulk_update([r for r, _g in narrowed], ["change"], batch_size=1000)
        reviewer = actor if getattr(actor, "pk", None) else None
        _audit(
            narrowed,
            AuditAction.WECOM_CHANGE_CANCELLED,
            reviewer,
            now,
            reason=reason,
            source=source,
        )
    return len(whole) + len(narrowed)


def send_held_now(ids: Iterable[int], *, actor: Any) -> int:
    """End the hold of these rows now; the caller drains the outbox after the commit. Same
    permission and batch rule as :func:`cancel_held`. Returns the rows released. A row behind
    another held row of its relationship still waits for that one (order per relationship)."""
    with transaction.atomic():
        rows = _locked_held(ids, actor)
        now = timezone.now()
        WecomOutbox.objects.filter(pk__in=[r.pk for r in rows]).update(
            held_until=now, reviewed_by=actor, reviewed_at=now
        )
        _audit(
            [(row, _tags_of(row)) for row in rows], AuditAction.WECOM_CHANGE_SENT_NOW, actor, now
        )
        _recompute_holds({(r.userid, r.external_userid) for r in rows}, now)
    return len(rows)


def wait_behind_holds(rows: list[WecomOutbox], now: datetime) -> None:
    """Before ``rows`` (new, in id order) are inserted: each waits at least until the holds of
    the pending rows before it on its relationship have ended, by its ``next_attempt_at`` (the
    claim's due filter), so a relationship is sent in order. One query per 5,000 customers."""
    keys = {(r.userid, r.external_userid) for r in rows}
    customer_ids = sorted({r.customer_id for r in rows})
    holds: dict[Relation, datetime] = {}
    for start in range(0, len(customer_ids), 5000):
        for u, e, until in WecomOutbox.objects.filter(
            status=OutboxStatus.PENDING,
            held_until__gt=now,
            customer_id__in=customer_ids[start : start + 5000],
        ).values_list("userid", "external_userid", "next_attempt_at"):
            if (u, e) in keys and until > holds.get((u, e), now):
                holds[(u, e)] = until
    for row in rows:
        key = (row.userid, row.external_userid)
        if key in holds and holds[key] > row.next_attempt_at:
            row.next_attempt_at = holds[key]
        if row.held_until is not None and row.next_attempt_at > holds.get(key, now):
            holds[key] = row.next_attempt_at


def due_again(keys: set[Relation]) -> None:
    """The pending rows of these relationships are due now, or when the holds before them end
    (rows tried before keep their backoff): for rows postponed for another reason that is
    gone (the outbox's wait for a strategy push)."""
    _recompute_holds(keys, timezone.now())


def chain_holds(delays_minutes: list[int]) -> list[int]:
    """The minutes each of a relationship's new rows waits, given each row's own delay (0: not
    held), in row order: at least as long as every held row before it in the batch, as
    :func:`wait_behind_holds` makes them. The rows already queued are the caller's
    (:func:`latest_holds_sql`): the set-based outbox inserts take the later of the two."""
    out, wait = [], 0
    for delay in delays_minutes:
        due = max(delay, wait)
        out.append(due)
        if delay:
            wait = max(wait, due)
    return out


def latest_holds_sql(customers: str) -> str:
    """SQL of (userid, external_userid, until): per relationship of the customers whose ids
    ``customers`` (SQL) selects, the latest ``next_attempt_at`` of its pending rows still held
    at the statement's one parameter (now); what :func:`wait_behind_holds` reads, for an
    ``INSERT … SELECT``. Relationships holding nothing have no row."""
    return (
        "SELECT o.userid, o.external_userid, MAX(o.next_attempt_at) AS until"
        " FROM wecom_wecomoutbox o"
        f" WHERE o.status = '{OutboxStatus.PENDING}' AND o.held_until > %s"
        f" AND o.customer_id IN ({customers})"
        " GROUP BY o.userid, o.external_userid"
    )


def _recompute_holds(keys: set[Relation], now: datetime) -> None:
    """After holds ended early (sent now) or went away (cancelled): the pending rows of these
    relationships wait for the holds still before them, and no longer than that. Two queries."""
    pending = list(
        WecomOutbox.objects.filter(
            status=OutboxStatus.PENDING,
            userid__in={u for u, _e in keys},
            external_userid__in={e for _u, e in keys},
        )
        .order_by("id")
        .only("pk", "userid", "external_userid", "held_until", "next_attempt_at", "attempts")
    )
    wait: dict[Relation, datetime] = {}
    changed = []
    for row in pending:
        key = (row.userid, row.external_userid)
        if key not in keys:
            continue
        own = row.held_until if row.held_until is not None and row.held_until > now else now
        # A row tried before keeps its backoff; one never tried waited only for holds.
        floor = row.next_attempt_at if row.attempts else now
        due = max(own, wait.get(key, now), floor)
        if due != row.next_attempt_at:
            row.next_attempt_at = due
            changed.append(row)
        if row.held_until is not None and row.held_until > now:
            wait[key] = max(wait.get(key, now), due)
    if changed:
        WecomOutbox.objects.bulk_update(changed, ["next_attempt_at"], batch_size=1000)


def _locked_held(ids: Iterable[int], actor: Any) -> list[WecomOutbox]:
    """The still-held rows among ``ids``, locked against a drain; ``policy.Denied`` unless
    ``actor`` may edit every group they belong to (one query for the whole batch)."""
    rows = list(
        WecomOutbox.objects.select_for_update()
        .filter(
            pk__in=[int(i) for i in ids], status=OutboxStatus.PENDING, held_until__gt=timezone.now()
        )
        .order_by("id")
    )
    if not rows:
        return rows
    group_ids = {r.held_group_id for r in rows}
    if None in group_ids and not policy.is_tag_admin(actor):
        # The group was deleted since: only tag admins decide about what is left of it.
        raise policy.Denied(_("Only tag admins may review changes of a deleted group."))
    levels = policy.group_levels(actor, {g for g in group_ids if g is not None})
    if any(levels.get(g, policy.Level.NONE) < policy.Level.EDIT for g in group_ids if g):
        raise policy.Denied(
            _("You may only review the held changes of groups whose tags you may edit.")
        )
    return rows


def _tags_of(row: WecomOutbox) -> list[tuple[bool, int]]:
    change = row.change or {}
    return [(True, t) for t in change.get("add", ())] + [
        (False, t) for t in change.get("remove", ())
    ]


def _audit(
    items: list[tuple[WecomOutbox, list[tuple[bool, int]]]],
    action: str,
    actor: Any,
    now: datetime,
    *,
    reason: str = "",
    source: str = AssignmentSource.MANUAL,
) -> None:
    """One entry per (row, (added, tag)) of ``items``."""
    tags = Tag.objects.in_bulk({t for _r, changes in items for _a, t in changes})
    AuditEntry.objects.bulk_create(
        [
            AuditEntry(
                created_at=now,
                actor=actor,
                action=action,
                source=source,
                customer_id=row.customer_id,
                tag_id=t,
                group_id=row.held_group_id,
                object_repr=str(tags[t]) if t in tags else str(t),
                reason=reason[:255],
                after={
                    "userid": row.userid,
                    "external_userid": row.external_userid,
                    "change": "add" if added else "remove",
                    "held_until": row.held_until.isoformat() if row.held_until else None,
                    "outbox": row.pk,
                },
            )
            for row, changes in items
            for added, t in changes
        ],
        batch_size=1000,
    )


# --- what the outbox and the drift report leave alone -----------------------------------------


def waiting_tags(
    now: datetime | None = None,
    *,
    customer_ids: Iterable[int] | None = None,
    relation: Relation | None = None,
) -> dict[Relation, set[int]]:
    """{relationship: TagDesk tag ids of its held rows and of every row behind one}: what a send
    now leaves as WeCom holds it; only the relationships of ``customer_ids``, or ``relation``
    alone, if given. Two queries at most (one when nothing is held)."""
    now = now or timezone.now()
    pending = WecomOutbox.objects.filter(status=OutboxStatus.PENDING)
    if customer_ids is not None:
        pending = pending.filter(customer_id__in=list(customer_ids))
    if relation is not None:
        pending = pending.filter(userid=relation[0], external_userid=relation[1])
    first: dict[Relation, int] = {}
    for pk, u, e in (
        pending.filter(held_until__gt=now)
        .order_by("id")
        .values_list("pk", "userid", "external_userid")
    ):
        first.setdefault((u, e), pk)
    if not first:
        return {}
    out: dict[Relation, set[int]] = defaultdict(set)
    rows = pending.filter(
        userid__in={u for u, _e in first},
        external_userid__in={e for _u, e in first},
        id__gte=min(first.values()),
    ).values_list("pk", "userid", "external_userid", "change")
    for pk, u, e, change in rows:
        start = first.get((u, e))
        if start is not None and pk >= start:
            out[(u, e)].update(t for op in ("add", "remove") for t in (change or {}).get(op, ()))
    return out


def withheld_tags(
    customer_ids: Iterable[int] | None = None, *, relation: Relation | None = None
) -> dict[Relation, dict[int, bool]]:
    """{relationship: {TagDesk tag id: True if an addition was withheld, False a removal}}; only
    the relationships of ``customer_ids``, or ``relation`` alone, if given. One query."""
    withheld = WecomWithheld.objects.all()
    if customer_ids is not None:
        withheld = withheld.filter(customer_id__in=list(customer_ids))
    if relation is not None:
        withheld = withheld.filter(userid=relation[0], external_userid=relation[1])
    out: dict[Relation, dict[int, bool]] = defaultdict(dict)
    for u, e, t, added in withheld.values_list("userid", "external_userid", "tag_id", "added"):
        out[(u, e)][t] = added
    return out


def frozen_tags(
    customer_ids: Iterable[int] | None = None, *, relation: Relation | None = None
) -> dict[Relation, set[int]]:
    """{relationship of these customers (or ``relation``): TagDesk tag ids a send must leave as
    WeCom holds them} (held, behind a hold, or withheld). Three queries at most, two when
    nothing is held."""
    ids = None if customer_ids is None else list(customer_ids)
    out: dict[Relation, set[int]] = defaultdict(set)
    for key, tags in waiting_tags(customer_ids=ids, relation=relation).items():
        out[key] |= tags
    for key, kept in withheld_tags(ids, relation=relation).items():
        out[key] |= kept.keys()
    return out


# --- the review page --------------------------------------------------------------------------


class Review(NamedTuple):
    tags_added: list[str]
    tags_removed: list[str]
    follower: str
    who: str


def describe(rows: list[WecomOutbox]) -> dict[int, Review]:
    """What the review page shows of each row beyond its own fields: tag names, the follower's
    name and who made the change (the audit log's actor of that customer and tag). At most
    four queries whatever the number of rows."""
    if not rows:
        return {}
    from django.contrib.auth import get_user_model

    tag_ids = {t for r in rows for _a, t in _tags_of(r)}
    tags = dict(Tag.objects.filter(pk__in=tag_ids).values_list("pk", "name"))
    users = {
        u.wecom_userid: u
        for u in get_user_model().objects.filter(wecom_userid__in={r.userid for r in rows})
    }
    # The newest added/removed entry of each (customer, tag, way) at or before the row: the
    # hook runs inside the change's transaction, so its entry is there by the row's time.
    first, last = min(r.created_at for r in rows), max(r.created_at for r in rows)
    entries = (
        AuditEntry.objects.filter(
            customer_id__in={r.customer_id for r in rows},
            tag_id__in=tag_ids,
            action__in=[AuditAction.ASSIGNMENT_ADDED, AuditAction.ASSIGNMENT_REMOVED],
            created_at__gte=first - timedelta(minutes=5),
            created_at__lte=last,
        )
        .order_by("created_at", "id")
        .values_list("customer_id", "tag_id", "action", "created_at", "actor_id", "source")
    )
    history: dict[tuple[int, int, bool], list[tuple[datetime, int | None, str]]] = defaultdict(list)
    for c, t, action, when, actor_id, source in entries:
        history[(c, t, action == AuditAction.ASSIGNMENT_ADDED)].append((when, actor_id, source))
    actor_ids = {a for hs in history.values() for _w, a, _s in hs if a is not None}
    actors = get_user_model().objects.in_bulk(actor_ids) if actor_ids else {}
    out: dict[int, Review] = {}
    for r in rows:
        whos = []
        for added, t in _tags_of(r):
            before = [h for h in history.get((r.customer_id, t, added), []) if h[0] <= r.created_at]
            if before:
                _when, by, how = before[-1]
                whos.append(_name(actors.get(by)) if by is not None else _source_name(how))
        employee = users.get(r.userid)
        out[r.pk] = Review(
            tags_added=[tags.get(t, str(t)) for a, t in _tags_of(r) if a],
            tags_removed=[tags.get(t, str(t)) for a, t in _tags_of(r) if not a],
            follower=f"{_name(employee)} ({r.userid})" if employee else r.userid,
            who="、".join(dict.fromkeys(whos)) or "—",
        )
    return out


def _name(user: Any) -> str:
    if user is None:
        return "—"
    return getattr(user, "display_name", "") or user.get_username()


def _source_name(source: str) -> str:
    try:
        return str(AssignmentSource(source).label)
    except ValueError:
        return source
