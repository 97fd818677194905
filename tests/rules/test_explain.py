"""Explain: leaf by leaf with the values read, in one query, agreeing with the compiled rule."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from rules.compiler import matching_customers
from rules.explain import deciding_leaves, explain, explain_many
from tests.rules.conftest import NOW, customer, event

pytestmark = pytest.mark.django_db

TREE = {
    "all": [
        {"attribute": "total_spend", "op": "gt", "value": 1000},
        {
            "any": [
                {"event": "message", "text_contains": "价格", "op": "gte", "value": 2},
                {"event": "purchase", "agg": "sum", "measure": "amount", "op": "gte", "value": 500},
            ]
        },
        {"not": {"attribute": "days_since_last_order", "op": "gte", "value": 60}},
        {
            "ratio": {"numerator": {"event": "message"}, "denominator": {"event": "inquiry"}},
            "op": "gte",
            "value": 0.5,
        },
    ]
}


def by_path(explanation):
    return {s["path"]: s for s in explanation.as_dict()["steps"]}


def test_each_leaf_with_its_value(django_assert_num_queries):
    c = customer(total_spend=Decimal("1500"), last_order_at=NOW - dt.timedelta(days=10))
    event(c, "message", text="价格多少")
    event(c, "purchase", amount=300)
    event(c, "inquiry")
    event(c, "inquiry")
    with django_assert_num_queries(1):
        result = explain(TREE, c.pk, now=NOW, tag_names={})
    steps = by_path(result)
    assert not result.matches
    assert steps["1"]["holds"] and steps["1"]["value"] == "1500"
    assert steps["2.1"] == {**steps["2.1"], "holds": False, "value": 1}
    assert steps["2.2"]["holds"] is False and steps["2.2"]["value"] == "300"
    assert steps["2"]["holds"] is False and steps["2"]["kind"] == "any"
    assert steps["3"]["kind"] == "not" and steps["3"]["holds"] is True
    assert steps["3.1"]["holds"] is False and steps["3.1"]["value"] == 10
    assert steps["4"]["value"] == {"numerator": 1, "denominator": 2, "ratio": 0.5}
    assert steps["4"]["holds"] is True
    assert steps[""]["holds"] is False and steps[""]["kind"] == "all"
    assert [leaf["path"] for leaf in deciding_leaves(result)] == ["2.1", "2.2"]


def test_no_events_read_as_zero_or_never():
    c = customer(total_spend=0)
    steps = by_path(explain(TREE, c.pk, now=NOW, tag_names={}))
    assert steps["2.1"]["value"] == 0 and steps["2.2"]["value"] == 0
    assert steps["3.1"]["value"] is None and steps["3"]["holds"] is True  # never ordered
    assert steps["4"]["value"]["ratio"] is None and not steps["4"]["holds"]


def test_explanations_agree_with_the_compiled_rule():
    people = []
    for i in range(8):
        c = customer(
            total_spend=Decimal(500 * i),
            last_order_at=NOW - dt.timedelta(days=30 * i) if i % 3 else None,
        )
        for _ in range(i % 3):
            event(c, "message", text="价格")
        if i % 2:
            event(c, "inquiry")
        event(c, "purchase", amount=200 * i)
        people.append(c.pk)
    matching = set(matching_customers(TREE, now=NOW).values_list("pk", flat=True))
    explained = explain_many(TREE, people, now=NOW, tag_names={})
    assert {pk for pk, e in explained.items() if e.matches} == matching
    for e in explained.values():
        assert e.steps[0].holds == e.matches  # the leaf-by-leaf reading gives the same verdict


def test_dry_run_samples_say_which_leaf_decides(make_rule, auto_tag):
    from rules.services import apply_rule, preview_tree

    rule = make_rule({"attribute": "total_spend", "op": "gt", "value": 1000}, tag=auto_tag)
    loser, gainer = customer(total_spend=5000), customer(total_spend=10)
    apply_rule(rule, now=NOW)
    outcome = preview_tree(
        {"attribute": "total_spend", "op": "lt", "value": 100}, tag=auto_tag, rule=rule, now=NOW
    )
    [gain] = outcome.samples["to_add"]
    [loss] = outcome.samples["to_remove"]
    assert gain["id"] == gainer.pk and loss["id"] == loser.pk
    assert [(s["holds"], s["value"]) for s in outcome.because[gainer.pk]] == [(True, "10")]
    assert [(s["holds"], s["value"]) for s in outcome.because[loser.pk]] == [(False, "5000")]
