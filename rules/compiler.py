"""Condition tree -> ``Q`` over customers. Pure: builds expressions, never touches the database.

Semantics (STYLE §6):
- Every node compiles to a condition that is definitely true or false for each customer, so
  ``not`` is the complement of its child (NULL-safe): ``not (days since last order ≥ 60)`` also
  matches customers who never ordered.
- A value that does not exist (average, maximum or days since last of a customer without
  matching events; days since a NULL timestamp) matches no comparison. Count and sum of no
  events are 0, so ``count(message, 7d) = 0`` matches customers without messages.
- Fail-closed: an invalid or empty tree compiles to a condition that matches nobody.

``now`` is a parameter (windows and "days since" are relative to it) so the same tree compiles
to the same SQL for the same instant: tests snapshot it, and previews agree with runs.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import operator
import zoneinfo
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, TypeGuard

from django.conf import settings
from django.core.exceptions import EmptyResultSet
from django.db.models import (
    Avg,
    Case,
    Count,
    DecimalField,
    Exists,
    Func,
    IntegerField,
    Lookup,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Sum,
    Value,
    When,
)
from django.db.models import F as Col
from django.db.models.functions import Coalesce
from django.db.models.lookups import GreaterThanOrEqual

from customers.models import Customer, CustomerEvent
from rules import dsl
from rules import fields as F
from tagging.models import TagAssignment

MATCH_NOTHING = Q(pk__in=[])
# The real-time path compiles a rule for a few hundred customers: their ids also restrict every
# event and assignment subquery, or PostgreSQL would aggregate the events of every customer
# (an ``IN (… GROUP BY … HAVING …)`` is not pushed down) to keep a few hundred of them. Set by
# ``compile_node(customer_ids=…)`` for the compile's duration; the result for those customers
# is the same (every subquery is per customer).
_SCOPE: contextvars.ContextVar[tuple[int, ...] | None] = contextvars.ContextVar(
    "rules_compiler_scope", default=None
)
RATIO_SCALE = (
    10_000  # ratios compare as integers: numerator * 10000 op denominator * round(v * 10000)
)


def compile_rule(tree: Any, *, now: dt.datetime, version: int = dsl.TREE_VERSION) -> Q:
    """The customers matching ``tree`` at ``now``; matches nobody if the tree is invalid."""
    try:
        node = dsl.parse_tree(tree, version)
    except dsl.RuleSyntaxError:
        return MATCH_NOTHING
    return compile_node(node, now=now)


def matching_customers(
    tree: Any, *, now: dt.datetime, version: int = dsl.TREE_VERSION
) -> QuerySet[Customer]:
    """The one evaluator: filter this further (e.g. ``pk=...``) to test a single customer."""
    return Customer.objects.filter(compile_rule(tree, now=now, version=version))


def compile_node(
    node: dsl.Node, *, now: dt.datetime, customer_ids: Sequence[int] | None = None
) -> Q:
    """``customer_ids``: the condition is only asked of these customers (the caller filters
    on them too), so the event and assignment subqueries are restricted to them."""
    if customer_ids is None:
        return _compile(node, now)
    token = _SCOPE.set(tuple(customer_ids))
    try:
        return _compile(node, now)
    finally:
        _SCOPE.reset(token)


class InBatch(Lookup):
    """``column IN (ids)`` for the real-time batch's ids: on PostgreSQL ``= ANY(%s)`` with ONE
    array parameter (the same plan as the IN list), elsewhere the IN list. A batch statement
    restricts a dozen subqueries to 500 ids each: as one placeholder per id, preparing it on
    the client (placeholder renaming, psycopg's query split) cost ~0.3 s of CPU per batch."""

    lookup_name = "in_batch"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        ids = list(self.rhs)
        if not ids:
            raise EmptyResultSet
        return f"{lhs} IN ({', '.join(['%s'] * len(ids))})", (*lhs_params, *ids)

    def as_postgresql(self, compiler: Any, connection: Any) -> tuple[str, tuple[Any, ...]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} = ANY(%s::bigint[])", (*lhs_params, list(self.rhs))


def in_batch(column: str, ids: Sequence[int]) -> InBatch:
    """The condition ``column IN ids`` as a filter expression (see :class:`InBatch`)."""
    return InBatch(Col(column), tuple(ids))


def _scoped(queryset: QuerySet[Any]) -> QuerySet[Any]:
    scope = _SCOPE.get()
    return queryset if scope is None else queryset.filter(in_batch("customer_id", scope))


def _compile(node: dsl.Node, now: dt.datetime) -> Q:
    match node:
        case dsl.All(children):
            folded, rest = _fold_events(
                children, now, lambda conds: functools.reduce(operator.and_, conds)
            )
            parts = [*folded, *(_compile(c, now) for c in rest)]
            return functools.reduce(operator.and_, parts)
        case dsl.AnyOf(children, at_least) if at_least == 1 or at_least == len(children):
            join = operator.or_ if at_least == 1 else operator.and_
            folded, rest = _fold_events(children, now, lambda conds: functools.reduce(join, conds))
            parts = [*folded, *(_compile(c, now) for c in rest)]
            return functools.reduce(join, parts)
        case dsl.AnyOf(children, at_least) if all(map(_foldable, children)):
            # "At least k of n event conditions": one pass over the events, counting per
            # customer how many conditions hold (a customer without events holds none).
            events = [c for c in children if _foldable(c)]
            return _events_pass(events, now, lambda conds: _at_least(conds, at_least))
        case dsl.AnyOf(children, at_least):
            parts = [_compile(c, now) for c in children]
            if at_least == 1:
                return functools.reduce(operator.or_, parts)
            if at_least == len(parts):
                return functools.reduce(operator.and_, parts)
            return _at_least(parts, at_least)
        case dsl.Not(child):
            return ~_compile(child, now)
        case dsl.Attribute(spec, cmp):
            if spec.type == F.DAYS:
                return _days_since(spec.column, cmp, now)
            return _compare(spec.column, cmp)
        case dsl.Event():
            return _event(node, now)
        case dsl.Ratio():
            return _ratio(node, now)
        case dsl.HasTag(tag_id, has):
            holders = Q(
                pk__in=_scoped(TagAssignment.objects.filter(tag_id=tag_id)).values("customer_id")
            )
            return holders if has else ~holders
        case dsl.Rfm():
            return _rfm(node, now)
    raise TypeError(f"not a rule node: {node!r}")


# --- comparisons --------------------------------------------------------------------------------


def _compare(key: str, cmp: dsl.Comparison) -> Q:
    op, value = cmp.op, cmp.value
    if op == "eq":
        return Q(**{key: value})
    if op == "ne":
        return ~Q(**{key: value})
    if op in ("gt", "gte", "lt", "lte"):
        return Q(**{f"{key}__{op}": value})
    if op == "between":
        return Q(**{f"{key}__gte": value[0], f"{key}__lte": value[1]})
    if op == "contains":
        return Q(**{f"{key}__contains": value})
    if op == "not_contains":
        return ~Q(**{f"{key}__contains": value})
    if op == "in":
        return Q(**{f"{key}__in": list(value)})
    if op == "not_in":
        return ~Q(**{f"{key}__in": list(value)})
    empty = Q(**{f"{key}__isnull": True}) if key.endswith("_id") else Q(**{key: ""})
    if op == "is_empty":
        return empty
    if op == "not_empty":
        return ~empty
    raise ValueError(op)


def _holds(value: Decimal | int, cmp: dsl.Comparison) -> bool:
    """Whether a constant (the aggregate of no events) satisfies a numeric comparison."""
    v = cmp.value
    return {
        "eq": lambda: bool(value == v),
        "ne": lambda: bool(value != v),
        "gt": lambda: bool(value > v),
        "gte": lambda: bool(value >= v),
        "lt": lambda: bool(value < v),
        "lte": lambda: bool(value <= v),
        "between": lambda: bool(v[0] <= value <= v[1]),
    }[cmp.op]()


def _days_since(column: str, cmp: dsl.Comparison, now: dt.datetime) -> Q:
    """ "Days since <column>" compared with a number of days; NULL never matches."""

    def ago(days: int) -> dt.datetime:
        return now - dt.timedelta(days=days)

    op, v = cmp.op, cmp.value
    if op == "gte":
        return Q(**{f"{column}__lte": ago(v)})
    if op == "gt":
        return Q(**{f"{column}__lt": ago(v)})
    if op == "lte":
        return Q(**{f"{column}__gte": ago(v)})
    if op == "lt":
        return Q(**{f"{column}__gt": ago(v)})
    if op == "between":
        return Q(**{f"{column}__gte": ago(v[1]), f"{column}__lte": ago(v[0])})
    raise ValueError(op)


# --- events -------------------------------------------------------------------------------------


def _window_bounds(window: dsl.Window, now: dt.datetime) -> tuple[dt.datetime, dt.datetime | None]:
    if window.days is not None:
        return now - dt.timedelta(days=window.days), None
    if window.start is None or window.end is None:
        raise ValueError("A window has either days or both dates (rules.dsl checks it).")
    tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    start = dt.datetime.combine(window.start, dt.time.min, tzinfo=tz)
    end = dt.datetime.combine(window.end + dt.timedelta(days=1), dt.time.min, tzinfo=tz)
    return start, end


def selector_q(selector: dsl.Selector, now: dt.datetime) -> Q:
    """The events a selector picks, as a condition on CustomerEvent."""
    return Q(kind=selector.kind) & _window_and_filters(selector, now)


def _window_and_filters(selector: dsl.Selector, now: dt.datetime) -> Q:
    q = Q()
    if selector.window is not None:
        start, end = _window_bounds(selector.window, now)
        q &= Q(occurred_at__gte=start)
        if end is not None:
            q &= Q(occurred_at__lt=end)
    for key, value in selector.filters:
        column, lookup = F.EVENT_FILTERS[key]
        q &= Q(**{f"{column}__{lookup}": value})
    return q


def _event(node: dsl.Event, now: dt.datetime) -> Q:
    events = _scoped(CustomerEvent.objects.filter(selector_q(node.selector, now)))
    cmp = node.cmp
    if node.agg == "count" and _is_any_event(cmp):
        # "at least one" / "none": a plain semi-join, no grouping.
        if _holds(1, cmp):
            return Q(pk__in=events.values("customer_id"))
        # "None": NOT EXISTS, which PostgreSQL plans as an anti-join it can run after the
        # other conditions have narrowed the customers (NOT IN is a hashed subplan checked
        # against every customer row).
        return ~Q(Exists(events.filter(customer_id=OuterRef("pk"))))
    if node.agg == "days_since_last":
        per_customer = events.values("customer_id").annotate(v=Max("occurred_at"))
        return Q(pk__in=per_customer.filter(_days_since("v", cmp, now)).values("customer_id"))
    per_customer = events.values("customer_id").annotate(v=_aggregate(node))
    empty = F.AGGREGATES[node.agg]["empty"]
    if empty is not None and _holds(empty, cmp):
        # Customers without events match too: everyone except those whose value fails.
        return ~Q(pk__in=per_customer.filter(~_compare("v", cmp)).values("customer_id"))
    return Q(pk__in=per_customer.filter(_compare("v", cmp)).values("customer_id"))


def _foldable(node: dsl.Node) -> TypeGuard[dsl.Event]:
    """An event condition that no customer without matching events satisfies, so it can share
    one grouped pass over the events with its siblings (customers absent from it fail it)."""
    if not isinstance(node, dsl.Event):
        return False
    empty = F.AGGREGATES[node.agg]["empty"]
    return empty is None or not _holds(empty, node.cmp)


def _fold_events(
    children: tuple[dsl.Node, ...], now: dt.datetime, combine: Callable[[list[Q]], Q]
) -> tuple[list[Q], list[dsl.Node]]:
    """Sibling event conditions joined by and/or, folded into ONE grouped subquery over the
    events (an aggregate with a FILTER per condition) instead of one subquery each; returns
    that condition (if two or more folded) and the children left to compile one by one."""
    events = [c for c in children if _foldable(c)]
    if len(events) < 2:
        return [], list(children)
    return [_events_pass(events, now, combine)], [c for c in children if c not in events]


def _events_pass(
    events: Sequence[dsl.Event],
    now: dt.datetime,
    combine: Callable[[list[Q]], Q],
) -> Q:
    """Customers in one ``GROUP BY customer_id`` over the union of the events' selectors whose
    per-condition aggregates (each restricted with FILTER to its own selector) satisfy
    ``combine`` of the conditions."""
    where, selectors = _union(events, now)
    aggregates: dict[str, Func] = {}
    conditions: list[Q] = []
    for i, (event, picks) in enumerate(zip(events, selectors, strict=True)):
        name = f"v{i}"
        aggregates[name] = _aggregate(event, picks)
        if event.agg == "days_since_last":
            conditions.append(_days_since(name, event.cmp, now))
        else:
            conditions.append(_compare(name, event.cmp))
    per_customer = (
        _scoped(CustomerEvent.objects.filter(where)).values("customer_id").annotate(**aggregates)
    )
    return Q(pk__in=per_customer.filter(combine(conditions)).values("customer_id"))


def _union(events: Sequence[dsl.Event], now: dt.datetime) -> tuple[Q, list[Q]]:
    """The events any of the selectors picks, and each one's own: ``kind IN (...)`` plus the
    shared window and filters when the selectors differ only in kind (an index range per kind;
    each FILTER then only tests the kind), else the OR of the selectors."""
    first = events[0].selector
    if all(
        e.selector.window == first.window and e.selector.filters == first.filters for e in events
    ):
        kinds = list(dict.fromkeys(e.selector.kind for e in events))
        where = Q(kind__in=kinds) & _window_and_filters(first, now)
        return where, [Q(kind=e.selector.kind) for e in events]
    selectors = [selector_q(e.selector, now) for e in events]
    return functools.reduce(operator.or_, selectors), selectors


def _aggregate(node: dsl.Event, picks: Q | None = None) -> Func:
    """The event aggregate of ``node``, over the events ``picks`` selects (FILTER) if given."""
    money = DecimalField(max_digits=20, decimal_places=4)
    if node.agg == "days_since_last":
        return Max("occurred_at", filter=picks)
    if node.agg == "count":
        return Count("pk", filter=picks)
    if node.agg == "sum":
        return Coalesce(Sum(node.measure, filter=picks), Value(0), output_field=money)
    if node.agg == "avg":
        return Avg(node.measure, filter=picks, output_field=money)
    if node.agg == "max":
        return Max(node.measure, filter=picks)
    raise ValueError(node.agg)


def _at_least(conditions: list[Q], at_least: int) -> Q:
    held = functools.reduce(
        operator.add,
        (
            Case(When(c, then=Value(1)), default=Value(0), output_field=IntegerField())
            for c in conditions
        ),
    )
    return Q(GreaterThanOrEqual(held, Value(at_least)))


def _is_any_event(cmp: dsl.Comparison) -> bool:
    """Comparisons of a count that only ask "is there at least one" (count ≥ 1, count = 0...)."""
    v = cmp.value
    return (cmp.op, v) in {("gte", 1), ("gt", 0), ("eq", 0), ("lt", 1), ("lte", 0)}


def _ratio(node: dsl.Ratio, now: dt.datetime) -> Q:
    num_q = selector_q(node.numerator, now)
    den_q = selector_q(node.denominator, now)
    per_customer = (
        _scoped(CustomerEvent.objects.filter(num_q | den_q))
        .values("customer_id")
        .annotate(n=Count("pk", filter=num_q) * RATIO_SCALE, d=Count("pk", filter=den_q))
        .filter(d__gt=0)
    )
    cmp = node.cmp

    def scaled(v: Decimal) -> Any:
        from django.db.models import F as Col

        return Col("d") * int((v * RATIO_SCALE).to_integral_value())

    if cmp.op == "between":
        cond = Q(n__gte=scaled(cmp.value[0])) & Q(n__lte=scaled(cmp.value[1]))
    else:
        cond = Q(**{f"n__{cmp.op}": scaled(cmp.value)})
    return Q(pk__in=per_customer.filter(cond).values("customer_id"))


# --- RFM ----------------------------------------------------------------------------------------


def _score_range(cmp: dsl.Comparison) -> tuple[int, int]:
    v = cmp.value
    ranges: dict[str, Callable[[], tuple[int, int]]] = {
        "eq": lambda: (int(v), int(v)),
        "gt": lambda: (int(v) + 1, 5),
        "gte": lambda: (int(v), 5),
        "lt": lambda: (1, int(v) - 1),
        "lte": lambda: (1, int(v)),
        "between": lambda: (int(v[0]), int(v[1])),
    }
    return ranges[cmp.op]()


def _rfm(node: dsl.Rfm, now: dt.datetime) -> Q:
    """A score range becomes a range on one customer column, so it can use an index."""
    if node.cmp.op == "ne":
        return ~_rfm(
            dsl.Rfm(node.metric, node.thresholds, dsl.Comparison("eq", node.cmp.value)), now
        )
    low, high = _score_range(node.cmp)
    if low > high:
        return MATCH_NOTHING
    t = node.thresholds
    column = F.RFM_METRICS[node.metric]["column"]
    q = Q()
    if node.metric == "recency":
        # Score ≥ a: last order within t[5-a] days. Score ≤ b: older than t[4-b] days, or never.
        if low > 1:
            q &= Q(**{f"{column}__gte": now - dt.timedelta(days=float(t[5 - low]))})
        if high < 5:
            q &= Q(**{f"{column}__lt": now - dt.timedelta(days=float(t[4 - high]))}) | Q(
                **{f"{column}__isnull": True}
            )
    else:
        # Score ≥ a: value ≥ t[a-2]. Score ≤ b: value < t[b-1].
        if low > 1:
            q &= Q(**{f"{column}__gte": t[low - 2]})
        if high < 5:
            q &= Q(**{f"{column}__lt": t[high - 1]})
    return q if q else Q(pk__isnull=False)
