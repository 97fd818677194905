"""Invalid trees are rejected with friendly messages, refused on save, and match nobody."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from rules import dsl
from rules.compiler import MATCH_NOTHING, compile_rule, matching_customers
from rules.models import Rule
from rules.services import RuleInvalid, validate_rule
from tests.factories import TagFactory, TagGroupFactory
from tests.rules.conftest import NOW, customer

GOOD = {"attribute": "total_spend", "op": "gt", "value": 100}

INVALID: list[tuple[Any, str]] = [
    (None, "no conditions"),
    ({}, "no conditions"),
    ([], "no conditions"),
    ({"all": []}, "non-empty list"),
    ({"any": [GOOD], "at_least": 2}, "cannot be met"),
    ({"any": [GOOD], "at_least": 0}, "at least 1"),
    ({"all": [GOOD], "any": [GOOD]}, "exactly one of"),
    ({"attribute": "password", "op": "eq", "value": "x"}, "Unknown customer field"),
    ({"attribute": "total_spend", "op": "contains", "value": "1"}, "not allowed"),
    ({"attribute": "total_spend", "op": "gt", "value": "lots"}, "Expected a number"),
    ({"attribute": "total_spend", "op": "gt", "value": True}, "Expected a number"),
    ({"attribute": "total_spend", "op": "between", "value": [5, 1]}, "low end"),
    ({"attribute": "total_spend", "op": "between", "value": [1]}, "two values"),
    ({"attribute": "source", "op": "in", "value": []}, "non-empty list"),
    ({"attribute": "source", "op": "is_empty", "value": "x"}, "takes no value"),
    ({"attribute": "days_since_last_order", "op": "gte", "value": -3}, "whole number"),
    ({"attribute": "total_spend", "op": "gt", "value": 1, "extra": 1}, "Unknown setting"),
    ({"event": "teleport", "op": "gte", "value": 1}, "Unknown event kind"),
    ({"event": "purchase", "agg": "median", "op": "gte", "value": 1}, "Unknown aggregate"),
    ({"event": "purchase", "agg": "sum", "measure": "weight", "op": "gt", "value": 1}, "measure"),
    (
        {"event": "purchase", "agg": "count", "measure": "amount", "op": "gt", "value": 1},
        "no measure",
    ),
    ({"event": "purchase", "window": {"days": 0}, "op": "gte", "value": 1}, "window"),
    ({"event": "purchase", "window": {"weeks": 2}, "op": "gte", "value": 1}, "window"),
    (
        {
            "event": "purchase",
            "window": {"from": "2026-05-01", "to": "2026-04-01"},
            "op": "gte",
            "value": 1,
        },
        "ends before",
    ),
    (
        {
            "event": "purchase",
            "window": {"from": "May 1", "to": "2026-04-01"},
            "op": "gte",
            "value": 1,
        },
        "YYYY-MM-DD",
    ),
    ({"event": "message", "text_contains": "  ", "op": "gte", "value": 1}, "non-empty text"),
    ({"event": "message", "agg": "days_since_last", "op": "eq", "value": 1}, "not allowed"),
    ({"ratio": {"numerator": {"event": "purchase"}}, "op": "gt", "value": 0.5}, "numerator"),
    (
        {
            "ratio": {"numerator": {"event": "purchase"}, "denominator": {"event": "purchase"}},
            "op": "gt",
            "value": 25,
        },
        "fraction",
    ),
    ({"tag": "VIP", "op": "has"}, "tag id"),
    ({"tag": 3, "op": "maybe"}, "has"),
    ({"rfm": "loyalty", "op": "eq", "value": 3}, "recency"),
    ({"rfm": "recency", "op": "eq", "value": 6}, "1 to 5"),
    ({"rfm": "recency", "op": "eq", "value": 3, "thresholds": [9, 3, 5, 7]}, "increasing"),
    ({"not": [GOOD]}, "an object"),
    ("total_spend > 5", "an object"),
]


@pytest.mark.parametrize(("tree", "fragment"), INVALID)
def test_invalid_tree_is_rejected_with_a_reason(tree, fragment):
    with pytest.raises(dsl.RuleSyntaxError) as info:
        dsl.parse_tree(tree)
    assert fragment in str(info.value)


@pytest.mark.parametrize(("tree", "fragment"), INVALID)
def test_invalid_tree_compiles_to_nothing(tree, fragment):
    assert compile_rule(tree, now=NOW) is MATCH_NOTHING


@pytest.mark.django_db
def test_invalid_tree_matches_nobody():
    customer(total_spend=5000)
    customer(total_spend=0)
    assert not matching_customers({"all": []}, now=NOW).exists()
    assert not matching_customers({"attribute": "nope", "op": "eq", "value": 1}, now=NOW).exists()
    # …and a negated invalid subtree does not turn into "everyone": the whole rule is refused.
    assert not matching_customers({"not": {"all": []}}, now=NOW).exists()


def test_every_problem_is_reported_with_its_location():
    tree = {
        "all": [
            GOOD,
            {"attribute": "bogus", "op": "eq", "value": 1},
            {"any": [{"event": "purchase", "op": "gte", "value": "x"}]},
        ]
    }
    with pytest.raises(dsl.RuleSyntaxError) as info:
        dsl.parse_tree(tree)
    messages = info.value.messages()
    assert len(messages) == 2
    assert messages[0].startswith("Condition 2:")
    assert messages[1].startswith("Condition 3.1:")


def test_unknown_version_is_refused():
    with pytest.raises(dsl.RuleSyntaxError, match="version"):
        dsl.parse_tree(GOOD, version=2)


def test_size_limits():
    deep = GOOD
    for _ in range(dsl.MAX_DEPTH + 1):
        deep = {"not": deep}
    with pytest.raises(dsl.RuleSyntaxError, match="deeply"):
        dsl.parse_tree(deep)
    with pytest.raises(dsl.RuleSyntaxError, match="at most"):
        dsl.parse_tree({"any": [GOOD] * (dsl.MAX_NODES + 1)})


def _nested(levels: int) -> dict[str, Any]:
    tree: dict[str, Any] = GOOD
    for _ in range(levels):
        tree = {"not": tree}
    return tree


def test_size_limits_at_their_boundary():
    """``MAX_DEPTH`` levels of nesting and ``MAX_NODES`` conditions (the groups included) parse;
    one more does not."""
    dsl.parse_tree(_nested(dsl.MAX_DEPTH))
    with pytest.raises(dsl.RuleSyntaxError, match="deeply"):
        dsl.parse_tree(_nested(dsl.MAX_DEPTH + 1))
    dsl.parse_tree({"any": [GOOD] * (dsl.MAX_NODES - 1)})  # 1 group + 99 conditions
    with pytest.raises(dsl.RuleSyntaxError, match="at most 100"):
        dsl.parse_tree({"any": [GOOD] * dsl.MAX_NODES})


@pytest.mark.parametrize("days, allowed", [(0, False), (1, True), (3660, True), (3661, False)])
def test_window_days_boundary(days, allowed):
    tree = {"event": "purchase", "window": {"days": days}, "agg": "count", "op": "gte", "value": 1}
    if allowed:
        assert dsl.parse_tree(tree)
    else:
        with pytest.raises(dsl.RuleSyntaxError, match="1 to 3660 days"):
            dsl.parse_tree(tree)


@pytest.mark.django_db
class TestRefusedOnSave:
    def test_empty_or_invalid_tree(self, auto_tag):
        for tree in ({}, {"all": []}, {"attribute": "bogus", "op": "eq", "value": 1}):
            with pytest.raises(ValidationError) as info:
                Rule(name="r", tag=auto_tag, tree=tree).full_clean()
            assert "tree" in info.value.message_dict

    def test_target_must_be_an_auto_tag(self):
        corporate = TagFactory(group=TagGroupFactory(name="客户来源"))
        with pytest.raises(ValidationError) as info:
            Rule(name="r", tag=corporate, tree=GOOD).full_clean()
        assert "tag" in info.value.message_dict
        with pytest.raises(RuleInvalid, match="not an auto tag"):
            validate_rule(GOOD, tag=corporate)

    def test_one_rule_per_auto_tag(self, make_rule, auto_tag):
        make_rule(GOOD, tag=auto_tag)
        with pytest.raises(ValidationError):
            Rule(name="second", tag=auto_tag, tree=GOOD).full_clean()

    def test_referenced_tag_must_exist(self, auto_tag):
        with pytest.raises(ValidationError, match="does not exist"):
            Rule(name="r", tag=auto_tag, tree={"tag": 987654, "op": "has"}).full_clean()

    def test_rule_reading_its_own_tag_is_a_cycle(self, auto_tag):
        with pytest.raises(ValidationError, match="cycle"):
            Rule(name="r", tag=auto_tag, tree={"tag": auto_tag.pk, "op": "lacks"}).full_clean()

    def test_cycle_through_other_rules(self, make_rule, auto_group):
        a, b, c = (TagFactory(group=auto_group) for _ in range(3))
        make_rule({"tag": a.pk, "op": "has"}, tag=b)  # b reads a
        make_rule({"tag": b.pk, "op": "has"}, tag=c)  # c reads b
        with pytest.raises(ValidationError, match="cycle"):
            Rule(name="a", tag=a, tree={"tag": c.pk, "op": "has"}).full_clean()  # a reads c
        # Reading a tag without closing a loop is fine.
        make_rule(
            {"all": [{"tag": b.pk, "op": "has"}, {"tag": c.pk, "op": "lacks"}]},
            tag=TagFactory(group=auto_group),
        )
