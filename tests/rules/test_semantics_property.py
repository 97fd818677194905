"""Random trees: the compiled SQL agrees with a plain-Python reading of the semantics
(NULL-safe negation, at-least-N, empty windows), customer by customer."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules import dsl
from rules.compiler import matching_customers
from tests.rules.conftest import NOW, customer, event, ids

pytestmark = pytest.mark.django_db

SPEND = [0, 100, 1000, 5000]
DAYS_AGO = [None, 5, 45, 400]  # last order; None = never
SOURCES = ["官网", "展会", ""]
MESSAGES = [[], [2], [2, 3, 20], [40]]  # days ago of each message


@pytest.fixture
def population(db):
    people = []
    for i in range(12):
        last = DAYS_AGO[i % 4]
        c = customer(
            total_spend=SPEND[(i // 2) % 4],
            last_order_at=NOW - dt.timedelta(days=last) if last is not None else None,
            source=SOURCES[i % 3],
        )
        for days in MESSAGES[(i // 3) % 4]:
            event(c, "message", days_ago=days)
        people.append((c, MESSAGES[(i // 3) % 4]))
    return people


def cmp(op, a, b):
    return {"gt": a > b, "gte": a >= b, "lt": a < b, "lte": a <= b, "eq": a == b, "ne": a != b}[op]


def evaluate(tree, c, messages) -> bool:
    """The reference semantics, straight from the docs of rules.compiler."""
    if "all" in tree:
        return all(evaluate(t, c, messages) for t in tree["all"])
    if "any" in tree:
        held = sum(evaluate(t, c, messages) for t in tree["any"])
        return held >= tree.get("at_least", 1)
    if "not" in tree:
        return not evaluate(tree["not"], c, messages)
    if tree.get("attribute") == "total_spend":
        return cmp(tree["op"], c.total_spend, Decimal(tree["value"]))
    if tree.get("attribute") == "source":
        return cmp(tree["op"], c.source, tree["value"])
    if tree.get("attribute") == "days_since_last_order":
        if c.last_order_at is None:
            return False  # unknown matches no comparison
        days = (NOW - c.last_order_at) / dt.timedelta(days=1)
        return cmp(tree["op"], days, tree["value"])
    if tree.get("event") == "message" and tree.get("agg", "count") == "count":
        n = sum(1 for d in messages if d <= tree["window"]["days"])
        return cmp(tree["op"], n, tree["value"])
    if tree.get("agg") == "days_since_last":
        if not messages:
            return False
        return cmp(tree["op"], min(messages), tree["value"])
    raise AssertionError(tree)


ops = st.sampled_from(["gt", "gte", "lt", "lte"])
leaves = st.one_of(
    st.builds(
        lambda op, v: {"attribute": "total_spend", "op": op, "value": v},
        ops,
        st.sampled_from(SPEND),
    ),
    st.builds(
        lambda op, v: {"attribute": "source", "op": op, "value": v},
        st.sampled_from(["eq", "ne"]),
        st.sampled_from(["官网", "展会"]),
    ),
    st.builds(
        lambda op, v: {"attribute": "days_since_last_order", "op": op, "value": v},
        ops,
        st.sampled_from([5, 30, 45, 365]),
    ),
    st.builds(
        lambda op, v, w: {"event": "message", "window": {"days": w}, "op": op, "value": v},
        st.sampled_from(["gt", "gte", "lt", "lte", "eq", "ne"]),
        st.integers(0, 3),
        st.sampled_from([1, 7, 30]),
    ),
    st.builds(
        lambda op, v: {"event": "message", "agg": "days_since_last", "op": op, "value": v},
        ops,
        st.sampled_from([1, 3, 10]),
    ),
)


def groups(children):
    return st.one_of(
        st.builds(lambda xs: {"all": xs}, st.lists(children, min_size=1, max_size=3)),
        st.lists(children, min_size=1, max_size=3).flatmap(
            lambda xs: st.integers(1, len(xs)).map(lambda n: {"any": xs, "at_least": n})
        ),
        st.builds(lambda x: {"not": x}, children),
    )


trees = st.recursive(leaves, groups, max_leaves=6)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=trees)
def test_sql_matches_the_reference_semantics(population, tree):
    dsl.parse_tree(tree)
    expected = sorted(c.pk for c, messages in population if evaluate(tree, c, messages))
    assert ids(matching_customers(tree, now=NOW)) == expected
