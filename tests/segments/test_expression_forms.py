"""The text and canonical JSON forms of a segment expression: parsing, canonicalisation,
rendering and every kind of bad input."""

from __future__ import annotations

import pytest

from tagging import segments
from tagging.segments import InvalidSegment
from tests.conftest import tag
from tests.factories import TagFactory, TagGroupFactory


@pytest.fixture
def taxonomy(intent_group, source_group):
    diet = TagGroupFactory(name="饮食")
    TagFactory(group=diet, name="不吃香菜")
    TagFactory(group=diet, name="VIP 客户")
    return {"intent": intent_group, "source": source_group, "diet": diet}


def ref(group, name):
    return {"tag": tag(group, name).pk}


def test_precedence_not_and_or(superuser, taxonomy):
    intent, source = taxonomy["intent"], taxonomy["source"]
    expr = segments.parse("意向:高 OR 意向:中 AND NOT 官网", superuser)
    assert expr == segments.canonical(
        {"or": [ref(intent, "高"), {"and": [ref(intent, "中"), {"not": ref(source, "官网")}]}]}
    )
    grouped = segments.parse("(高 | 中) & !官网", superuser)
    assert grouped == segments.canonical(
        {"and": [{"or": [ref(intent, "高"), ref(intent, "中")]}, {"not": ref(source, "官网")}]}
    )


def test_quoted_names_ids_and_lowercase_keywords(superuser, taxonomy):
    diet = taxonomy["diet"]
    vip = tag(diet, "VIP 客户")
    assert segments.parse(f'"VIP 客户" and not #{vip.pk}', superuser) == {
        "and": [{"not": {"tag": vip.pk}}, {"tag": vip.pk}]
    }
    # Full-width and case are folded like everywhere else.
    assert segments.parse("饮食：不吃香菜", superuser) == ref(diet, "不吃香菜")


def test_canonical_form_flattens_dedupes_and_sorts(superuser, taxonomy):
    a, b = ref(taxonomy["intent"], "高"), ref(taxonomy["intent"], "中")
    messy = {"and": [{"and": [b, a]}, a, {"not": {"not": b}}]}
    assert segments.canonical(messy) == {"and": sorted([a, b], key=segments.dump)}
    assert segments.dump(segments.canonical(messy)) == segments.dump(
        segments.canonical({"and": [a, b]})
    )
    assert segments.canonical({"or": [a]}) == a


def test_text_round_trip(superuser, taxonomy):
    text = '(意向:高 OR 意向:中) AND 客户来源:官网 AND NOT 饮食:"VIP 客户" AND @total_spend >= 2000'
    expr = segments.parse(text, superuser)
    rendered = segments.to_text(expr, superuser)
    assert "@total_spend >= 2000" in rendered
    assert segments.parse(rendered, superuser) == expr


def test_attribute_filters(superuser, taxonomy):
    assert segments.parse("@source = 官网", superuser) == {
        "attr": "source",
        "op": "eq",
        "value": "官网",
    }
    assert segments.parse("@company contains 科技", superuser)["op"] == "contains"
    assert segments.parse("@last_order_at < 2026-01-31", superuser)["value"] == "2026-01-31"
    with pytest.raises(InvalidSegment, match="Unknown customer field"):
        segments.parse("@shoe_size = 42", superuser)
    with pytest.raises(InvalidSegment, match="needs a number"):
        segments.parse("@total_spend >= lots", superuser)
    with pytest.raises(InvalidSegment, match="does not apply"):
        segments.parse("@source >= 官网", superuser)
    with pytest.raises(InvalidSegment, match="date"):
        segments.parse("@added_at > yesterday", superuser)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("意向:高 AND", "ends too early"),
        ("(意向:高", "ends too early"),
        ("意向:高 意向:中", "Unexpected"),
        ("意向:高 )", "Unexpected"),
        ('"unterminated', "Cannot read"),
        ("不存在的标签", "Unknown tag “不存在的标签”"),
        ("#999999", "Unknown tag “#999999”"),
    ],
)
def test_bad_text(superuser, taxonomy, text, message):
    with pytest.raises(InvalidSegment, match=message):
        segments.parse(text, superuser)


def test_ambiguous_bare_name_asks_for_the_group(superuser, taxonomy):
    other = TagGroupFactory(name="价值")
    TagFactory(group=other, name="高")
    with pytest.raises(InvalidSegment, match="several groups") as info:
        segments.parse("高", superuser)
    assert info.value.code == "ambiguous_tag"
    assert segments.parse("价值:高", superuser) == {"tag": tag(other, "高").pk}


@pytest.mark.parametrize(
    "bad",
    [
        [],
        {"tag": "1"},
        {"tag": True},
        {"tag": 1, "extra": 2},
        {"and": []},
        {"or": "x"},
        {"not": [{"tag": 1}]},
        {"xor": [{"tag": 1}]},
        {"attr": "source", "op": "eq"},
    ],
)
def test_bad_json(superuser, bad):
    with pytest.raises(InvalidSegment):
        segments.validate(bad, superuser)


def test_json_text_and_size_limits(superuser, taxonomy):
    with pytest.raises(InvalidSegment, match="not valid JSON"):
        segments.validate("{nope", superuser)
    high = ref(taxonomy["intent"], "高")
    deep = high
    for _ in range(30):
        deep = {"not": {"or": [deep, high]}}
    with pytest.raises(InvalidSegment, match="too large"):
        segments.validate(deep, superuser)


def test_size_limits_at_their_boundary():
    """``MAX_DEPTH`` levels of NOT and ``MAX_NODES`` terms (the groups included) are accepted;
    one more of either is refused."""

    def nested(levels):
        node = {"tag": 1}
        for _ in range(levels):
            node = {"not": node}
        return node

    segments.canonical(nested(segments.MAX_DEPTH))
    with pytest.raises(InvalidSegment, match="too large"):
        segments.canonical(nested(segments.MAX_DEPTH + 1))
    terms = segments.MAX_NODES - 1  # plus the "or" itself
    segments.canonical({"or": [{"tag": i} for i in range(1, terms + 1)]})
    with pytest.raises(InvalidSegment, match="too large"):
        segments.canonical({"or": [{"tag": i} for i in range(1, terms + 2)]})
