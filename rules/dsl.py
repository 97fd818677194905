"""The rule language: parse a JSON condition tree into typed nodes, with friendly errors.

Format (``tree_version`` 1). A node is exactly one of::

    {"all": [node, ...]}                      every child holds
    {"any": [node, ...]}                      at least one child holds
    {"any": [node, ...], "at_least": 2}       at least N children hold ("满足两项即可")
    {"not": node}                             the child does not hold
    {"attribute": "total_spend", "op": "gt", "value": 20000}
    {"event": "purchase", "agg": "sum", "measure": "amount", "window": {"days": 90},
     "category": "儿童玩具", "text_contains": "价格", "target": "SKU-1", "op": "gt", "value": 2000}
    {"ratio": {"numerator": <selector>, "denominator": <selector>}, "op": "gte", "value": 0.7}
        where a selector is {"event": kind, "window": ..., "category"/"text_contains"/"target"}
        and the value is a fraction (0.7 = 70 %); customers without denominator events never match
    {"tag": 12, "op": "has" | "lacks"}
    {"rfm": "recency" | "frequency" | "monetary", "op": "gte", "value": 4,
     "thresholds": [b1, b2, b3, b4]}          thresholds optional (defaults in rules.fields)

A window is ``{"days": N}`` (the last N days) or ``{"from": "2026-01-01", "to": "2026-03-31"}``
(inclusive dates in the company time zone); without a window every event counts.

This module is pure (no database, no models: ``rules.models`` builds on it).
``rules.models.check_references`` adds the checks that need the database (the referenced tags
exist; a rule never depends on its own tag, directly or through other rules).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.translation import gettext as _

from rules import fields as F

TREE_VERSION = 1
MAX_DEPTH = 8
MAX_NODES = 100
# Bounds that keep date arithmetic in range: "days since" values and recency thresholds are at
# most about 100 years, window dates lie in 1900-2199 (the compiler adds a day to the end date;
# 9999-12-31 would overflow, and no event is that old or that far ahead).
MAX_DAYS = 36_500
MIN_DATE, MAX_DATE = dt.date(1900, 1, 1), dt.date(2199, 12, 31)


class RuleSyntaxError(Exception):
    """The tree is invalid. ``errors`` lists ``(location, message)`` pairs, all of them."""

    def __init__(self, errors: list[tuple[str, str]]) -> None:
        self.errors = errors
        super().__init__(self.messages()[0] if errors else "invalid rule")

    def messages(self) -> list[str]:
        return [
            _("Condition %(loc)s: %(msg)s") % {"loc": loc, "msg": msg} if loc else msg
            for loc, msg in self.errors
        ]

    def __str__(self) -> str:
        return "; ".join(self.messages())


# --- typed nodes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    days: int | None = None
    start: dt.date | None = None
    end: dt.date | None = None


@dataclass(frozen=True)
class Selector:
    kind: str
    window: Window | None = None
    filters: tuple[tuple[str, str], ...] = ()  # (filter key, value), sorted


@dataclass(frozen=True)
class Comparison:
    op: str
    value: Any = None  # Decimal, int, str, list, or (low, high)


@dataclass(frozen=True)
class All:
    children: tuple[Node, ...]


@dataclass(frozen=True)
class AnyOf:
    children: tuple[Node, ...]
    at_least: int = 1


@dataclass(frozen=True)
class Not:
    child: Node


@dataclass(frozen=True)
class Attribute:
    field: F.AttributeField
    cmp: Comparison


@dataclass(frozen=True)
class Event:
    selector: Selector
    agg: str
    measure: str | None
    cmp: Comparison


@dataclass(frozen=True)
class Ratio:
    numerator: Selector
    denominator: Selector
    cmp: Comparison


@dataclass(frozen=True)
class HasTag:
    tag_id: int
    has: bool = True


@dataclass(frozen=True)
class Rfm:
    metric: str
    thresholds: tuple[Decimal, ...]
    cmp: Comparison


Node = All | AnyOf | Not | Attribute | Event | Ratio | HasTag | Rfm
LEAF_KEYS = ("attribute", "event", "ratio", "tag", "rfm")
GROUP_KEYS = ("all", "any", "not")


# --- parser -----------------------------------------------------------------------------------


@dataclass
class _Parser:
    errors: list[tuple[str, str]] = field(default_factory=list)
    count: int = 0

    def fail(self, loc: str, message: str) -> None:
        self.errors.append((loc, message))

    def node(self, raw: Any, loc: str, depth: int) -> Node | None:
        self.count += 1
        if self.count > MAX_NODES:
            if self.count == MAX_NODES + 1:
                self.fail("", _("A rule may have at most %(n)d conditions.") % {"n": MAX_NODES})
            return None
        if depth > MAX_DEPTH:
            self.fail(
                loc,
                _("Conditions are nested too deeply (at most %(n)d levels).") % {"n": MAX_DEPTH},
            )
            return None
        if not isinstance(raw, dict):
            self.fail(
                loc, _("Expected a condition (an object), got %(got)s.") % {"got": _kind_of(raw)}
            )
            return None
        keys = [k for k in (*GROUP_KEYS, *LEAF_KEYS) if k in raw]
        if len(keys) != 1:
            self.fail(
                loc,
                _("A condition needs exactly one of: %(keys)s.")
                % {"keys": ", ".join((*GROUP_KEYS, *LEAF_KEYS))},
            )
            return None
        parse_node: Callable[[dict[str, Any], str, int], Node | None] = getattr(self, "_" + keys[0])
        return parse_node(raw, loc, depth)

    def _unknown_keys(self, raw: dict[str, Any], allowed: set[str], loc: str) -> None:
        extra = sorted(set(raw) - allowed)
        if extra:
            self.fail(loc, _("Unknown setting(s): %(keys)s.") % {"keys": ", ".join(extra)})

    def _children(self, raw: Any, loc: str, depth: int) -> tuple[Node, ...] | None:
        if not isinstance(raw, list) or not raw:
            self.fail(loc, _("A group needs a non-empty list of conditions."))
            return None
        nodes = [
            self.node(child, f"{loc}.{i}" if loc else str(i), depth + 1)
            for i, child in enumerate(raw, 1)
        ]
        children = tuple(n for n in nodes if n is not None)
        return children if len(children) == len(nodes) else None

    def _all(self, raw: dict[str, Any], loc: str, depth: int) -> Node | None:
        self._unknown_keys(raw, {"all"}, loc)
        children = self._children(raw["all"], loc, depth)
        return All(children) if children else None

    def _any(self, raw: dict[str, Any], loc: str, depth: int) -> Node | None:
        self._unknown_keys(raw, {"any", "at_least"}, loc)
        children = self._children(raw["any"], loc, depth)
        at_least = raw.get("at_least", 1)
        if isinstance(at_least, bool) or not isinstance(at_least, int) or at_least < 1:
            self.fail(loc, _("“at least” must be a whole number of at least 1."))
            return None
        if children and at_least > len(children):
            self.fail(
                loc,
                _("“at least %(n)d” cannot be met by %(k)d conditions.")
                % {"n": at_least, "k": len(children)},
            )
            return None
        return AnyOf(children, at_least) if children else None

    def _not(self, raw: dict[str, Any], loc: str, depth: int) -> Node | None:
        self._unknown_keys(raw, {"not"}, loc)
        child = self.node(raw["not"], loc, depth + 1)
        return Not(child) if child else None

    def _attribute(self, raw: dict[str, Any], loc: str, depth: int) -> Node | None:
        self._unknown_keys(raw, {"attribute", "op", "value"}, loc)
        spec = F.ATTRIBUTES.get(raw["attribute"]) if isinstance(raw["attribute"], str) else None
        if spec is None:
            self.fail(
                loc,
                _("Unknown customer field “%(f)s”; choose one of: %(all)s.")
                % {"f": raw["attribute"], "all": ", ".join(F.ATTRIBUTES)},
            )
            return None
        cmp = self.comparison(raw, spec.type, loc)
        return Attribute(spec, cmp) if cmp else None

    def _event(self, raw: dict[str, Any], loc: str, depth: int) -> Node | None:
        self._unknown_keys(
            raw, {"event", "agg", "measure", "window", "op", "value", *F.EVENT_FILTERS}, loc
        )
        selector = self.selector(raw, loc)
        agg = raw.get("agg", "count")
        if agg not in F.AGGREGATES:
            self.fail(
                loc,
                _("Unknown aggregate “%(a)s”; choose one of: %(all)s.")
                % {"a": agg, "all": ", ".join(F.AGGREGATES)},
            )
            return None
        measure = None
        if F.AGGREGATES[agg]["measure"]:
            measure = raw.get("measure", "amount")
            if measure not in F.MEASURES:
                self.fail(loc, _("“measure” must be “amount” or “quantity”."))
                return None
        elif "measure" in raw:
            self.fail(loc, _("“%(a)s” takes no measure.") % {"a": agg})
            return None
        cmp = self.comparison(raw, F.AGGREGATES[agg]["type"], loc)
        if selector is None or cmp is None:
            return None
        return Event(selector, agg, measure, cmp)

    def _ratio(self, raw: dict[str, Any], loc: str, depth: int) -> Node | None:
        self._unknown_keys(raw, {"ratio", "op", "value"}, loc)
        spec = raw["ratio"]
        if not isinstance(spec, dict) or set(spec) != {"numerator", "denominator"}:
            self.fail(loc, _("A ratio needs exactly a “numerator” and a “denominator”."))
            return None
        parts: list[Selector | None] = []
        for part in ("numerator", "denominator"):
            sel = spec[part]
            if not isinstance(sel, dict) or "event" not in sel:
                self.fail(
                    f"{loc} {part}", _('Expected an event selector such as {"event": "purchase"}.')
                )
                return None
            self._unknown_keys(sel, {"event", "window", *F.EVENT_FILTERS}, f"{loc} {part}")
            parts.append(self.selector(sel, f"{loc} {part}"))
        cmp = self.comparison(raw, F.NUMBER, loc, ops=("gt", "gte", "lt", "lte", "between"))
        if cmp is not None:
            values = cmp.value if cmp.op == "between" else (cmp.value,)
            if any(v < 0 or v > 1 for v in values):
                self.fail(loc, _("A ratio is a fraction between 0 and 1 (0.25 = 25%)."))
                return None
        numerator, denominator = parts
        if numerator is None or denominator is None or cmp is None:
            return None
        return Ratio(numerator, denominator, cmp)

    def _tag(self, raw: dict[str, Any], loc: str, depth: int) -> Node | None:
        self._unknown_keys(raw, {"tag", "op"}, loc)
        tag_id = raw["tag"]
        op = raw.get("op", "has")
        if isinstance(tag_id, bool) or not isinstance(tag_id, int) or tag_id < 1:
            self.fail(loc, _("“tag” must be a tag id."))
            return None
        if op not in ("has", "lacks"):
            self.fail(loc, _("A tag condition is “has” or “lacks”."))
            return None
        return HasTag(tag_id, op == "has")

    def _rfm(self, raw: dict[str, Any], loc: str, depth: int) -> Node | None:
        self._unknown_keys(raw, {"rfm", "op", "value", "thresholds"}, loc)
        metric = raw["rfm"]
        if metric not in F.RFM_METRICS:
            self.fail(loc, _("RFM metric must be recency, frequency or monetary."))
            return None
        thresholds = raw.get("thresholds", F.RFM_METRICS[metric]["default"])
        given = [_number(t) for t in thresholds] if isinstance(thresholds, list | tuple) else []
        nums = [n for n in given if n is not None]
        if len(given) != 4 or len(nums) != 4 or nums != sorted(set(nums)) or nums[0] < 0:
            self.fail(loc, _("RFM thresholds are four increasing numbers ≥ 0."))
            return None
        if metric == "recency" and nums[-1] > MAX_DAYS:
            self.fail(loc, _("Recency thresholds are at most %(n)s days.") % {"n": f"{MAX_DAYS:,}"})
            return None
        cmp = self.comparison(raw, F.NUMBER, loc)
        if cmp is None:
            return None
        values = cmp.value if cmp.op == "between" else (cmp.value,)
        if any(v != int(v) or not 1 <= v <= 5 for v in values):
            self.fail(loc, _("An RFM score is a whole number from 1 to 5."))
            return None
        return Rfm(metric, tuple(nums), cmp)

    # -- parts --

    def selector(self, raw: dict[str, Any], loc: str) -> Selector | None:
        kind = raw["event"]
        if kind not in F.EVENT_KINDS:
            self.fail(
                loc,
                _("Unknown event kind “%(k)s”; choose one of: %(all)s.")
                % {"k": kind, "all": ", ".join(F.EVENT_KINDS)},
            )
            return None
        filters = []
        for key in F.EVENT_FILTERS:
            if key in raw:
                value = raw[key]
                if not isinstance(value, str) or not value.strip():
                    self.fail(loc, _("“%(f)s” must be non-empty text.") % {"f": key})
                    return None
                filters.append((key, value.strip()))
        window = self.window(raw.get("window"), loc)
        if isinstance(window, bool):  # False: the window was refused (and reported)
            return None
        return Selector(kind, window, tuple(sorted(filters)))

    def window(self, raw: Any, loc: str) -> Window | None | bool:
        if raw is None:
            return None
        if isinstance(raw, dict) and set(raw) == {"days"}:
            days = raw["days"]
            if (
                isinstance(days, bool)
                or not isinstance(days, int)
                or not 1 <= days <= F.MAX_WINDOW_DAYS
            ):
                self.fail(loc, _("A window is 1 to %(n)d days.") % {"n": F.MAX_WINDOW_DAYS})
                return False
            return Window(days=days)
        if isinstance(raw, dict) and set(raw) == {"from", "to"}:
            try:
                start = dt.date.fromisoformat(str(raw["from"]))
                end = dt.date.fromisoformat(str(raw["to"]))
            except ValueError:
                self.fail(loc, _("Window dates are written YYYY-MM-DD."))
                return False
            if not (MIN_DATE <= start <= MAX_DATE and MIN_DATE <= end <= MAX_DATE):
                self.fail(
                    loc,
                    _("Window dates lie between %(min)s and %(max)s.")
                    % {"min": MIN_DATE.isoformat(), "max": MAX_DATE.isoformat()},
                )
                return False
            if end < start:
                self.fail(loc, _("The window ends before it starts."))
                return False
            return Window(start=start, end=end)
        self.fail(loc, _('A window is {"days": N} or {"from": date, "to": date}.'))
        return False

    def comparison(
        self, raw: dict[str, Any], value_type: str, loc: str, ops: tuple[str, ...] | None = None
    ) -> Comparison | None:
        allowed = ops or F.OPERATORS_BY_TYPE[value_type]
        op = raw.get("op")
        if op not in allowed:
            self.fail(
                loc,
                _("Operator “%(op)s” is not allowed here; use one of: %(all)s.")
                % {"op": op, "all": ", ".join(allowed)},
            )
            return None
        arity = F.OPERATORS[op].arity
        value = raw.get("value")
        if arity == "none":
            if value not in (None, ""):
                self.fail(loc, _("“%(op)s” takes no value.") % {"op": op})
                return None
            return Comparison(op)
        if arity == "two":
            if not isinstance(value, list | tuple) or len(value) != 2:
                self.fail(loc, _("“between” needs two values [low, high]."))
                return None
            low, high = (self.scalar(v, value_type, loc) for v in value)
            if low is None or high is None:
                return None
            if low > high:
                self.fail(loc, _("The low end is above the high end."))
                return None
            return Comparison(op, (low, high))
        if arity == "many":
            if not isinstance(value, list | tuple) or not value:
                self.fail(loc, _("“%(op)s” needs a non-empty list of values.") % {"op": op})
                return None
            items = [self.scalar(v, value_type, loc) for v in value]
            if None in items:
                return None
            return Comparison(op, tuple(dict.fromkeys(items)))
        scalar = self.scalar(value, value_type, loc)
        return None if scalar is None else Comparison(op, scalar)

    def scalar(self, value: Any, value_type: str, loc: str) -> Any:
        if value_type == F.TEXT:
            if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
                self.fail(loc, _("Expected non-empty text."))
                return None
            return str(value)
        if value_type == F.REF:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                self.fail(loc, _("Expected an id."))
                return None
            return value
        number = _number(value)
        if number is None:
            self.fail(loc, _("Expected a number, got %(got)r.") % {"got": value})
            return None
        if value_type == F.DAYS and (number < 0 or number != int(number) or number > MAX_DAYS):
            self.fail(loc, _("Days are a whole number from 0 to %(n)s.") % {"n": f"{MAX_DAYS:,}"})
            return None
        return int(number) if value_type == F.DAYS else number


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str | Decimal):
        return None
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not number.is_finite() or abs(number) > Decimal("1e12"):
        return None
    return number


def _kind_of(value: Any) -> str:
    return type(value).__name__ if value is not None else "null"


def parse_tree(tree: Any, version: int = TREE_VERSION) -> Node:
    """Validate ``tree`` into typed nodes, or raise :class:`RuleSyntaxError` listing every
    problem. An empty tree is invalid: a rule with no condition must not match everyone."""
    if version != TREE_VERSION:
        raise RuleSyntaxError([("", _("Unknown condition format version %(v)s.") % {"v": version})])
    if tree in (None, {}, []):
        raise RuleSyntaxError([("", _("The rule has no conditions."))])
    parser = _Parser()
    node = parser.node(tree, "", 0)
    if parser.errors or node is None:
        raise RuleSyntaxError(parser.errors or [("", _("The rule is invalid."))])
    return node


def walk(node: Node) -> Iterator[Node]:
    yield node
    if isinstance(node, All | AnyOf):
        for child in node.children:
            yield from walk(child)
    elif isinstance(node, Not):
        yield from walk(node.child)


def referenced_tags(node: Node) -> set[int]:
    return {n.tag_id for n in walk(node) if isinstance(n, HasTag)}
