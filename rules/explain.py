"""Why a rule matches a customer or not: leaf by leaf, with the values read.

Each leaf is compiled by ``rules.compiler.compile_node`` (the same sub-expressions the runs use)
and evaluated for the customer as one boolean column; the value a leaf reads (an attribute, an
aggregate of the customer's events, a ratio's two counts) is one more column. Everything comes
from ONE query over the customer's row, together with the whole compiled rule, so the explanation
and the rule's verdict cannot disagree. Groups (all / any / at least N / not) are combined from
their children here, with the compiler's semantics: every leaf is definitely true or false.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import (
    Avg,
    BooleanField,
    Case,
    Count,
    DecimalField,
    Exists,
    F,
    Max,
    OuterRef,
    Q,
    Subquery,
    Sum,
    Value,
    When,
)
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from customers.models import Customer, CustomerEvent
from rules import dsl
from rules import fields as RF
from rules.compiler import compile_node, selector_q
from rules.describe import describe

MONEY = DecimalField(max_digits=20, decimal_places=4)


@dataclass
class Step:
    """One node of the tree for one customer."""

    path: str  # "1.2" = second child of the first child ("" = the root)
    kind: str  # all / any / not / attribute / event / ratio / tag / rfm
    text: str  # the readable condition (rules.describe)
    holds: bool
    value: Any = None  # what the leaf read (None for groups, or no value: "never")
    depth: int = 0
    negated: bool = False  # under an odd number of "not"

    def as_dict(self) -> dict[str, Any]:
        value = self.value
        if isinstance(value, Decimal):  # as text, without exponent or trailing zeros
            text = f"{value:f}"
            value = text.rstrip("0").rstrip(".") if "." in text else text
        elif isinstance(value, dt.datetime):
            value = value.isoformat()
        return {
            "path": self.path,
            "kind": self.kind,
            "condition": self.text,
            "holds": self.holds,
            "value": value,
        }


@dataclass
class Explanation:
    matches: bool
    steps: list[Step] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"matches": self.matches, "steps": [s.as_dict() for s in self.steps]}


def _boolean(q: Q) -> Case:
    return Case(When(q, then=Value(True)), default=Value(False), output_field=BooleanField())


def _leaves(node: dsl.Node, path: str = "") -> list[tuple[str, dsl.Node]]:
    if isinstance(node, dsl.All | dsl.AnyOf):
        out = []
        for i, child in enumerate(node.children, 1):
            out += _leaves(child, f"{path}.{i}" if path else str(i))
        return out
    if isinstance(node, dsl.Not):
        return _leaves(node.child, f"{path}.1" if path else "1")
    return [(path, node)]


def _value_expression(node: dsl.Node, now: dt.datetime) -> dict[str, Any]:
    """Columns holding what a leaf reads, keyed by suffix."""
    if isinstance(node, dsl.Attribute):
        return {"": F(node.field.column)}
    if isinstance(node, dsl.Rfm):
        return {"": F(RF.RFM_METRICS[node.metric]["column"])}
    if isinstance(node, dsl.HasTag):
        from tagging.models import TagAssignment

        return {
            "": Exists(TagAssignment.objects.filter(customer_id=OuterRef("pk"), tag_id=node.tag_id))
        }
    if isinstance(node, dsl.Ratio):
        out = {}
        for suffix, selector in (("n", node.numerator), ("d", node.denominator)):
            events = CustomerEvent.objects.filter(
                selector_q(selector, now), customer_id=OuterRef("pk")
            )
            out[suffix] = Subquery(events.values("customer_id").annotate(v=Count("pk")).values("v"))
        return out
    if isinstance(node, dsl.Event):
        events = CustomerEvent.objects.filter(
            selector_q(node.selector, now), customer_id=OuterRef("pk")
        )
        aggregate = {
            "count": lambda: Count("pk"),
            "sum": lambda: Sum(node.measure, output_field=MONEY),
            "avg": lambda: Avg(node.measure, output_field=MONEY),
            "max": lambda: Max(node.measure),
            "days_since_last": lambda: Max("occurred_at"),
        }[node.agg]()
        return {"": Subquery(events.values("customer_id").annotate(v=aggregate).values("v"))}
    return {}


def _days_since(value: dt.datetime | None, now: dt.datetime) -> int | None:
    return None if value is None else (now - value).days


def _read(node: dsl.Node, row: dict[str, Any], key: str, now: dt.datetime) -> Any:
    if isinstance(node, dsl.Ratio):
        num, den = row.get(f"{key}n") or 0, row.get(f"{key}d") or 0
        return {"numerator": num, "denominator": den, "ratio": (num / den) if den else None}
    value = row.get(key)
    if isinstance(node, dsl.Event):
        if node.agg == "days_since_last":
            return _days_since(value, now)
        empty = RF.AGGREGATES[node.agg]["empty"]
        return empty if value is None else value
    if isinstance(node, dsl.Attribute) and node.field.type == RF.DAYS:
        return _days_since(value, now)
    if isinstance(node, dsl.Rfm) and node.metric == "recency":
        return _days_since(value, now)
    return value


def explain(
    rule_tree: Any,
    customer_id: int,
    *,
    version: int = dsl.TREE_VERSION,
    now: dt.datetime | None = None,
    tag_names: dict[int, str] | None = None,
) -> Explanation | None:
    """The explanation for one customer (None if the customer does not exist). Raises
    ``dsl.RuleSyntaxError`` for an invalid tree."""
    return explain_many(
        rule_tree, [customer_id], version=version, now=now, tag_names=tag_names
    ).get(customer_id)


def explain_many(
    rule_tree: Any,
    customer_ids: list[int],
    *,
    version: int = dsl.TREE_VERSION,
    now: dt.datetime | None = None,
    tag_names: dict[int, str] | None = None,
) -> dict[int, Explanation]:
    """Explanations for a few customers (dry-run samples): still one query."""
    node = dsl.parse_tree(rule_tree, version)
    now = now or timezone.now()
    if tag_names is None:
        from tagging.models import Tag

        refs = dsl.referenced_tags(node)
        tag_names = {t.pk: str(t) for t in Tag.objects.select_related("group").filter(pk__in=refs)}
    leaves = _leaves(node)
    annotations: dict[str, Any] = {"rule_matches": _boolean(compile_node(node, now=now))}
    for i, (_path, leaf) in enumerate(leaves):
        annotations[f"leaf{i}"] = _boolean(compile_node(leaf, now=now))
        for suffix, expression in _value_expression(leaf, now).items():
            annotations[f"value{i}{suffix}"] = expression
    rows = Customer.objects.filter(pk__in=customer_ids).annotate(**annotations)
    names = ["pk", *annotations]
    result = {}
    for row in rows.values(*names):
        by_path = {}
        for i, (path, leaf) in enumerate(leaves):
            by_path[path] = (bool(row[f"leaf{i}"]), _read(leaf, row, f"value{i}", now))
        steps: list[Step] = []
        _walk(node, "", 0, False, by_path, steps, tag_names)
        # The verdict is the whole compiled rule's; the leaf-by-leaf reading (same compiler,
        # combined here) agrees with it, which tests/rules/test_explain.py checks.
        result[row["pk"]] = Explanation(matches=bool(row["rule_matches"]), steps=steps)
    return result


def _walk(node, path, depth, negated, by_path, steps, tags) -> bool:
    kind = type(node).__name__.lower()
    step = Step(
        path=path,
        kind=kind,
        text=describe(node, tags),
        holds=False,
        depth=depth,
        negated=negated,
    )
    steps.append(step)
    if isinstance(node, dsl.All | dsl.AnyOf):
        held = [
            _walk(
                child, f"{path}.{i}" if path else str(i), depth + 1, negated, by_path, steps, tags
            )
            for i, child in enumerate(node.children, 1)
        ]
        step.kind = "all" if isinstance(node, dsl.All) else "any"
        step.holds = all(held) if isinstance(node, dsl.All) else sum(held) >= node.at_least
        return step.holds
    if isinstance(node, dsl.Not):
        child_path = f"{path}.1" if path else "1"
        step.holds = not _walk(node.child, child_path, depth + 1, not negated, by_path, steps, tags)
        return step.holds
    step.kind = {
        dsl.Attribute: "attribute",
        dsl.Event: "event",
        dsl.Ratio: "ratio",
        dsl.HasTag: "tag",
        dsl.Rfm: "rfm",
    }[type(node)]
    step.holds, step.value = by_path[path]
    return step.holds


def deciding_leaves(explanation: Explanation) -> list[dict[str, Any]]:
    """The leaves behind the verdict (dry-run samples: why a customer gains or loses the tag):
    for a customer who matches, the leaves pushing towards a match (holding, or failing under a
    "not"); for one who does not, the leaves pushing against it."""
    leaf_kinds = {"attribute", "event", "ratio", "tag", "rfm"}
    return [
        s.as_dict()
        for s in explanation.steps
        if s.kind in leaf_kinds and (s.holds != s.negated) == explanation.matches
    ]


def explain_for(user: Any, rule_id: Any, customer_id: Any) -> tuple[Any, Explanation]:
    """The access-checked explanation behind the API and the admin: ``(rule, explanation)``.
    Raises ``policy.NotVisible`` when the rule or the customer is not the user's to see (one
    message for both "does not exist" and "not yours": no oracle)."""
    from permissions import policy
    from rules.models import Rule
    from tagging.models import Tag

    rule = None
    if policy._int_ids([rule_id]):
        rule = Rule.objects.select_related("tag__group").filter(pk=int(rule_id)).first()
    if rule is None:
        raise policy.NotVisible(_("Rule %(id)s does not exist.") % {"id": rule_id})
    try:
        node = dsl.parse_tree(rule.tree, rule.tree_version)
    except dsl.RuleSyntaxError as exc:
        from tagging.errors import TaggingError

        raise TaggingError(str(exc), code="rule_invalid") from exc
    refs = dsl.referenced_tags(node)
    tags = list(Tag.objects.select_related("group").filter(pk__in=refs))
    groups = {rule.tag.group_id, *(t.group_id for t in tags)}
    if not policy.can_explain_rule(user, groups):
        raise policy.NotVisible(_("Rule %(id)s does not exist.") % {"id": rule_id})
    [customer] = policy.require_customers(user, [customer_id])
    explanation = explain(
        rule.tree, customer, version=rule.tree_version, tag_names={t.pk: str(t) for t in tags}
    )
    if explanation is None:  # deleted meanwhile
        raise policy.NotVisible(
            ngettext("Customer %(ids)s does not exist.", "Customers %(ids)s do not exist.", 1)
            % {"ids": customer}
        )
    return rule, explanation
