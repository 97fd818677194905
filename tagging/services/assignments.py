"""Adding and removing tags on customers: constant-query batches, bulk import path, expiry.

Customers' rows are locked first, so concurrent batches on the same customers serialise and
limits and exclusivity stay true. Every added or removed pair is audited."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from tagging import hooks
from tagging.errors import (
    ExclusiveConflict,
    InvalidExpiry,
    LimitExceeded,
    TaggingError,
)
from tagging.models import (
    AssignmentSource,
    AuditAction,
    AuditEntry,
    Tag,
    TagAssignment,
    TagKind,
)
from tagging.services.common import (
    AssignResult,
    UnassignResult,
    _actor_id,
    _assignment_audits,
    _check_tags_usable,
    _ids,
    _load_tags,
    _lock_customers,
)

# --- expiry -------------------------------------------------------------------------------------


def check_expiry(expires_at: datetime | None, *, now: datetime | None = None) -> datetime | None:
    """The expiry a person may give an assignment (temporary tags such as 参加过38促销): None, or
    an aware datetime after ``now`` and at most ``TAGDESK_MAX_TAG_EXPIRY_DAYS`` ahead. Raises
    :class:`InvalidExpiry` otherwise. Every door (admin, API, import) goes through it, so an
    expiry is never silently dropped or stored in the past."""
    if expires_at is None:
        return None
    if not isinstance(expires_at, datetime):
        raise InvalidExpiry(_("The expiry must be a date and time."))
    if timezone.is_naive(expires_at):
        expires_at = timezone.make_aware(expires_at)
    now = now or timezone.now()
    days = settings.TAGDESK_MAX_TAG_EXPIRY_DAYS
    if expires_at <= now:
        raise InvalidExpiry(
            _("The expiry %(when)s is not in the future.")
            % {"when": timezone.localtime(expires_at).strftime("%Y-%m-%d %H:%M")},
            details={"expires_at": expires_at.isoformat()},
        )
    if expires_at > now + timedelta(days=days):
        raise InvalidExpiry(
            ngettext(
                "The expiry may be at most %(days)d day ahead.",
                "The expiry may be at most %(days)d days ahead.",
                days,
            )
            % {"days": days},
            details={"expires_at": expires_at.isoformat(), "max_days": days},
        )
    return expires_at


# --- assignments ------------------------------------------------------------------------------


@transaction.atomic
def assign_tags(
    customers: Iterable[Any] | QuerySet[Any],
    tags: Iterable[Any],
    *,
    actor: Any,
    source: str,
    rule: Any = None,
    expires_at: datetime | None = None,
    replace_exclusive: bool = True,
    reason: str = "",
) -> AssignResult:
    """Give every customer every tag; pairs that exist already are left as they are.

    Refuses (raising a :class:`TaggingError`, writing nothing) unknown, pending or archived tags,
    auto tags unless ``source`` is ``rule`` and ``rule`` owns the tag, other employees' personal
    tags, two tags of one exclusive group, and more corporate tags on a customer than
    ``TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER``. In an exclusive group, the customer's other tag
    is replaced (audited as a removal) unless ``replace_exclusive`` is False, which refuses.
    ``expires_at`` (checked by :func:`check_expiry`; rules and merges give none) is stored on
    the pairs added; pairs that exist already keep theirs.
    Writes one audit entry per added or removed pair. Constant number of queries.
    """
    expires_at = check_expiry(expires_at)
    customer_ids = _ids(customers)
    tag_list = _load_tags(tags)
    result = AssignResult()
    if not customer_ids or not tag_list:
        return result
    _check_tags_usable(tag_list, actor=actor, source=source, rule=rule, adding=True)
    tags_by_id = {t.pk: t for t in tag_list}

    exclusive_by_group: dict[int, Tag] = {}
    for tag in tag_list:
        if tag.group.exclusive:
            if tag.group_id in exclusive_by_group:
                raise ExclusiveConflict(
                    _(
                        "“%(a)s” and “%(b)s” are in the exclusive group “%(group)s”: a customer holds only one."
                    )
                    % {
                        "a": exclusive_by_group[tag.group_id].name,
                        "b": tag.name,
                        "group": tag.group.name,
                    }
                )
            exclusive_by_group[tag.group_id] = tag

    _lock_customers(customer_ids)
    existing = list(
        TagAssignment.objects.filter(customer_id__in=customer_ids)
        .filter(Q(tag_id__in=tags_by_id) | Q(tag__group_id__in=exclusive_by_group))
        .values_list("pk", "customer_id", "tag_id", "tag__group_id")
    )
    have = {(c, t) for _pk, c, t, _g in existing}
    to_replace = [
        (pk, c, t)
        for pk, c, t, g in existing
        if g in exclusive_by_group and t != exclusive_by_group[g].pk
    ]
    if to_replace and not replace_exclusive:
        raise ExclusiveConflict(
            ngettext(
                "%(count)d customer already has another tag of an exclusive group.",
                "%(count)d customers already have another tag of an exclusive group.",
                len({c for _pk, c, _t in to_replace}),
            )
            % {"count": len({c for _pk, c, _t in to_replace})},
            details={"customers": sorted({c for _pk, c, _t in to_replace})},
        )
    to_add = [(c, t) for c in customer_ids for t in tags_by_id if (c, t) not in have]
    result.unchanged = len(customer_ids) * len(tags_by_id) - len(to_add)

    corporate_new = [t for t in tag_list if t.group.kind == TagKind.CORPORATE]
    if corporate_new and to_add:
        _check_corporate_limit(customer_ids, to_add, to_replace, tags_by_id)

    now = timezone.now()
    replaced_tags = {t for _pk, _c, t in to_replace} - set(tags_by_id)
    if to_replace:
        tags_by_id.update(
            {t.pk: t for t in Tag.objects.select_related("group").filter(pk__in=replaced_tags)}
        )
        TagAssignment.objects.filter(pk__in=[pk for pk, _c, _t in to_replace]).delete()
        result.replaced = [(c, t) for _pk, c, t in to_replace]

    rule_id = getattr(rule, "pk", None)
    AuditEntry.objects.bulk_create(
        _assignment_audits(
            result.replaced,
            AuditAction.ASSIGNMENT_REMOVED,
            tags=tags_by_id,
            actor=actor,
            source=source,
            rule_id=rule_id,
            reason=reason or _("replaced in an exclusive group"),
            now=now,
        )
    )
    _insert_assignments(
        to_add,
        tags=tags_by_id,
        actor=actor,
        source=source,
        rule_id=rule_id,
        expires_at=expires_at,
        reason=reason,
        now=now,
    )
    result.added = to_add
    hooks.assignments_changed(removed=result.replaced)  # additions: _insert_assignments
    return result


def _check_corporate_limit(
    customer_ids: list[int],
    to_add: list[tuple[int, int]],
    to_replace: list[tuple[int, int, int]],
    tags_by_id: dict[int, Tag],
) -> None:
    limit = settings.TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER
    delta: dict[int, int] = defaultdict(int)
    for c, t in to_add:
        if tags_by_id[t].group.kind == TagKind.CORPORATE:
            delta[c] += 1
    for _pk, c, _t in to_replace:
        delta[c] -= 1  # exclusive replacement within a corporate group frees a slot
    counts = dict(
        TagAssignment.objects.filter(
            customer_id__in=customer_ids, tag__group__kind=TagKind.CORPORATE
        )
        .values_list("customer_id")
        .annotate(n=Count("pk"))
        .values_list("customer_id", "n")
    )
    over = sorted(c for c, d in delta.items() if counts.get(c, 0) + d > limit)
    if over:
        raise LimitExceeded(
            ngettext(
                "%(count)d customer would carry more than %(limit)d corporate tags.",
                "%(count)d customers would carry more than %(limit)d corporate tags.",
                len(over),
            )
            % {"count": len(over), "limit": limit},
            details={"customers": over[:100], "limit": limit},
        )


@transaction.atomic
def unassign_tags(
    customers: Iterable[Any] | QuerySet[Any],
    tags: Iterable[Any],
    *,
    actor: Any,
    source: str,
    rule: Any = None,
    reason: str = "",
) -> UnassignResult:
    """Remove the tags from the customers; pairs that are absent are ignored.

    Auto tags only with ``source`` ``rule`` by the rule that owns them, and only the assignments
    that rule made. Personal tags only by their owner. Audited per removed pair. Constant queries.
    """
    customer_ids = _ids(customers)
    tag_list = _load_tags(tags)
    result = UnassignResult()
    if not customer_ids or not tag_list:
        return result
    _check_tags_usable(tag_list, actor=actor, source=source, rule=rule, adding=False)
    tags_by_id = {t.pk: t for t in tag_list}
    _lock_customers(customer_ids)
    existing = TagAssignment.objects.filter(customer_id__in=customer_ids, tag_id__in=tags_by_id)
    if rule is not None:
        existing = existing.filter(rule_id=rule.pk)
    rows = list(existing.values_list("pk", "customer_id", "tag_id"))
    if rows:
        TagAssignment.objects.filter(pk__in=[pk for pk, _c, _t in rows]).delete()
    result.removed = [(c, t) for _pk, c, t in rows]
    result.absent = len(customer_ids) * len(tag_list) - len(rows)
    AuditEntry.objects.bulk_create(
        _assignment_audits(
            result.removed,
            AuditAction.ASSIGNMENT_REMOVED,
            tags=tags_by_id,
            actor=actor,
            source=source,
            rule_id=getattr(rule, "pk", None),
            reason=reason,
        )
    )
    hooks.assignments_changed(removed=result.removed)
    return result


@transaction.atomic
def change_tags(
    customers: Iterable[Any] | QuerySet[Any],
    *,
    add: Iterable[Any] = (),
    remove: Iterable[Any] = (),
    actor: Any,
    source: str,
    reason: str = "",
    expires_at: datetime | None = None,
    replace_exclusive: bool = True,
) -> tuple[AssignResult, UnassignResult]:
    """Remove ``remove`` then add ``add`` (with ``expires_at``) on the customers, all or nothing:
    :func:`unassign_tags` then :func:`assign_tags` in one transaction, with their checks and
    audit entries. The one call behind "mark / unmark" in the API and the customer page."""
    customer_ids = _ids(customers)
    removed = unassign_tags(customer_ids, remove, actor=actor, source=source, reason=reason)
    added = assign_tags(
        customer_ids,
        add,
        actor=actor,
        source=source,
        reason=reason,
        expires_at=expires_at,
        replace_exclusive=replace_exclusive,
    )
    return added, removed


@transaction.atomic
def remove_expired_assignments(now: datetime | None = None) -> int:
    """Delete assignments whose ``expires_at`` has passed (nightly); each removal is audited."""
    now = now or timezone.now()
    rows = list(
        TagAssignment.objects.select_for_update(skip_locked=True)
        .filter(expires_at__lte=now)
        .values_list("pk", "customer_id", "tag_id")
    )
    if not rows:
        return 0
    tags_by_id = {
        t.pk: t
        for t in Tag.objects.select_related("group").filter(pk__in={t for _p, _c, t in rows})
    }
    TagAssignment.objects.filter(pk__in=[pk for pk, _c, _t in rows]).delete()
    AuditEntry.objects.bulk_create(
        _assignment_audits(
            [(c, t) for _pk, c, t in rows],
            AuditAction.ASSIGNMENT_REMOVED,
            tags=tags_by_id,
            actor=None,
            source=AssignmentSource.SYSTEM,
            reason=_("expired"),
            now=now,
        )
    )
    hooks.assignments_changed(removed=[(c, t) for _pk, c, t in rows])
    return len(rows)


# --- bulk assignment (imports) -------------------------------------------------------------------


def assignable_error(tag: Tag, *, actor: Any, source: str) -> TaggingError | None:
    """The error :func:`assign_tags` would raise for adding ``tag`` by hand (kind, ownership,
    status), or None. Lets a bulk caller judge each distinct tag once instead of per row."""
    try:
        _check_tags_usable([tag], actor=actor, source=source, rule=None, adding=True)
    except TaggingError as exc:
        return exc
    return None


@transaction.atomic
def bulk_assign(
    pairs: Sequence[tuple[int, int]],
    *,
    actor: Any,
    source: str,
    reason: str = "",
    expiries: Mapping[tuple[int, int], datetime] | None = None,
) -> int:
    """Add many (customer_id, tag_id) pairs at once — the import's set-based variant of
    :func:`assign_tags`, writing the same rows and audit entries.

    The caller has already judged exclusivity and the corporate-tag limit per customer against
    the locked customers' rows (``customers.importing`` does, row by row, including the earlier
    rows of the same file); kinds, ownership and status are re-checked here for every distinct
    tag. Pairs that exist already are left alone (and not audited). Returns how many were added.
    ``expiries`` gives some pairs an expiry (an import's ``expires_at`` column), each checked by
    :func:`check_expiry`. On PostgreSQL the pairs are COPied into a temporary table and inserted with one
    ``INSERT … ON CONFLICT DO NOTHING RETURNING`` feeding the audit insert; elsewhere chunked
    bulk operations.
    """
    if not pairs:
        return 0
    tags = {t.pk: t for t in _load_tags({t for _c, t in pairs})}
    for tag in tags.values():
        error = assignable_error(tag, actor=actor, source=source)
        if error is not None:
            raise error
    now = timezone.now()
    checked = {pair: check_expiry(when, now=now) for pair, when in (expiries or {}).items()}
    return _insert_assignments(
        pairs, tags=tags, actor=actor, source=source, reason=reason, now=now, expiries=checked
    )


def _insert_assignments(
    pairs: Sequence[tuple[int, int]],
    *,
    tags: dict[int, Tag],
    actor: Any,
    source: str,
    now: datetime,
    rule_id: int | None = None,
    expires_at: datetime | None = None,
    expiries: Mapping[tuple[int, int], datetime | None] | None = None,
    reason: str = "",
) -> int:
    """Insert (customer_id, tag_id) pairs with one audit entry per pair actually added; pairs
    that exist already are skipped. Each pair expires at ``expiries[pair]`` if given, else at
    ``expires_at``; the audit entry's ``after`` records an expiry. Returns how many were added.
    The one writer behind :func:`assign_tags` and :func:`bulk_assign`.

    PostgreSQL: the pairs are COPied into a temporary table, then one ``INSERT … ON CONFLICT DO
    NOTHING RETURNING`` feeds the audit insert in the same statement (no Python objects per
    row). Elsewhere: chunked bulk_create of both."""
    if not pairs:
        return 0
    expiries = expiries or {}
    actor_id = _actor_id(actor)
    if connection.vendor == "postgresql":
        # The fast path does not return which pairs were new; listeners get every pair asked
        # for (they mirror the final state, so a pair that existed already changes nothing).
        hooks.assignments_changed(added=pairs)
        return _insert_assignments_postgresql(
            pairs,
            actor_id=actor_id,
            source=source,
            rule_id=rule_id,
            expires_at=expires_at,
            expiries=expiries,
            reason=reason,
            now=now,
        )
    existing: set[tuple[int, int]] = set()
    customer_ids = sorted({c for c, _t in pairs})
    for start in range(0, len(customer_ids), 5000):
        existing.update(
            TagAssignment.objects.filter(
                customer_id__in=customer_ids[start : start + 5000], tag_id__in=list(tags)
            ).values_list("customer_id", "tag_id")
        )
    to_add = [p for p in dict.fromkeys(pairs) if p not in existing]
    expiry_of = {p: expiries.get(p, expires_at) for p in to_add}
    TagAssignment.objects.bulk_create(
        [
            TagAssignment(
                customer_id=c,
                tag_id=t,
                source=source,
                actor_id=actor_id,
                rule_id=rule_id,
                created_at=now,
                expires_at=expiry_of[(c, t)],
            )
            for c, t in to_add
        ],
        batch_size=2000,
    )
    audits = _assignment_audits(
        to_add,
        AuditAction.ASSIGNMENT_ADDED,
        tags=tags,
        actor=actor,
        source=source,
        rule_id=rule_id,
        reason=reason,
        now=now,
    )
    for audit, pair in zip(audits, to_add, strict=True):
        when = expiry_of[pair]
        if when is not None:
            audit.after = {"expires_at": when.isoformat()}
    AuditEntry.objects.bulk_create(audits, batch_size=2000)
    hooks.assignments_changed(added=to_add)
    return len(to_add)


def _insert_assignments_postgresql(
    pairs: Sequence[tuple[int, int]],
    *,
    actor_id: int | None,
    source: str,
    rule_id: int | None,
    expires_at: datetime | None,
    expiries: Mapping[tuple[int, int], datetime | None],
    reason: str,
    now: datetime,
) -> int:
    # The pairs travel as comma-joined texts unnested by the statement itself (no temporary
    # table to truncate and COPY into per call: an import makes one call per chunk).
    when = [expiries.get(pair, expires_at) for pair in pairs]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH stage AS (
                SELECT * FROM unnest(
                    string_to_array(%(customers)s, ',')::bigint[],
                    string_to_array(%(tags)s, ',')::bigint[],
                    string_to_array(%(expiries)s, ',', '')::timestamptz[]
                ) AS s (customer_id, tag_id, expires_at)
            ), added AS (
                INSERT INTO tagging_tagassignment
                    (customer_id, tag_id, source, actor_id, rule_id, created_at, expires_at)
                SELECT DISTINCT ON (customer_id, tag_id)
                       customer_id, tag_id, %(source)s, %(actor)s::bigint, %(rule)s::bigint,
                       %(now)s::timestamptz, expires_at
                FROM stage
                ORDER BY customer_id, tag_id
                ON CONFLICT (customer_id, tag_id) DO NOTHING
                RETURNING customer_id, tag_id, expires_at
            )
            INSERT INTO tagging_auditentry
                (created_at, actor_id, action, source, customer_id, tag_id, group_id, rule_id,
                 object_repr, reason, after)
            SELECT %(now)s::timestamptz, %(actor)s::bigint, %(action)s, %(source)s,
                   a.customer_id, a.tag_id, t.group_id, %(rule)s::bigint,
                   left(g.name || ':' || t.name, 255), %(reason)s,
                   CASE WHEN a.expires_at IS NULL THEN NULL
                        ELSE jsonb_build_object('expires_at', a.expires_at) END
            FROM added a
            JOIN tagging_tag t ON t.id = a.tag_id
            JOIN tagging_taggroup g ON g.id = t.group_id
            """,
            {
                "customers": ",".join([str(c) for c, _t in pairs]),
                "tags": ",".join([str(t) for _c, t in pairs]),
                "expiries": None
                if all(w is None for w in when)
                else ",".join(["" if w is None else w.isoformat() for w in when]),
                "source": source,
                "actor": actor_id,
                "rule": rule_id,
                "now": now,
                "action": AuditAction.ASSIGNMENT_ADDED,
                "reason": reason[:255],
            },
        )
        return int(cursor.rowcount)
