"""External contacts and their followers from WeCom (issue 10 §3).

:func:`apply_contacts` takes a page of externalcontact/get answers and makes TagDesk agree, in one
transaction and a number of queries that does not grow with the contacts on the page: the
customers (found by external_userid, else by a remark_mobiles phone, so a customer known only by
phone gains its external_userid and keeps its tags), their followers (employee by
``wecom_userid``; add time, add_way, remark; ``state`` → source channel), and tags. Corp tags
(type 1) are merged three-way per relationship against what WeCom held last time: a tag an
employee added in WeCom is assigned in TagDesk (source ``sync``), one removed there is removed
here; what TagDesk holds beyond that is sent to WeCom through the outbox. Personal tags (type 2)
become the employee's own personal tags. Unknown userids, bad phones and refused tags are logged
as sync issues and skipped; the rest of the page goes on.

:func:`sync_contacts` reads the contacts in pages of :data:`PAGE`, each page's externalcontact/get
calls in a bounded thread pool while the previous page is written, so memory stays flat however
many customers the corp has.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from customers import hooks as customer_hooks
from customers.models import EXTERNAL_USERID_RE, AddWay, Customer, Follower
from customers.phones import InvalidPhone, normalize_phone
from customers.services import customer_snapshot, identifier_conflict_message
from tagging import services as tagging_services
from tagging.errors import TaggingError
from tagging.models import (
    AssignmentSource,
    AuditAction,
    Tag,
    TagGroup,
    TagKind,
    TagStatus,
)
from tagging.names import InvalidName, fold_name, validate_name
from wecom.client import Wecom, WecomError
from wecom.models import WecomRelation, WecomRelationTag
from wecom.services import channels, delays, outbox, sql
from wecom.services.common import (
    managed_wecom_ids,
    pulled_links,
    record_issue,
    synced_tag_map,
    throttle,
)

SYNC = AssignmentSource.SYNC
PERSONAL_GROUP_FALLBACK = "企业微信"
PAGE = 200  # contacts written per transaction
GET_API = "externalcontact/get"  # the rate limiter's name for the calls (WeCom limits per API)
FETCH_ATTEMPTS = 4  # calls per contact while WeCom answers -1, 45009, 5xx or times out
FETCH_BACKOFF = 0.5  # seconds before the second attempt; doubles with each further one
_ADD_WAYS = set(AddWay.values)


def sync_contacts(wecom: Wecom) -> dict[str, int]:
    """Every follow user's every contact; contacts WeCom no longer lists keep their customer
    (and tags) but lose their WeCom relationships. Returns counts.

    The externalcontact/get calls run ``WECOM_SYNC_CONCURRENCY`` at a time in a thread pool
    (HTTP and the shared cache only, no database), at most ``WECOM_SYNC_RATE`` a second for the
    corp; while one page is written, the next page's calls are in flight. Across pages only the
    external userids seen are kept, so memory stays flat per page. A contact WeCom cannot answer
    for (after retries) or answers wrongly is logged as a sync issue and left as it was; the
    rest of its page is written. Only when no contact of a page could be read at all (WeCom
    down) does the sync stop, with WeCom's error."""
    started = timezone.now()
    language = translation.get_language()  # of the issues' messages, made in the pool threads
    stats: Counter[str] = Counter()
    seen: set[str] = set()
    pool = ThreadPoolExecutor(settings.WECOM_SYNC_CONCURRENCY, thread_name_prefix="wecom-get")
    pending: list[Future[_Fetched]] = []  # the page to write next
    fetching: list[Future[_Fetched]] = []  # the page after it
    try:
        for page in _pages(wecom, seen, stats):
            # Queued behind the previous page's calls: they run while that page is written.
            fetching = [pool.submit(_fetch, wecom, e, language) for e in page]
            if pending:
                _apply_page([f.result() for f in pending], stats)
            pending, fetching = fetching, []
        if pending:
            _apply_page([f.result() for f in pending], stats)
        pending = []
    finally:
        for future in pending + fetching:  # the sync stopped: calls not started are not made
            future.cancel()
        pool.shutdown(wait=True)
    stats["relations_removed"] += _remove_unseen(seen, started)
    return dict(stats)


def _pages(wecom: Wecom, seen: set[str], stats: Counter[str]) -> Iterator[list[str]]:
    page: list[str] = []
    for userid in wecom.follow_users():
        try:
            contact_ids = wecom.contact_ids(userid)
        except WecomError as exc:
            if exc.transient:
                raise
            record_issue("userid", userid, f"wecom_{exc.errcode}", str(exc))
            stats["follow_users_skipped"] += 1
            continue
        for external_userid in contact_ids:
            if external_userid in seen:
                continue
            seen.add(external_userid)
            page.append(external_userid)
            if len(page) == PAGE:
                yield page
                page = []
    if page:
        yield page


@dataclass
class _Fetched:
    """One contact's externalcontact/get: the answer, or why there is none."""

    external_userid: str
    answer: dict | None = None
    code: str = ""  # the sync issue's code when there is no answer
    reason: str = ""
    error: WecomError | None = None  # WeCom's refusal, if that is the reason
    attempts: int = 1


def _fetch(wecom: Wecom, external_userid: str, language: str | None) -> _Fetched:
    """externalcontact/get of one contact, in a pool thread: throttled for the corp, transient
    failures retried with backoff, an answer of the wrong shape refused whole (never half
    applied). Touches no database: the issues are recorded by the page's writer."""
    with translation.override(language):
        return _fetch_one(wecom, external_userid)


def _fetch_one(wecom: Wecom, external_userid: str) -> _Fetched:
    for attempt in range(1, FETCH_ATTEMPTS + 1):
        throttle(settings.WECOM_SYNC_RATE, GET_API)
        try:
            answer = wecom.contact(external_userid)
        except WecomError as exc:
            if exc.transient and attempt < FETCH_ATTEMPTS:
                time.sleep(FETCH_BACKOFF * 2 ** (attempt - 1))
                continue
            reason = str(exc)
            if exc.transient:
                reason = _("%(error)s (after %(n)s attempts)") % {"error": exc, "n": attempt}
            return _Fetched(external_userid, None, f"wecom_{exc.errcode}", reason, exc, attempt)
        problem = answer_problem(external_userid, answer)
        if problem:
            return _Fetched(external_userid, None, "bad_answer", problem, attempts=attempt)
        return _Fetched(external_userid, answer, attempts=attempt)
    raise AssertionError("unreachable")


def answer_problem(external_userid: str, data: Any) -> str | None:
    """Why an externalcontact/get answer cannot be applied (None: it can): the fields the sync
    reads must have WeCom's documented types, and it must be about the contact asked for."""
    contact = data.get("external_contact") if isinstance(data, dict) else None
    if not isinstance(contact, dict):
        return _("The answer has no external_contact object.")
    if contact.get("external_userid") != external_userid:
        return _("The answer is about another contact (“%(other)s”).") % {
            "other": str(contact.get("external_userid"))[:64]
        }
    if not all(isinstance(contact.get(k) or "", str) for k in ("name", "corp_name")):
        return _("The contact's name or corp_name is not text.")
    follows = data.get("follow_user")
    if not isinstance(follows, list) or not all(isinstance(f, dict) for f in follows):
        return _("follow_user is not a list of objects.")
    for f in follows:
        userid = f.get("userid")
        if not isinstance(userid, str) or not userid:
            return _("A follow_user entry has no userid.")
        if not isinstance(f.get("add_way") or 0, int):
            return _("The add_way of follower “%(userid)s” is not a number.") % {
                "userid": userid[:64]
            }
        if not all(isinstance(f.get(k) or "", str) for k in ("remark", "state")):
            return _("The remark or state of follower “%(userid)s” is not text.") % {
                "userid": userid[:64]
            }
        mobiles, tags = f.get("remark_mobiles") or [], f.get("tags") or []
        if not isinstance(mobiles, list) or not all(isinstance(m, str) for m in mobiles):
            return _("remark_mobiles of follower “%(userid)s” is not a list of text.") % {
                "userid": userid[:64]
            }
        if not isinstance(tags, list) or not all(
            isinstance(t, dict)
            and all(isinstance(t.get(k) or "", str) for k in ("tag_id", "tag_name", "group_name"))
            for t in tags
        ):
            return _("The tags of follower “%(userid)s” are not a list of tag objects.") % {
                "userid": userid[:64]
            }
    return None


def _apply_page(fetched: list[_Fetched], stats: Counter[str]) -> None:
    """Write a page's answers in one :func:`apply_contacts`; log the contacts without one."""
    answers = [f.answer for f in fetched if f.answer is not None]
    failed = [f for f in fetched if f.answer is None]
    retried = sum(f.attempts > 1 for f in fetched)
    if retried:
        stats["contacts_retried"] += retried
    down = [f.error for f in failed if f.error is not None and f.error.transient]
    if down and len(down) == len(fetched):
        raise down[0]  # not one contact of the page could be read: WeCom is down, stop here
    for f in failed:
        record_issue("contact", f.external_userid, f.code, f.reason)
        stats["contacts_skipped"] += 1
    if answers:
        stats.update(apply_contacts(answers))


def _remove_unseen(seen: set[str], started: datetime) -> int:
    """End the relationships of contacts WeCom no longer lists. Reads the relationships in
    chunks and compares in Python, rather than sending every contact seen as a parameter (one
    query per 100,000 contacts; SQLite refuses that many). A relationship a callback made or
    touched while the sync ran (synced after it started) stays."""
    gone = [
        pk
        for pk, external_userid in WecomRelation.objects.filter(synced_at__lt=started)
        .values_list("pk", "external_userid")
        .iterator(chunk_size=5000)
        if external_userid not in seen
    ]
    return sum(
        remove_relations(WecomRelation.objects.filter(pk__in=gone[i : i + 1000]))
        for i in range(0, len(gone), 1000)
    )


@transaction.atomic
def remove_relations(relations) -> int:
    """The relationships ended in WeCom: drop them and their TagDesk followers (customers and
    their tags stay)."""
    pairs = list(relations.values_list("pk", "customer_id", "employee_id"))
    if not pairs:
        return 0
    by_employee: dict[int, list[int]] = defaultdict(list)
    for _pk, customer_id, employee_id in pairs:
        by_employee[employee_id].append(customer_id)
    for employee_id, customer_ids in by_employee.items():
        Follower.objects.filter(employee_id=employee_id, customer_id__in=customer_ids).delete()
    WecomRelation.objects.filter(pk__in=[p for p, _c, _e in pairs]).delete()
    return len(pairs)


def remove_relation(userid: str, external_userid: str) -> int:
    return remove_relations(
        WecomRelation.objects.filter(userid=userid, external_userid=external_userid)
    )


def _first_phone(numbers: list[str], external_userid: str) -> str | None:
    for raw in numbers or []:
        try:
            return normalize_phone(raw)
        except InvalidPhone:
            record_issue(
                "contact",
                external_userid,
                "invalid_phone",
                _("remark_mobiles “%(phone)s” is not a valid mobile number.") % {"phone": raw},
            )
    return None


def _when(seconds: Any) -> datetime:
    try:
        return datetime.fromtimestamp(int(seconds), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return timezone.now()


@dataclass
class _Contact:
    """One externalcontact/get answer, read: the follows of known employees by add time."""

    external_userid: str
    contact: dict
    follows: list[dict]
    phone: str | None
    customer: Customer | None = None
    added: set[str] = field(default_factory=set)  # WeCom tag ids added in WeCom since last time
    removed: set[str] = field(default_factory=set)


def apply_contact(data: dict) -> dict[str, int]:
    """One contact (a callback's add or edit)."""
    return apply_contacts([data])


@transaction.atomic
def apply_contacts(answers: Iterable[dict]) -> dict[str, int]:
    """A page of externalcontact/get answers, set-based (see the module docstring). Returns
    counts."""
    stats: Counter[str] = Counter()
    answers = list(answers)
    userids = {f["userid"] for a in answers for f in a.get("follow_user") or [] if f.get("userid")}
    users = {u.wecom_userid: u for u in get_user_model().objects.filter(wecom_userid__in=userids)}
    for userid in sorted(userids - set(users)):
        record_issue(
            "userid",
            userid,
            "unknown_userid",
            _("No TagDesk employee has the WeCom userid “%(userid)s”.") % {"userid": userid},
        )
    contacts = []
    for data in answers:
        contact = data.get("external_contact") or {}
        external_userid = contact.get("external_userid") or ""
        follows = sorted(
            (f for f in data.get("follow_user") or [] if f.get("userid") in users),
            key=lambda f: f.get("createtime", 0),
        )
        phone = next(
            (p for f in follows if (p := _first_phone(f.get("remark_mobiles"), external_userid))),
            None,
        )
        contacts.append(_Contact(external_userid, contact, follows, phone))
    contacts = _upsert_customers(contacts, stats)
    if not contacts:
        return dict(stats)
    _apply_relations(contacts, users, stats)
    links = pulled_links()
    _apply_corp_tags(contacts, links, stats)
    _apply_personal_tags(contacts, users, stats)
    stats.update(channels.apply_channel_states(c.customer for c in contacts if c.customer))
    _enqueue_stale([c.customer.pk for c in contacts if c.customer is not None], stats)
    stats["contacts"] += len(contacts)
    return dict(stats)


_NEW_CUSTOMERS = [
    ("external_userid", "text"),
    ("phone", "text"),
    ("name", "text"),
    ("company", "text"),
    ("source", "text"),
    ("attributes", "jsonb"),
]
_CHANGED_CUSTOMERS = [("id", "bigint"), *_NEW_CUSTOMERS[:-1]]
_CUSTOMER_AUDITS = [
    ("action", "text"),
    ("customer_id", "bigint"),
    ("object_repr", "text"),
    ("before", "jsonb"),
    ("after", "jsonb"),
]


def _upsert_customers(contacts: list[_Contact], stats: Counter[str]) -> list[_Contact]:
    """Find or create every contact's customer with a handful of queries, audited as
    ``customers.services.upsert_customer`` audits one; returns the contacts kept."""
    kept: list[_Contact] = []
    for c in contacts:
        if not c.external_userid or not EXTERNAL_USERID_RE.match(c.external_userid):
            record_issue(
                "contact",
                c.external_userid[:128],
                "invalid_external_userid",
                _("External userid may contain only letters, digits, “_” and “-” (at most 64)."),
            )
            stats["contacts_skipped"] += 1
        else:
            kept.append(c)
    if not kept:
        return []
    by_ext = {
        x.external_userid: x
        for x in Customer.objects.select_for_update().filter(
            external_userid__in=[c.external_userid for c in kept]
        )
    }
    phones = {c.phone for c in kept if c.phone}
    by_phone = (
        {x.phone: x for x in Customer.objects.select_for_update().filter(phone__in=phones)}
        if phones
        else {}
    )
    new: list[Customer] = []
    changed: list[tuple[Customer, dict]] = []
    for c in kept:
        found = by_ext.get(c.external_userid)
        holder = by_phone.get(c.phone) if c.phone else None
        if holder is not None and (
            (found is not None and holder.pk != found.pk)
            or (holder.external_userid and holder.external_userid != c.external_userid)
        ):
            # The phone is another customer's: the contact is synced without it.
            record_issue(
                "contact",
                c.external_userid,
                "identifier_conflict",
                identifier_conflict_message("phone"),
            )
            c.phone, holder = None, None
        found = found or holder
        state = next((f.get("state") for f in c.follows if f.get("state")), "")
        name = (c.contact.get("name") or "")[:128]
        company = (c.contact.get("corp_name") or "")[:128]
        if found is None:
            customer = Customer(
                external_userid=c.external_userid,
                phone=c.phone,
                name=name,
                company=company,
                source=(state or "")[:64],
            )
            new.append(customer)
            stats["customers_created"] += 1
        else:
            customer = found
            before = customer_snapshot(customer)
            customer.external_userid = customer.external_userid or c.external_userid
            customer.phone = customer.phone or c.phone
            customer.name = customer.name or name
            customer.company = customer.company or company
            customer.source = customer.source or (state or "")[:64]
            if customer_snapshot(customer) != before:
                changed.append((customer, before))
            stats["customers_updated"] += 1
        by_ext[c.external_userid] = customer
        if customer.phone:
            by_phone[customer.phone] = customer
        c.customer = customer
    now = timezone.now()
    stamp = sql.param(now)
    created = sql.insert_rows(
        "customers_customer",
        _NEW_CUSTOMERS,
        [(x.external_userid, x.phone, x.name, x.company, x.source, {}) for x in new],
        constants={
            "remark": "",
            "added_at": stamp,
            "created_at": stamp,
            "updated_at": stamp,
            "total_spend": 0,
            "order_count": 0,
        },
        returning=("id", "external_userid"),
    )
    ids = {external_userid: pk for pk, external_userid in created}
    for x in new:
        x.pk, x.added_at, x.created_at, x.updated_at = ids[x.external_userid], now, now, now
        x._state.adding, x._state.db = False, DEFAULT_DB_ALIAS  # as bulk_create leaves them
    for customer, _before in changed:
        customer.updated_at = now
    sql.update_rows(
        "customers_customer",
        _CHANGED_CUSTOMERS,
        [(x.pk, x.external_userid, x.phone, x.name, x.company, x.source) for x, _b in changed],
        constants={"updated_at": stamp},
    )
    sql.insert_rows(
        "tagging_auditentry",
        _CUSTOMER_AUDITS,
        [
            (AuditAction.CUSTOMER_CREATED, x.pk, str(x)[:255], None, customer_snapshot(x))
            for x in new
        ]
        + [
            (AuditAction.CUSTOMER_UPDATED, x.pk, str(x)[:255], before, customer_snapshot(x))
            for x, before in changed
        ],
        constants={"created_at": stamp, "source": SYNC, "reason": ""},
    )
    # What changed, as Customer columns (for real-time rules), as upsert_customer reports it.
    changes: dict[int, customer_hooks.Change] = {
        x.pk: customer_hooks.Change(fields=frozenset({customer_hooks.ALL_FIELDS})) for x in new
    }
    for x, before in changed:
        after = customer_snapshot(x)
        changes[x.pk] = customer_hooks.Change(
            fields=frozenset(k for k in after if after[k] != before.get(k))
        )
    customer_hooks.customers_changed(changes)
    return kept


_NEW_RELATIONS = [
    ("customer_id", "bigint"),
    ("employee_id", "bigint"),
    ("userid", "text"),
    ("external_userid", "text"),
    ("state", "text"),
]
_RELATION_STATES = [("id", "bigint"), ("state", "text")]
_RELATION_TAGS = [("relation_id", "bigint"), ("wecom_tag_id", "text")]
_FOLLOWER_VALUES = [("added_at", "timestamptz"), ("add_way", "smallint"), ("remark", "text")]
_NEW_FOLLOWERS = [("customer_id", "bigint"), ("employee_id", "bigint"), *_FOLLOWER_VALUES]
_FOLLOWER_CHANGES = [("id", "bigint"), *_FOLLOWER_VALUES]


def _apply_relations(contacts: list[_Contact], users: dict, stats: Counter[str]) -> None:
    """Relationships, followers and the relationship tags WeCom holds now; notes per contact
    which WeCom tags were added and removed in WeCom since the last sync. Reads tuples, not
    model objects, and writes each table in one statement (``wecom.services.sql``)."""
    customer_ids = [c.customer.pk for c in contacts if c.customer is not None]
    relations: dict[tuple[int, str], int] = {
        (customer_id, userid): pk
        for pk, customer_id, userid in WecomRelation.objects.filter(
            customer_id__in=customer_ids
        ).values_list("pk", "customer_id", "userid")
    }
    held: dict[int, dict[str, int]] = defaultdict(dict)  # relation id -> {WeCom tag id: row id}
    tag_rows = WecomRelationTag.objects.filter(relation__customer_id__in=customer_ids)
    for pk, tagged, wecom_tag_id in (
        tag_rows.values_list("pk", "relation_id", "wecom_tag_id") if relations else ()
    ):
        held[tagged][wecom_tag_id] = pk
    followers = {
        (customer_id, employee_id): (pk, (added_at, add_way, remark))
        for pk, customer_id, employee_id, added_at, add_way, remark in Follower.objects.filter(
            customer_id__in=customer_ids
        ).values_list("pk", "customer_id", "employee_id", "added_at", "add_way", "remark")
    }
    now = timezone.now()
    new_relations: list[tuple] = []  # _NEW_RELATIONS rows
    new_tags: list[set[str]] = []  # the tags of each new relationship
    kept_relations: list[tuple[int, str]] = []
    tag_rows_gone: list[int] = []
    tags_new: list[tuple[int, str]] = []
    new_followers: list[tuple] = []
    changed_followers: list[tuple] = []
    for c in contacts:
        customer = c.customer
        assert customer is not None
        for f in c.follows:
            employee = users[f["userid"]]
            state = (f.get("state") or "")[:64]
            relation_id = relations.pop((customer.pk, f["userid"]), None)
            now_tags = {
                t["tag_id"]
                for t in f.get("tags") or []
                if t.get("type") in (1, 3) and t.get("tag_id")
            }
            if relation_id is None:
                new_relations.append(
                    (customer.pk, employee.pk, f["userid"], c.external_userid, state)
                )
                new_tags.append(now_tags)
                before: set[str] = set()
                stats["relations_created"] += 1
            else:
                before = set(held.get(relation_id, {}))
                kept_relations.append((relation_id, state))
                tag_rows_gone += [held[relation_id][t] for t in before - now_tags]
                tags_new += [(relation_id, t) for t in now_tags - before]
            c.added |= now_tags - before
            c.removed |= before - now_tags
            add_way = int(f.get("add_way") or 0)
            added_at = _when(f.get("createtime"))
            values = (
                added_at,
                add_way if add_way in _ADD_WAYS else AddWay.UNKNOWN,
                (f.get("remark") or "")[:128],
            )
            found = followers.get((customer.pk, employee.pk))
            if found is None:
                new_followers.append((customer.pk, employee.pk, sql.when(added_at), *values[1:]))
            elif found[1] != values:
                changed_followers.append((found[0], sql.when(added_at), *values[1:]))
        c.removed -= c.added
    stamp = sql.param(now)
    created = sql.insert_rows(
        "wecom_wecomrelation",
        _NEW_RELATIONS,
        new_relations,
        constants={"state_applied": "", "synced_at": stamp},
        returning=("id", "userid", "external_userid"),
    )
    ids = {(userid, external_userid): pk for pk, userid, external_userid in created}
    tags_new += [
        (ids[(row[2], row[3])], t)
        for row, now_tags in zip(new_relations, new_tags, strict=True)
        for t in sorted(now_tags)
    ]
    sql.update_rows(
        "wecom_wecomrelation", _RELATION_STATES, kept_relations, constants={"synced_at": stamp}
    )
    if tag_rows_gone:
        WecomRelationTag.objects.filter(pk__in=tag_rows_gone).delete()
    sql.insert_rows("wecom_wecomrelationtag", _RELATION_TAGS, tags_new, ignore_conflicts=True)
    sql.insert_rows("customers_follower", _NEW_FOLLOWERS, new_followers, ignore_conflicts=True)
    sql.update_rows("customers_follower", _FOLLOWER_CHANGES, changed_followers)
    if relations:  # followers WeCom no longer lists for these contacts
        stats["relations_removed"] += remove_relations(
            WecomRelation.objects.filter(pk__in=list(relations.values()))
        )


def _apply_corp_tags(contacts: list[_Contact], links: dict[str, int], stats) -> None:
    """Tags added or removed in WeCom, one assignment-service call per tag (not per
    customer)."""
    to_remove: dict[int, list[int]] = defaultdict(list)  # tag id -> customer ids
    wanted: dict[int, set[int]] = defaultdict(set)  # customer id -> tag ids
    for c in contacts:
        assert c.customer is not None
        for w in sorted(c.removed):
            if w in links:
                to_remove[links[w]].append(c.customer.pk)
        wanted[c.customer.pk] = {links[w] for w in c.added if w in links}
    for tag_id, customer_ids in to_remove.items():
        result = tagging_services.unassign_tags(customer_ids, [tag_id], actor=None, source=SYNC)
        stats["assignments_removed"] += len(result.removed)
    tags = {
        t.pk: t
        for t in Tag.objects.filter(
            pk__in={t for ids in wanted.values() for t in ids}
        ).select_related("group")
    }
    by_external = {c.customer.pk: c.external_userid for c in contacts if c.customer}
    to_add: dict[int, list[int]] = defaultdict(list)  # tag id -> customer ids
    for customer_id, tag_ids in wanted.items():
        # WeCom has no exclusive groups: of two tags in one exclusive TagDesk group, keep the first.
        chosen: dict[Any, Tag] = {}
        for tag in sorted(
            (tags[t] for t in tag_ids if t in tags), key=lambda t: (t.group_id, t.sort_order, t.pk)
        ):
            key = tag.group_id if tag.group.exclusive else ("tag", tag.pk)
            if key in chosen:
                record_issue(
                    "contact",
                    by_external[customer_id] or str(customer_id),
                    "exclusive_conflict",
                    _("“%(a)s” and “%(b)s” are in an exclusive group; only “%(a)s” was kept.")
                    % {"a": chosen[key].name, "b": tag.name},
                )
                continue
            chosen[key] = tag
        for tag in chosen.values():
            to_add[tag.pk].append(customer_id)
    for tag_id, customer_ids in to_add.items():
        stats["assignments_added"] += _assign(
            customer_ids, tags[tag_id], None, ("contact", by_external)
        )


def _assign(customer_ids: list[int], tag: Tag, actor, issue: tuple[str, dict[int, str]]) -> int:
    """assign_tags for many customers; if the service refuses the batch (a customer at its
    tag limit…), each customer alone, logging the refused ones as ``issue`` (kind, {customer
    id: WeCom id})."""
    try:
        with transaction.atomic():
            return len(
                tagging_services.assign_tags(customer_ids, [tag], actor=actor, source=SYNC).added
            )
    except TaggingError:
        kind, ids = issue
        added = 0
        for customer_id in customer_ids:
            try:
                with transaction.atomic():
                    result = tagging_services.assign_tags(
                        [customer_id], [tag], actor=actor, source=SYNC
                    )
                added += len(result.added)
            except TaggingError as exc:
                record_issue(kind, ids.get(customer_id) or "", exc.code, str(exc))
        return added


def _apply_personal_tags(contacts: list[_Contact], users: dict, stats) -> None:
    """Type 2 tags: each employee's own personal tags, found or created once per page."""
    wanted: dict[tuple[int, str, str], list[int]] = defaultdict(list)
    owners = {}
    for c in contacts:
        assert c.customer is not None
        for f in c.follows:
            employee = users[f["userid"]]
            for item in f.get("tags") or []:
                if item.get("type") != 2 or not item.get("tag_name"):
                    continue
                try:
                    group_name = validate_name(item.get("group_name") or PERSONAL_GROUP_FALLBACK)
                    tag_name = validate_name(item["tag_name"])
                except InvalidName as exc:
                    record_issue("personal_tag", item.get("tag_name", "")[:128], exc.code, str(exc))
                    continue
                owners[employee.pk] = employee
                wanted[(employee.pk, group_name, tag_name)].append(c.customer.pk)
    for (employee_id, group_name, tag_name), customer_ids in wanted.items():
        employee = owners[employee_id]
        try:
            with transaction.atomic():
                group = TagGroup.objects.filter(
                    owner=employee, kind=TagKind.PERSONAL, name_key=fold_name(group_name)
                ).first() or tagging_services.create_group(
                    name=group_name,
                    actor=employee,
                    kind=TagKind.PERSONAL,
                    owner=employee,
                    source=SYNC,
                )
                tag = Tag.objects.filter(group=group, name_key=fold_name(tag_name)).first()
                if tag is None:
                    tag = tagging_services.create_tag(group, tag_name, actor=employee, source=SYNC)
        except TaggingError as exc:
            record_issue("personal_tag", tag_name, exc.code, str(exc))
            continue
        if tag.status != TagStatus.ACTIVE:
            continue
        stats["personal_assignments_added"] += _assign(
            customer_ids, tag, employee, ("personal_tag", dict.fromkeys(customer_ids, tag_name))
        )


def _enqueue_stale(customer_ids: list[int], stats) -> None:
    """Whatever TagDesk holds that a relationship lacks (or the reverse) goes out, except what
    waits for its sync delay or was cancelled (a row for it would change nothing)."""
    links = synced_tag_map()
    desired = outbox.desired_tags(customer_ids, links)
    frozen = delays.frozen_tags(customer_ids)
    managed = managed_wecom_ids()
    relations = WecomRelation.objects.filter(customer_id__in=customer_ids).order_by("id")
    held: dict[int, set[str]] = defaultdict(set)
    for relation_id, wecom_tag_id in WecomRelationTag.objects.filter(
        relation__customer_id__in=customer_ids
    ).values_list("relation_id", "wecom_tag_id"):
        held[relation_id].add(wecom_tag_id)
    nothing: set = set()
    stale = [
        pk
        for pk, customer_id, userid, external_userid in relations.values_list(
            "pk", "customer_id", "userid", "external_userid"
        )
        if any(
            outbox.tags_delta(
                held[pk],
                outbox.leave_frozen(
                    desired.get(customer_id, nothing),
                    held[pk],
                    frozen.get((userid, external_userid), nothing),
                    links,
                ),
                managed,
            )
        )
    ]
    if stale:
        stats["outbox_rows"] += outbox.enqueue_relation_ids(stale, "sync")
