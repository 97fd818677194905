"""What a rule may read: the registry of fields, event kinds, aggregates and operators.

Rules are data (STYLE §5): a tree names fields and operators by key, and only the keys listed
here are accepted. The compiler maps each key to a column it knows; no user string ever
reaches ``filter(**...)``.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from customers.models import EventKind

# --- value types and operators ----------------------------------------------------------------

NUMBER = "number"  # decimal or integer column
DAYS = "days"  # "days since" a timestamp column; NULL (never) matches no comparison
TEXT = "text"  # non-null text column ('' when empty)
REF = "ref"  # nullable foreign key id (department, owner)


@dataclass(frozen=True)
class Operator:
    key: str
    symbol: object  # str or lazy str; used in readable summaries
    arity: str  # "one" (a value), "two" ([low, high]), "many" (a list), "none"


OPERATORS: dict[str, Operator] = {
    op.key: op
    for op in [
        Operator("eq", "=", "one"),
        Operator("ne", "≠", "one"),
        Operator("gt", ">", "one"),
        Operator("gte", "≥", "one"),
        Operator("lt", "<", "one"),
        Operator("lte", "≤", "one"),
        Operator("between", _("between"), "two"),
        Operator("contains", _("contains"), "one"),
        Operator("not_contains", _("does not contain"), "one"),
        Operator("in", _("is one of"), "many"),
        Operator("not_in", _("is none of"), "many"),
        Operator("is_empty", _("is empty"), "none"),
        Operator("not_empty", _("is not empty"), "none"),
    ]
}

COMPARISONS = ("eq", "ne", "gt", "gte", "lt", "lte", "between")
OPERATORS_BY_TYPE: dict[str, tuple[str, ...]] = {
    NUMBER: COMPARISONS,
    DAYS: ("gt", "gte", "lt", "lte", "between"),
    TEXT: ("eq", "ne", "contains", "not_contains", "in", "not_in", "is_empty", "not_empty"),
    REF: ("eq", "ne", "in", "not_in", "is_empty", "not_empty"),
}


# --- customer attributes ------------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeField:
    key: str
    label: object
    type: str
    column: str  # Customer model field (trusted: it comes from this registry)

    @property
    def operators(self) -> tuple[str, ...]:
        return OPERATORS_BY_TYPE[self.type]


ATTRIBUTES: dict[str, AttributeField] = {
    f.key: f
    for f in [
        AttributeField("source", _("source channel"), TEXT, "source"),
        AttributeField("company", _("company"), TEXT, "company"),
        AttributeField("name", pgettext_lazy("person", "name"), TEXT, "name"),
        AttributeField("remark", _("remark"), TEXT, "remark"),
        AttributeField("department", _("department"), REF, "department_id"),
        AttributeField("owner", _("owner"), REF, "owner_id"),
        AttributeField("total_spend", _("total spend"), NUMBER, "total_spend"),
        AttributeField("order_count", _("orders"), NUMBER, "order_count"),
        AttributeField("days_since_last_order", _("days since last order"), DAYS, "last_order_at"),
        AttributeField(
            "days_since_last_contact",
            _("days since last contact"),
            DAYS,
            "last_contact_at",
        ),
        AttributeField("days_since_added", _("days since added"), DAYS, "added_at"),
    ]
}

# --- events -------------------------------------------------------------------------------------

EVENT_KINDS = dict(EventKind.choices)

# Aggregates over the customer's matching events. ``empty`` is the value when a customer has no
# matching event: 0 for count and sum; None (unknown: matches no comparison) for the others.
AGGREGATES: dict[str, dict] = {
    "count": {"label": _("number of"), "measure": False, "empty": 0, "type": NUMBER},
    "sum": {"label": _("total"), "measure": True, "empty": 0, "type": NUMBER},
    "avg": {"label": _("average"), "measure": True, "empty": None, "type": NUMBER},
    "max": {"label": _("largest"), "measure": True, "empty": None, "type": NUMBER},
    "days_since_last": {
        "label": _("days since last"),
        "measure": False,
        "empty": None,
        "type": DAYS,
    },
}

MEASURES: dict[str, str | Promise] = {"amount": _("amount"), "quantity": _("quantity")}

# Event filters: key -> (CustomerEvent column, lookup). Values are strings.
EVENT_FILTERS: dict[str, tuple[str, str]] = {
    "category": ("category", "exact"),
    "target": ("target", "exact"),
    "text_contains": ("text", "contains"),
}

MAX_WINDOW_DAYS = 3660

# --- RFM ------------------------------------------------------------------------------------------

# Scores 1–5. Thresholds are four ascending boundaries. Recency (days since last order): score 5
# within the first boundary, 1 beyond the last or never ordered. Frequency (orders) and monetary
# (total spend): score 1 below the first boundary, 5 at or above the last.
RFM_METRICS: dict[str, dict] = {
    "recency": {
        "label": _("recency score"),
        "column": "last_order_at",
        "default": (30, 60, 90, 180),
    },
    "frequency": {
        "label": _("frequency score"),
        "column": "order_count",
        "default": (2, 3, 5, 10),
    },
    "monetary": {
        "label": _("monetary score"),
        "column": "total_spend",
        "default": (500, 1000, 3000, 10000),
    },
}
