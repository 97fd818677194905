"""Tag analytics for the admin pages (docs/segments.md#analytics): every figure is for one user —
only tags shown to them on customers (``policy.customer_tags``: never another employee's personal
tags), only customers in their scope (``permissions.policy``) — optionally narrowed to a
department subtree and a date range. Each function returns plain rows (dicts) that the page
draws (``tagging.charts``) and downloads as CSV, so the table and the chart always agree.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, F, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce, Now, TruncDate
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from customers.models import Customer
from permissions import policy
from permissions.models import Department
from tagging import bitmaps
from tagging.models import AssignmentSource, AuditAction, AuditEntry, TagAssignment


@dataclass
class Filters:
    """What every analytics function is narrowed by; built from the page's GET parameters."""

    department: Department | None = None
    start: dt.date | None = None
    end: dt.date | None = None  # inclusive

    def range(self) -> tuple[dt.datetime, dt.datetime]:
        today = timezone.localdate()
        end = self.end or today
        start = self.start or end - dt.timedelta(days=29)
        tz = timezone.get_current_timezone()
        return (
            dt.datetime.combine(start, dt.time.min, tzinfo=tz),
            dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz),
        )


def customer_scope(user: Any, filters: Filters) -> QuerySet[Customer]:
    qs = (
        Customer.objects.all()
        if policy.sees_all_customers(user)
        else policy.visible_customers(user)
    )
    if filters.department is not None:
        qs = qs.filter(department__path__startswith=filters.department.path)
    return qs


def _restricted(user: Any, filters: Filters) -> bool:
    return filters.department is not None or not policy.sees_all_customers(user)


def customers_per_tag(user: Any, filters: Filters) -> list[dict]:
    """Per visible tag: customers (in scope) carrying it, most used first."""
    tags = policy.customer_tags(user)
    if bitmaps.available() and not _restricted(user, filters):
        counts = bitmaps.sizes()  # company-wide counts straight from the segment index
    else:
        assignments = TagAssignment.objects.filter(tag__in=tags.values("pk"))
        if _restricted(user, filters):
            scope = customer_scope(user, filters)
            assignments = assignments.filter(customer__in=scope.values("pk"))
        counts = dict(
            assignments.values_list("tag_id").annotate(n=Count("pk")).values_list("tag_id", "n")
        )
    rows = [
        {
            "tag_id": t.pk,
            "group": t.group.label,
            "tag": t.name,
            "status": t.status,
            "customers": counts.get(t.pk, 0),
        }
        for t in tags.select_related("group__owner")
    ]
    return sorted(rows, key=lambda r: (-r["customers"], r["group"], r["tag"]))


def group_coverage(user: Any, filters: Filters) -> list[dict]:
    """Per visible group: customers with at least one of its tags, and their share of the
    customers in scope ("coverage")."""
    scope = customer_scope(user, filters)
    total = scope.count()
    groups = policy.customer_groups(user)
    assignments = TagAssignment.objects.filter(tag__group__in=groups.values("pk"))
    if _restricted(user, filters):
        assignments = assignments.filter(customer__in=scope.values("pk"))
    counts = dict(
        assignments.values_list("tag__group_id")
        .annotate(n=Count("customer_id", distinct=True))
        .values_list("tag__group_id", "n")
    )
    rows = [
        {
            "group_id": g.pk,
            "group": g.label,
            "kind": g.kind,
            "customers": counts.get(g.pk, 0),
            "coverage": round(counts.get(g.pk, 0) / total, 4) if total else 0.0,
        }
        for g in groups.select_related("owner")
    ]
    return sorted(rows, key=lambda r: (-r["customers"], r["group"]))


DIMENSIONS = {
    "source": (_("source"), "source"),
    "employee": (_("employee"), "actor_id"),  # labelled with display names (employee_labels)
    "department": (_("department"), "actor__memberships__department__name"),
}


def assignments_over_time(user: Any, filters: Filters, by: str = "source") -> list[dict]:
    """New assignments per day within the date range, split by ``by`` (source, employee — who
    added them — or department — of who added them; an employee in two departments counts in
    both). Counted from the audit log, so later removals do not rewrite history."""
    if by not in DIMENSIONS:
        raise ValueError(f"unknown dimension {by!r}")
    start, end = filters.range()
    entries = AuditEntry.objects.filter(
        action=AuditAction.ASSIGNMENT_ADDED,
        created_at__gte=start,
        created_at__lt=end,
        tag__in=policy.customer_tags(user).values("pk"),
    )
    if _restricted(user, filters):
        entries = entries.filter(customer__in=customer_scope(user, filters).values("pk"))
    field = DIMENSIONS[by][1]
    rows = list(
        entries.annotate(day=TruncDate("created_at", tzinfo=timezone.get_current_timezone()))
        .values("day", key=F(field))
        .annotate(n=Count("pk"))
        .order_by("day", "key")
    )
    labels: dict[Any, Any]
    if by == "source":
        labels = dict(AssignmentSource.choices)
    elif by == "employee":
        labels = employee_labels({row["key"] for row in rows if row["key"] is not None})
    else:
        labels = {}
    return [
        {
            "day": row["day"],
            by: labels.get(row["key"], row["key"]) or "—",
            "assignments": row["n"],
        }
        for row in rows
    ]


def employee_labels(ids: set[int]) -> dict[int, str]:
    """{employee id: display name} for charts and tables (张伟, not zhangwei); two employees with
    the same display name get their username added, so their bars never merge. One query."""
    from django.contrib.auth import get_user_model

    if not ids:
        return {}
    users = list(get_user_model().objects.filter(pk__in=ids).only("username", "display_name"))
    names = [str(u) for u in users]
    return {
        u.pk: f"{name} ({u.username})" if names.count(name) > 1 else name
        for u, name in zip(users, names, strict=True)
    }


def customers_per_employee(user: Any, filters: Filters) -> list[dict]:
    """Per employee: customers (in scope) they follow (WeCom follow_user), most first."""
    from customers.models import Follower

    followers = Follower.objects.all()
    if _restricted(user, filters):
        followers = followers.filter(customer__in=customer_scope(user, filters).values("pk"))
    counts = dict(
        followers.order_by()
        .values_list("employee_id")
        .annotate(n=Count("customer_id", distinct=True))
        .values_list("employee_id", "n")
    )
    labels = employee_labels(set(counts))
    rows = [{"employee": labels.get(pk, "—"), "customers": n} for pk, n in counts.items()]
    return sorted(rows, key=lambda r: (-r["customers"], r["employee"]))


def rule_results_over_time(user: Any, filters: Filters) -> list[dict]:
    """Per day and rule (rules whose tag the user may view): customers matched, added, removed
    by finished runs (not dry runs) in the date range.

    A run's own counts are company-wide; a reader with a narrower customer scope (or a
    department filter) gets the added and removed customers counted within that scope instead,
    from the audit rows the run wrote, and no ``matched`` (None: a run does not record whom it
    matched, so it cannot be narrowed)."""
    from rules.models import RuleRun

    start, end = filters.range()
    # Any: for restricted readers the rows carry the scoped_added / scoped_removed annotations.
    runs: QuerySet[Any] = (
        RuleRun.objects.filter(
            dry_run=False,
            started_at__gte=start,
            started_at__lt=end,
            rule__tag__in=policy.customer_tags(user).values("pk"),
        )
        .filter(~Q(status="running"))
        .select_related("rule")
        .order_by("started_at", "pk")
    )
    restricted = _restricted(user, filters)
    if restricted:
        written = AuditEntry.objects.filter(
            source=AssignmentSource.RULE,
            rule_id=OuterRef("rule_id"),
            created_at__gte=OuterRef("started_at"),
            created_at__lte=Coalesce(OuterRef("finished_at"), Now()),
            customer__in=customer_scope(user, filters).values("pk"),
        )

        def scoped(action: str) -> Coalesce:
            counted = (
                written.filter(action=action)
                .order_by()
                .values("rule_id")
                .annotate(n=Count("pk"))
                .values("n")
            )
            return Coalesce(Subquery(counted), 0)

        runs = runs.annotate(
            scoped_added=scoped(AuditAction.ASSIGNMENT_ADDED),
            scoped_removed=scoped(AuditAction.ASSIGNMENT_REMOVED),
        )
    tz = timezone.get_current_timezone()
    return [
        {
            "day": run.started_at.astimezone(tz).date(),
            "rule": run.rule.name,
            "status": run.status,
            "matched": None if restricted else run.matched or 0,
            "added": run.scoped_added if restricted else run.added or 0,
            "removed": run.scoped_removed if restricted else run.removed or 0,
        }
        for run in runs
    ]


def pivot(rows: list[dict], key: str, value: str) -> tuple[list, dict[str, list[int]]]:
    """Rows of (day, key, value) as (days, {key: [value per day]}), missing days filled with 0,
    for the stacked chart."""
    days = sorted({r["day"] for r in rows})
    if days:
        days = [days[0] + dt.timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]
    index = {d: i for i, d in enumerate(days)}
    series: dict[str, list[int]] = {}
    for r in rows:
        series.setdefault(str(r[key]), [0] * len(days))[index[r["day"]]] += r[value]
    return days, series
