"""Sibling event conditions share one grouped pass over the events (rules.compiler folds them
into one subquery with a FILTER per condition). The folded SQL must select exactly the
customers that combining each condition's own subquery would: random groups of event leaves
(several kinds, every aggregate, shared or differing windows) against that combination."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.models import Customer
from rules import dsl
from rules.compiler import compile_node, matching_customers
from tests.rules.conftest import NOW, customer, event, ids

pytestmark = pytest.mark.django_db

# (kind, days ago, amount) of each customer's events; the first customer has none.
HISTORIES = [
    [],
    [("browse", 2, None)],
    [("browse", 2, None), ("browse", 20, None), ("purchase", 3, 100)],
    [("purchase", 5, 50), ("purchase", 40, 500), ("inquiry", 1, None)],
    [("inquiry", 10, None), ("inquiry", 12, None), ("share", 25, None)],
    [("share", 1, None), ("browse", 100, None), ("purchase", 200, 30)],
    [("purchase", 2, 1000), ("browse", 3, None), ("inquiry", 4, None), ("share", 6, None)],
]


@pytest.fixture
def population(db):
    people = []
    for history in HISTORIES:
        c = customer()
        for kind, days, amount in history:
            event(c, kind, days_ago=days, amount=amount)
        people.append(c)
    return people


kinds = st.sampled_from(["browse", "purchase", "inquiry", "share"])
windows = st.sampled_from([{"days": 7}, {"days": 30}, {"days": 365}])
counts = st.builds(
    lambda kind, window, op, v: {"event": kind, "window": window, "op": op, "value": v},
    kinds,
    windows,
    st.sampled_from(["gte", "gt", "eq", "lte", "lt", "ne"]),
    st.integers(0, 2),
)
measured = st.builds(
    lambda kind, window, agg, op, v: {
        "event": kind,
        "agg": agg,
        "measure": "amount",
        "window": window,
        "op": op,
        "value": v,
    },
    st.just("purchase"),
    windows,
    st.sampled_from(["sum", "avg", "max"]),
    st.sampled_from(["gte", "lt", "eq", "ne"]),
    st.sampled_from([0, 50, 100, 600]),
)
recency = st.builds(
    lambda kind, op, v: {"event": kind, "agg": "days_since_last", "op": op, "value": v},
    kinds,
    st.sampled_from(["gte", "lte", "gt"]),
    st.sampled_from([1, 5, 30]),
)
leaves = st.one_of(counts, measured, recency)


@st.composite
def groups(draw):
    same_window = draw(st.booleans())
    children = draw(st.lists(leaves, min_size=2, max_size=4))
    if same_window:  # the kind IN (...) form: one shared window
        window = children[0].get("window", {"days": 30})
        children = [{**c, "window": window} for c in children]
    shape = draw(st.sampled_from(["all", "any", "at_least"]))
    if shape == "all":
        return {"all": children}
    if shape == "any":
        return {"any": children}
    return {"any": children, "at_least": draw(st.integers(1, len(children)))}


def alone(leaf) -> set[int]:
    return set(matching_customers(leaf, now=NOW).values_list("pk", flat=True))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tree=groups())
def test_folded_events_match_each_condition_combined(population, tree):
    children = tree.get("all") or tree["any"]
    held = [alone(c) for c in children]
    need = len(children) if "all" in tree else tree.get("at_least", 1)
    expected = sorted(c.pk for c in population if sum(c.pk in h for h in held) >= need)
    assert ids(matching_customers(tree, now=NOW)) == expected
    assert ids(matching_customers({"not": tree}, now=NOW)) == sorted(
        c.pk for c in population if c.pk not in expected
    )


def test_at_least_of_events_is_one_pass_over_the_events():
    tree = {
        "any": [
            {"event": kind, "window": {"days": 30}, "op": "gte", "value": n}
            for kind, n in [("broadcast_reply", 1), ("inquiry", 1), ("browse", 5), ("share", 3)]
        ],
        "at_least": 2,
    }
    sql = str(Customer.objects.filter(compile_node(dsl.parse_tree(tree), now=NOW)).query)
    assert sql.count("customers_customerevent") == 1
    assert sql.count("GROUP BY") == 1


def test_conditions_that_hold_without_events_are_not_folded():
    # "no browse in 7 days" holds for customers without events: it keeps its own subquery.
    tree = {
        "all": [
            {"event": "browse", "window": {"days": 7}, "op": "eq", "value": 0},
            {"event": "inquiry", "window": {"days": 7}, "op": "gte", "value": 1},
        ]
    }
    sql = str(Customer.objects.filter(compile_node(dsl.parse_tree(tree), now=NOW)).query)
    assert sql.count("customers_customerevent") == 2
