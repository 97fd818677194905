"""The demo data set behind ``python manage.py seed_demo`` (docs/README.md#seed_demo).

Steps, in order (``SEED_STEPS``; each takes the :class:`DemoContext` and may add to its summary):
departments → employees and logins → corporate and auto tag taxonomy (through
``tagging.services``) → personal tags → customers with followers, events, tag assignments and
their audit entries (:func:`seed_customers`, set-based) → statistics.

One row generator (:func:`generate_rows`, seeded, so the same arguments give the same data) feeds
two writers: PostgreSQL ``COPY`` (:class:`CopyWriter`, secondary indexes and foreign keys of the
bulk tables dropped during the load and rebuilt in the same transaction) and ``bulk_create`` on
other databases (:class:`OrmWriter`), both in ``demo.writers``. Everything happens in one transaction: a failed run leaves
the database as it was. One million customers with twenty events each load in minutes.
"""

from __future__ import annotations

import bisect
import gc
import itertools
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from io import TextIOBase
from typing import Any, TextIO

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group, Permission
from django.db import connection, transaction
from django.utils import timezone

from customers.models import AddWay, Customer, CustomerEvent, EventKind, Follower
from demo import data
from demo.grants import seed_grants
from demo.rules import seed_rules
from demo.writers import CopyWriter, OrmWriter
from permissions import policy
from permissions.models import Department, DepartmentMembership
from permissions.policy import Level
from tagging import services as tagging_services
from tagging.models import (
    AssignmentSource,
    AuditAction,
    AuditEntry,
    Tag,
    TagAssignment,
    TagGroup,
    TagKind,
    TagStatus,
    allow_audit_truncate,
)

DEFAULT_CUSTOMERS = 2000
DEFAULT_EVENTS_PER_CUSTOMER = 10
DEFAULT_SEED = 2026
CHUNK = 10_000  # customers per generated chunk
# Above this many customers, seeded assignments get no audit entries unless asked (--audit): ten
# million audit rows with their nine indexes would double the load time of a benchmark data set.
AUDIT_LIMIT = 100_000
DAYS = 400  # history covered by added dates and events
OPERATOR_GROUP = "演示-运营人员"
OPERATOR_PERMISSIONS = [
    ("customers", "view_customer"),
    ("customers", "change_customer"),
    ("customers", "add_customer"),
    ("customers", "view_customerevent"),
    ("customers", "view_follower"),
    ("tagging", "view_taggroup"),
    ("tagging", "view_tag"),
    ("tagging", "view_tagassignment"),
    ("tagging", "add_tagassignment"),
    ("tagging", "delete_tagassignment"),
    ("tagging", "view_auditentry"),
]


class DemoError(Exception):
    """The demo data cannot be written (e.g. the database already holds data)."""


@dataclass
class DemoContext:
    customers: int
    events_per_customer: int
    seed: int
    audit: bool = True  # one audit entry per seeded assignment (the customers' tag timelines)
    out: TextIO | TextIOBase | None = None
    now: datetime = field(default_factory=lambda: timezone.now().replace(second=0, microsecond=0))
    departments: dict[str, Department] = field(default_factory=dict)
    users: dict[str, Any] = field(default_factory=dict)
    employees_by_department: dict[str, list[int]] = field(default_factory=dict)
    groups: dict[str, TagGroup] = field(default_factory=dict)
    tags: dict[tuple[str, str], Tag] = field(default_factory=dict)
    personal_tags: dict[int, list[Tag]] = field(default_factory=dict)
    logins: list[dict[str, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    @property
    def admin(self):
        return self.users["admin"]

    def say(self, message: str) -> None:
        if self.out is not None:
            self.out.write(f"[{time.monotonic() - self.started:7.1f}s] {message}\n")
            self.out.flush()


# --- existing data ------------------------------------------------------------------------------


def existing_data() -> dict[str, int]:
    """What would make a seed collide: rows in the tables the demo fills."""
    usernames = [u[0] for u in data.USERS]
    found = {
        "customers": Customer.objects.count(),
        "tag_groups": TagGroup.objects.count(),
        "departments": Department.objects.count(),
        "demo_users": get_user_model().objects.filter(username__in=usernames).count(),
    }
    return {key: value for key, value in found.items() if value}


def clear_data() -> None:
    """Delete everything the demo writes: customers and their rows, the taxonomy, rules, the audit
    log, departments and the demo's employees. Used by ``seed_demo --reset`` only."""
    from rules.models import Rule

    User = get_user_model()
    demo_users = User.objects.filter(username__in=[u[0] for u in data.USERS]) | User.objects.filter(
        username__startswith="demo_emp"
    )
    if connection.vendor == "postgresql":
        tables = [
            model._meta.db_table
            for model in (
                CustomerEvent,
                Follower,
                TagAssignment,
                AuditEntry,
                Customer,
                Rule,
                Tag,
                TagGroup,
            )
        ]
        with connection.cursor() as cursor:
            # CASCADE also empties tables of other apps that point at these (jobs, segments...).
            allow_audit_truncate(cursor)
            cursor.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
    else:
        with connection.cursor() as cursor:  # the audit log refuses deletes through the ORM
            cursor.execute(f"DELETE FROM {AuditEntry._meta.db_table}")
        Customer.objects.all().delete()
        Rule.objects.all().delete()
        Tag.objects.all().delete()
        while TagGroup.objects.exists():  # children before parents (PROTECT)
            TagGroup.objects.filter(children__isnull=True).delete()
    DepartmentMembership.objects.all().delete()
    group_ids = list(Department.objects.values_list("auth_group_id", flat=True))
    while Department.objects.exists():
        Department.objects.filter(children__isnull=True).delete()
    Group.objects.filter(pk__in=group_ids).delete()
    Group.objects.filter(name=OPERATOR_GROUP).delete()
    demo_users.delete()


# --- steps: people ------------------------------------------------------------------------------


def seed_departments(ctx: DemoContext) -> None:
    for order, (name, parent) in enumerate(data.DEPARTMENTS):
        department = Department(
            name=name, parent=ctx.departments.get(parent) if parent else None, sort_order=order
        )
        department.save()
        ctx.departments[name] = department
    ctx.counts["departments"] = len(ctx.departments)


def seed_users(ctx: DemoContext) -> None:
    """Named demo employees (printed logins), plus unnamed ones for big data sets."""
    User = get_user_model()
    password = make_password(data.DEMO_PASSWORD)  # hashed once: slow hashers, same password
    operators = Group.objects.create(name=OPERATOR_GROUP)
    operators.permissions.set(
        Permission.objects.filter(
            content_type__app_label__in={app for app, _ in OPERATOR_PERMISSIONS},
            codename__in=[code for _, code in OPERATOR_PERMISSIONS],
        )
    )
    for username, display_name, department, role in data.USERS:
        user = User.objects.create(
            username=username,
            display_name=display_name,
            password=password,
            is_staff=True,
            is_superuser=role == "superuser",
            email=f"{username}@tagdesk.example.com",
        )
        ctx.users[username] = user
        if role != "superuser":
            user.groups.add(operators)
        if role == "tag_admin":
            user.user_permissions.add(_tag_admin_permission())
        if department:
            DepartmentMembership.objects.create(
                user=user, department=ctx.departments[department], is_leader=role == "leader"
            )
            ctx.employees_by_department.setdefault(department, []).append(user.pk)
        ctx.logins.append(
            {
                "username": username,
                "password": data.DEMO_PASSWORD,
                "role": _role_label(role, department),
            }
        )
    extra = min(200, ctx.customers // 5000)
    if extra:
        extra_users = User.objects.bulk_create(
            User(
                username=f"demo_emp{i:04d}",
                display_name=f"员工{i:04d}",
                password=password,
                is_staff=True,
            )
            for i in range(1, extra + 1)
        )
        operators.user_set.add(*extra_users)
        for i, user in enumerate(extra_users):
            department = data.EXTRA_EMPLOYEE_DEPARTMENTS[i % len(data.EXTRA_EMPLOYEE_DEPARTMENTS)]
            DepartmentMembership.objects.create(user=user, department=ctx.departments[department])
            ctx.employees_by_department[department].append(user.pk)
    ctx.counts["users"] = len(data.USERS) + extra


def _tag_admin_permission() -> Permission:
    from permissions import policy

    app_label, codename = policy.TAG_ADMIN_PERMISSION.split(".", 1)
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def _role_label(role: str, department: str | None) -> str:
    labels = {
        "superuser": "superuser",
        "tag_admin": "tag admin",
        "leader": "department leader",
        "staff": "operator",
    }
    return f"{labels[role]} ({department})" if department else labels[role]


# --- steps: taxonomy ----------------------------------------------------------------------------


def seed_taxonomy(ctx: DemoContext) -> None:
    """Corporate and auto groups through ``tagging.services`` (audited like any other change)."""
    system = AssignmentSource.SYSTEM
    for name, kind, exclusive, parent, _share, _most, tag_names in data.TAXONOMY:
        group = tagging_services.create_group(
            name=name,
            actor=ctx.admin,
            kind=kind,
            exclusive=exclusive,
            parent=ctx.groups.get(parent) if parent else None,
            source=system,
        )
        ctx.groups[name] = group
        for tag_name in tag_names:
            ctx.tags[name, tag_name] = tagging_services.create_tag(
                group, tag_name, actor=ctx.admin, source=system
            )
    group_name, tag_name, proposer = data.PENDING_TAG
    ctx.tags[group_name, tag_name] = tagging_services.create_tag(
        ctx.groups[group_name], tag_name, actor=ctx.users[proposer], status=TagStatus.PENDING
    )
    group_name, tag_name = data.ARCHIVED_TAG
    retired = tagging_services.create_tag(
        ctx.groups[group_name], tag_name, actor=ctx.admin, source=system
    )
    ctx.tags[group_name, tag_name] = tagging_services.archive_tag(
        retired, actor=ctx.admin, reason="活动已结束"
    )


def seed_personal_tags(ctx: DemoContext) -> None:
    for username in data.PERSONAL_OWNERS:
        owner = ctx.users[username]
        group = tagging_services.create_group(
            name=data.PERSONAL_GROUP, actor=owner, kind=TagKind.PERSONAL, owner=owner
        )
        ctx.personal_tags[owner.pk] = [
            tagging_services.create_tag(group, name, actor=owner) for name in data.PERSONAL_TAGS
        ]


# --- customers: one generator -------------------------------------------------------------------

CUSTOMER_COLUMNS = (
    "id", "external_userid", "phone", "name", "remark", "company", "owner_id", "department_id",
    "source", "attributes", "added_at", "created_at", "updated_at", "total_spend", "order_count",
    "last_order_at", "last_contact_at",
)  # fmt: skip
FOLLOWER_COLUMNS = ("customer_id", "employee_id", "added_at", "add_way", "remark")
EVENT_COLUMNS = (
    "customer_id", "kind", "occurred_at", "amount", "quantity", "category", "target", "text",
    "payload", "created_at",
)  # fmt: skip
ASSIGNMENT_COLUMNS = (
    "customer_id", "tag_id", "source", "actor_id", "created_at", "expires_at",
)  # fmt: skip
AUDIT_COLUMNS = (
    "created_at", "actor_id", "action", "source", "customer_id", "tag_id", "group_id",
    "object_repr", "reason",
)  # fmt: skip

# (model, columns): the generator's chunk keys, in write order.
TABLES = {
    "customers": (Customer, CUSTOMER_COLUMNS),
    "followers": (Follower, FOLLOWER_COLUMNS),
    "events": (CustomerEvent, EVENT_COLUMNS),
    "assignments": (TagAssignment, ASSIGNMENT_COLUMNS),
    "audit": (AuditEntry, AUDIT_COLUMNS),
}

# Order matters: generate_rows dispatches on the index (0 browse, 1 message, 2 purchase, ...).
EVENT_WEIGHTS = [
    (EventKind.BROWSE, 28),
    (EventKind.MESSAGE, 18),
    (EventKind.PURCHASE, 13),
    (EventKind.BROADCAST, 10),
    (EventKind.ADD_TO_CART, 8),
    (EventKind.INQUIRY, 6),
    (EventKind.BROADCAST_REPLY, 5),
    (EventKind.SHARE, 4),
    (EventKind.JOIN_GROUP, 3),
    (EventKind.REFERRAL, 2),
    (EventKind.OPPORTUNITY, 2),
]
CONTACT_KINDS = {
    EventKind.MESSAGE,
    EventKind.BROADCAST_REPLY,
    EventKind.INQUIRY,
    EventKind.ADD_EMPLOYEE,
}
ADD_WAYS = [int(way) for way in (AddWay.QR_CODE, AddWay.PHONE_SEARCH, AddWay.CARD_SHARE,
            AddWay.GROUP_CHAT, AddWay.WECHAT_CONTACTS, AddWay.INTERNAL_SHARE)]  # fmt: skip
INTERNAL_SHARE = int(AddWay.INTERNAL_SHARE)


def _cumulative(weights: list[float]) -> list[float]:
    total, out = 0.0, []
    for weight in weights:
        total += weight
        out.append(total)
    return out


def _zipf(n: int, s: float = 1.1) -> list[float]:
    return _cumulative([1 / (rank + 1) ** s for rank in range(n)])


_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def external_userid_for(index: int) -> str:
    """A unique WeCom-looking id: a bijective mix of the index, base62 ("wmE3x...")."""
    x = (index * 0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019) % (1 << 64)
    chars = []
    for _ in range(11):
        x, r = divmod(x, 62)
        chars.append(_B62[r])
    return "wm" + "".join(chars)


def phone_for(index: int) -> str:
    """A unique, valid mainland mobile number in E.164 form."""
    prefixes = data.MOBILE_PREFIXES
    prefix = prefixes[index % len(prefixes)]
    return f"+86{prefix}{(index * 7_654_321 + 13_579_135) % 100_000_000:08d}"


@dataclass
class _Plan:
    """Everything the generator needs, resolved to ids and cumulative weights once."""

    customer_departments: list[tuple[int, list[int]]]
    department_cum: list[float]
    group_plans: list[tuple[float, int, list[int], list[float]]]  # share, most, tag ids, cum
    source_names: dict[int, str]  # 客户来源 tag id -> channel name for Customer.source
    expiring_tag: int
    tag_labels: dict[int, tuple[int, str]]  # tag id -> (group id, "组:标签")
    personal: dict[int, list[int]]  # owner id -> personal tag ids
    editable: dict[int, set[int]]  # owner id -> ids of the groups the owner may edit
    stand_in: int  # who added a tag the customer's owner may not add (the tag admin)


def _plan(ctx: DemoContext) -> _Plan:
    departments = []
    weights: list[float] = []
    for name, weight in data.CUSTOMER_DEPARTMENTS:
        departments.append((ctx.departments[name].pk, ctx.employees_by_department[name]))
        weights.append(weight)
    group_plans = []
    for name, _kind, _exclusive, _parent, share, most, tag_names in data.TAXONOMY:
        if share and tag_names:
            ids = [ctx.tags[name, tag].pk for tag in tag_names]
            group_plans.append((share, most, ids, _zipf(len(ids))))
    labels = {tag.pk: (tag.group_id, str(tag)[:255]) for tag in ctx.tags.values()}
    for tags in ctx.personal_tags.values():
        labels.update({tag.pk: (tag.group_id, str(tag)[:255]) for tag in tags})
    # History respects grants: an owner adds only tags of groups their grants let them edit.
    owner_ids = {owner for _dept, owners in departments for owner in owners}
    editable = {
        user.pk: {pk for pk, level in policy.group_levels(user).items() if level >= Level.EDIT}
        for user in get_user_model().objects.filter(pk__in=owner_ids)
    }
    stand_in = ctx.users.get("tagadmin", ctx.admin).pk
    return _Plan(
        editable=editable,
        stand_in=stand_in,
        customer_departments=departments,
        department_cum=_cumulative(weights),
        group_plans=group_plans,
        source_names={ctx.tags["客户来源", n].pk: n for n in data.TAXONOMY[0][6]},
        expiring_tag=ctx.tags[data.EXPIRING_TAG].pk,
        tag_labels=labels,
        personal={owner: [t.pk for t in tags] for owner, tags in ctx.personal_tags.items()},
    )


class _Discard(list):
    def append(self, item: Any) -> None:
        pass


_discard = _Discard()


def generate_rows(ctx: DemoContext, start_id: int = 1) -> Iterator[dict[str, list[tuple]]]:
    """Yield chunks ``{table: [row tuples in TABLES column order]}`` for ``ctx.customers``
    customers. Deterministic for a given ``ctx.seed``; times are relative to ``ctx.now``.
    Customer aggregates are computed here from the same events (``refresh_aggregates`` gives the
    same values; a test holds that). Written for speed: one million customers with twenty
    events each are some 30 million tuples."""
    rng = random.Random(ctx.seed)
    rand = rng.random

    def pick(seq):  # random.choice and randint are ten times slower; same determinism
        return seq[int(rand() * len(seq))]

    def between(low: int, high: int) -> int:
        return low + int(rand() * (high - low + 1))

    plan = _plan(ctx)
    now = ctx.now
    minutes = DAYS * 24 * 60
    origin = now - timedelta(minutes=minutes)
    # times[i] is minute i of the history (accumulate runs in C: 0.1 s for 576,000 minutes)
    times = list(
        itertools.accumulate(itertools.repeat(timedelta(minutes=1), minutes), initial=origin)
    )
    prices = [(Decimal(p), int(Decimal(p) * 100)) for p in data.PRICES]
    price_cum = _zipf(len(prices), 0.6)
    kind_names = [str(k.value) for k, _w in EVENT_WEIGHTS]
    kind_cum = _cumulative([w for _k, w in EVENT_WEIGHTS])
    kind_total = kind_cum[-1]
    contact = [k in CONTACT_KINDS for k, _w in EVENT_WEIGHTS]
    products = [(category, names) for category, names in data.PRODUCTS.items()]
    # JSON values are shared dicts from small pools (the COPY writer serialises each once).
    attributes = [
        {"city": city, "gender": gender, "age_band": age, "member_level": level}
        for city in data.CITIES
        for gender in data.GENDERS
        for age in data.AGE_BANDS
        for level in data.MEMBER_LEVELS
    ]
    channels = [{"channel": c} for c in data.CHANNELS]
    stages = [{"stage": s} for s in data.OPPORTUNITY_STAGES]
    empty: dict = {}
    sources = [AssignmentSource.MANUAL.value] * 5 + [AssignmentSource.IMPORT.value] * 4
    sources.append(AssignmentSource.API.value)
    added_action = AuditAction.ASSIGNMENT_ADDED.value
    labels, expiring, source_names = plan.tag_labels, plan.expiring_tag, plan.source_names
    editable, stand_in = plan.editable, plan.stand_in
    expires_at = now + timedelta(days=30)
    extra_events = max(0, 2 * ctx.events_per_customer - 2)
    dept_cum, dept_total = plan.department_cum, plan.department_cum[-1]
    given_chars, surnames, materials, messages = (
        data.GIVEN_CHARS, data.SURNAMES, data.MATERIALS, data.MESSAGES
    )  # fmt: skip

    def event(cid: int, k: int, at: int, company: str) -> tuple:
        """One event of kind index ``k`` (EVENT_WEIGHTS order) at minute ``at``."""
        kind, when = kind_names[k], times[at]
        if k == 0:  # browse: material, category, seconds spent
            return (cid, kind, when, None, between(5, 600), pick(products)[0], pick(materials),
                    "", empty, now)  # fmt: skip
        if k == 1:  # message
            return (cid, kind, when, None, None, "", "", pick(messages), empty, now)
        if k == 4 or k == 5:  # add_to_cart, inquiry
            category, names = pick(products)
            text = pick(messages) if k == 5 else ""
            return (cid, kind, when, None, between(1, 3), category, pick(names), text, empty, now)
        if k == 3 or k == 6:  # broadcast, broadcast_reply
            text = pick(data.REPLIES) if k == 6 else ""
            return (cid, kind, when, None, None, "", pick(data.BROADCASTS), text, empty, now)
        if k == 7:  # share
            return (cid, kind, when, None, None, "", pick(materials), "", empty, now)
        if k == 8:  # join_group
            return (cid, kind, when, None, None, "", pick(data.GROUP_CHATS), "", empty, now)
        if k == 9:  # referral: invitees
            return (cid, kind, when, None, between(1, 5), "", "", "", empty, now)
        # opportunity
        return (cid, kind, when, pick(prices)[0] * 10, None, "", company, "", pick(stages), now)

    chunk: dict[str, list[tuple]] = {key: [] for key in TABLES}
    for cid in range(start_id, start_id + ctx.customers):
        events, assignments = chunk["events"], chunk["assignments"]
        audit = chunk["audit"] if ctx.audit else _discard

        # identity: 85% on WeCom, 90% with a phone, never neither
        roll = rand()
        ext = external_userid_for(cid) if roll < 0.85 else None
        phone = phone_for(cid) if roll > 0.10 else None
        surname = pick(data.COMPOUND_SURNAMES) if rand() < 0.01 else pick(surnames)
        name = surname + pick(given_chars) + (pick(given_chars) if rand() < 0.7 else "")
        company = ""
        if rand() < 0.55:
            company = (
                f"{pick(data.CITIES)}{pick(data.COMPANY_WORDS)}{pick(data.COMPANY_KINDS)}有限公司"
            )
        dept_id, owners = plan.customer_departments[bisect.bisect(dept_cum, rand() * dept_total)]
        owner = pick(owners)
        may_edit = editable.get(owner, ())
        added = between(0, minutes - 60 * 24)
        active_until = minutes if rand() < 0.6 else between(added, minutes)

        # followers: the owner, sometimes a colleague too
        chunk["followers"].append((cid, owner, times[added], pick(ADD_WAYS), ""))
        if rand() < 0.2:
            other = pick(owners)
            if other != owner:
                at = times[between(added, minutes)]
                chunk["followers"].append((cid, other, at, INTERNAL_SHARE, ""))

        # events, and the aggregates they imply
        spend = orders = 0
        last_order = last_contact = -1
        if ctx.events_per_customer:
            events.append((cid, "add_employee", times[added], None, None, "", "", "", empty, now))
            last_contact = added
            for _ in range(between(0, extra_events)):
                k = bisect.bisect(kind_cum, rand() * kind_total)
                at = between(added, active_until)
                if k == 2:  # purchase
                    price, cents = prices[bisect.bisect(price_cum, rand() * price_cum[-1])]
                    quantity = between(1, 3)
                    category, names = pick(products)
                    events.append((cid, "purchase", times[at], price * quantity, quantity,
                                   category, pick(names), "", pick(channels), now))  # fmt: skip
                    spend += cents * quantity
                    orders += 1
                    if at > last_order:
                        last_order = at
                else:
                    events.append(event(cid, k, at, company))
                    if contact[k] and at > last_contact:
                        last_contact = at

        # tags: per group, Zipf popularity, at most ``most`` distinct (one in exclusive groups)
        source_name = ""
        for share, most, ids, cum in plan.group_plans:
            if rand() >= share:
                continue
            picked: list[int] = []
            for _ in range(between(1, most) if most > 1 else 1):
                tag_id = ids[bisect.bisect(cum, rand() * cum[-1])]
                if tag_id not in picked:
                    picked.append(tag_id)
            for tag_id in picked:
                source = pick(sources)
                actor = None if source == "import" else owner
                if actor is not None and labels[tag_id][0] not in may_edit:
                    actor = stand_in
                at = times[between(added, minutes)]
                expiry = expires_at if tag_id == expiring else None
                assignments.append((cid, tag_id, source, actor, at, expiry))
                group_id, label = labels[tag_id]
                audit.append((at, actor, added_action, source, cid, tag_id, group_id, label, ""))
                if tag_id in source_names:
                    source_name = source_names[tag_id]
        personal = plan.personal.get(owner)
        if personal and rand() < 0.3:
            tag_id = pick(personal)
            at = times[between(added, minutes)]
            assignments.append((cid, tag_id, "manual", owner, at, None))
            group_id, label = labels[tag_id]
            audit.append((at, owner, added_action, "manual", cid, tag_id, group_id, label, ""))

        chunk["customers"].append((
            cid, ext, phone, name, pick(data.REMARKS), company, owner, dept_id, source_name,
            pick(attributes), times[added], now, now, Decimal(spend).scaleb(-2), orders,
            times[last_order] if last_order >= 0 else None,
            times[last_contact] if last_contact >= 0 else None,
        ))  # fmt: skip
        if len(chunk["customers"]) >= CHUNK:
            yield chunk
            chunk = {key: [] for key in TABLES}
    if chunk["customers"]:
        yield chunk


# --- customers: writing ------------------------------------------------------------------------


def seed_customers(ctx: DemoContext) -> None:
    """Customers with followers, events, tag assignments and the assignments' audit entries,
    set-based: generated in chunks, written by COPY (PostgreSQL) or bulk_create."""
    writer = CopyWriter(TABLES) if connection.vendor == "postgresql" else OrmWriter(TABLES)
    start_id = (Customer.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1
    counts = dict.fromkeys(TABLES, 0)
    writer.begin()
    gc.disable()  # tens of millions of tuples: the cycle collector would double the time
    try:
        for chunk in generate_rows(ctx, start_id):
            writer.write(chunk)
            for key, rows in chunk.items():
                counts[key] += len(rows)
            if ctx.customers >= 50_000 and counts["customers"] % 50_000 == 0:
                ctx.say(f"  {counts['customers']:,} customers, {counts['events']:,} events")
    finally:
        gc.enable()
    if ctx.customers >= 50_000:
        ctx.say("  rebuilding indexes and constraints")
    writer.finish()
    ctx.counts.update(
        customers=counts["customers"],
        followers=counts["followers"],
        events=counts["events"],
        assignments=counts["assignments"],
        audit_entries=counts["audit"],
    )


def rebuild_segment_index(ctx: DemoContext) -> None:
    """The segment bitmap index (PostgreSQL) from the freshly loaded tables."""
    from tagging import bitmaps

    bitmaps.rebuild_index()


def analyze(ctx: DemoContext) -> None:
    """Fresh statistics (and, on PostgreSQL, a visibility map for index-only scans)."""
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        return
    # VACUUM cannot run inside a transaction (e.g. a test's); ANALYZE alone can.
    command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
    with connection.cursor() as cursor:
        for model in (Customer, Follower, CustomerEvent, TagAssignment, AuditEntry, Tag, TagGroup):
            cursor.execute(f'{command} "{model._meta.db_table}"')


# --- the whole seed -----------------------------------------------------------------------------

# In order; later features add their step here (e.g. demo rules, department grants).
SEED_STEPS: list[Callable[[DemoContext], None]] = [
    seed_departments,
    seed_users,
    seed_taxonomy,
    seed_personal_tags,
    seed_grants,
    seed_customers,
    seed_rules,
    rebuild_segment_index,
]


def seed_demo(
    *,
    customers: int = DEFAULT_CUSTOMERS,
    events_per_customer: int = DEFAULT_EVENTS_PER_CUSTOMER,
    seed: int = DEFAULT_SEED,
    reset: bool = False,
    audit: bool | None = None,
    out: TextIO | TextIOBase | None = None,
) -> dict[str, Any]:
    """Write the demo data set in one transaction and return the summary (docs/README.md#seed_demo).

    Raises :class:`DemoError`, writing nothing, when the database already holds customers, tag
    groups, departments or demo users, unless ``reset`` deletes them first (:func:`clear_data`).
    ``audit`` (default: up to ``AUDIT_LIMIT`` customers) writes one audit entry per assignment.
    """
    if customers < 0 or events_per_customer < 0:
        raise DemoError("--customers and --events-per-customer must not be negative.")
    ctx = DemoContext(
        customers=customers,
        events_per_customer=events_per_customer,
        seed=seed,
        audit=customers <= AUDIT_LIMIT if audit is None else audit,
        out=out,
    )
    with transaction.atomic():
        if reset:
            clear_data()
        else:
            found = existing_data()
            if found:
                listed = ", ".join(
                    f"{count} {what.replace('_', ' ')}" for what, count in found.items()
                )
                raise DemoError(
                    f"The database already holds data ({listed}). Nothing was written. "
                    "Run seed_demo --reset to delete it and seed again."
                )
        for step in SEED_STEPS:
            ctx.say(f"- {step.__name__.replace('_', ' ')}")
            step(ctx)
    ctx.say("- analyze")
    analyze(ctx)
    ctx.say("- done")
    return summary(ctx)


def summary(ctx: DemoContext) -> dict[str, Any]:
    return {
        "departments": Department.objects.count(),
        "users": ctx.counts.get("users", 0),
        "groups": TagGroup.objects.count(),
        "tags": Tag.objects.count(),
        "customers": ctx.counts.get("customers", 0),
        "followers": ctx.counts.get("followers", 0),
        "events": ctx.counts.get("events", 0),
        # seeded by hand, import and API, plus those the demo rules made
        "assignments": ctx.counts.get("assignments", 0) + ctx.counts.get("rule_assignments", 0),
        "audit_entries": ctx.counts.get("audit_entries", 0),
        "rules": ctx.counts.get("rules", 0),
        "logins": ctx.logins,
    }


def demo_logins() -> list[dict[str, str]]:
    """The printed logins of an already seeded database (demo users that still exist)."""
    existing = set(
        get_user_model()
        .objects.filter(username__in=[u[0] for u in data.USERS])
        .values_list("username", flat=True)
    )
    return [
        {"username": name, "password": data.DEMO_PASSWORD, "role": _role_label(role, department)}
        for name, _display, department, role in data.USERS
        if name in existing
    ]
