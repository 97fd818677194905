"""Every leaf and operator of the rule language, evaluated by the one evaluator
(``matching_customers``), including NULLs, empty windows, at-least-N and negation."""

from __future__ import annotations

import datetime as dt

import pytest

from rules.compiler import matching_customers
from tagging import services as tagging
from tagging.models import AssignmentSource
from tests.factories import DepartmentFactory, TagFactory, TagGroupFactory, UserFactory
from tests.rules.conftest import NOW, customer, event, ids

pytestmark = pytest.mark.django_db


def match(tree):
    return ids(matching_customers(tree, now=NOW))


def attr(field, op, value=None):
    leaf = {"attribute": field, "op": op}
    if value is not None:
        leaf["value"] = value
    return leaf


# --- attributes -------------------------------------------------------------------------------


class TestTextAttributes:
    @pytest.fixture
    def people(self):
        return {
            "web": customer(source="官网", company="星河科技有限公司"),
            "fair": customer(source="展会", company="老王餐饮"),
            "none": customer(source="", company=""),
        }

    @pytest.mark.parametrize(
        ("op", "value", "expected"),
        [
            ("eq", "官网", {"web"}),
            ("ne", "官网", {"fair", "none"}),
            ("in", ["官网", "展会"], {"web", "fair"}),
            ("not_in", ["官网"], {"fair", "none"}),
            ("is_empty", None, {"none"}),
            ("not_empty", None, {"web", "fair"}),
        ],
    )
    def test_source(self, people, op, value, expected):
        assert match(attr("source", op, value)) == sorted(people[k].pk for k in expected)

    def test_company_contains(self, people):
        assert match(attr("company", "contains", "科技")) == [people["web"].pk]
        assert match(attr("company", "not_contains", "科技")) == sorted(
            [people["fair"].pk, people["none"].pk]
        )


def test_reference_attribute_null_safe():
    sales = DepartmentFactory(name="销售部")
    other = DepartmentFactory(name="市场部")
    in_sales, in_other, nowhere = (
        customer(department=sales),
        customer(department=other),
        customer(department=None),
    )
    assert match(attr("department", "eq", sales.pk)) == [in_sales.pk]
    # "not in 销售部" includes customers with no department: negation is the complement.
    assert match(attr("department", "ne", sales.pk)) == sorted([in_other.pk, nowhere.pk])
    assert match(attr("department", "is_empty")) == [nowhere.pk]
    assert match(attr("department", "not_empty")) == sorted([in_sales.pk, in_other.pk])
    owner = UserFactory()
    owned = customer(owner=owner)
    assert match(attr("owner", "in", [owner.pk])) == [owned.pk]


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("gt", 2000, {"rich"}),
        ("gte", 2000, {"rich", "edge"}),
        ("lt", 2000, {"poor", "zero"}),
        ("lte", 100, {"poor", "zero"}),
        ("eq", 2000, {"edge"}),
        ("ne", 2000, {"rich", "poor", "zero"}),
        ("between", [100, 2000], {"poor", "edge"}),
    ],
)
def test_number_attribute(op, value, expected):
    people = {
        "rich": customer(total_spend=25000),
        "edge": customer(total_spend=2000),
        "poor": customer(total_spend=100),
        "zero": customer(total_spend=0),
    }
    assert match(attr("total_spend", op, value)) == sorted(people[k].pk for k in expected)


class TestDaysSince:
    @pytest.fixture
    def people(self):
        return {
            "recent": customer(last_order_at=NOW - dt.timedelta(days=10)),
            "old": customer(last_order_at=NOW - dt.timedelta(days=90)),
            "never": customer(last_order_at=None),
        }

    @pytest.mark.parametrize(
        ("op", "value", "expected"),
        [
            ("gte", 60, {"old"}),
            ("gt", 90, set()),
            ("gte", 90, {"old"}),
            ("lte", 10, {"recent"}),
            ("lt", 10, set()),
            ("between", [5, 100], {"recent", "old"}),
        ],
    )
    def test_null_never_matches(self, people, op, value, expected):
        assert match(attr("days_since_last_order", op, value)) == sorted(
            people[k].pk for k in expected
        )

    def test_negation_includes_null(self, people):
        tree = {"not": attr("days_since_last_order", "gte", 60)}
        assert match(tree) == sorted([people["recent"].pk, people["never"].pk])


# --- events -------------------------------------------------------------------------------------


class TestEventCount:
    @pytest.fixture
    def people(self):
        two, one, old_only, none = customer(), customer(), customer(), customer()
        event(two, days_ago=3, amount=10)
        event(two, days_ago=20, amount=10)
        event(one, days_ago=5, amount=10)
        event(old_only, days_ago=200, amount=10)
        event(none, "browse", days_ago=1)  # another kind does not count
        return {"two": two, "one": one, "old_only": old_only, "none": none}

    @pytest.mark.parametrize(
        ("op", "value", "expected"),
        [
            ("gte", 2, {"two"}),
            ("gte", 1, {"two", "one"}),
            ("gt", 0, {"two", "one"}),
            ("eq", 0, {"old_only", "none"}),  # empty window: count is 0
            ("lt", 2, {"one", "old_only", "none"}),
            ("lte", 1, {"one", "old_only", "none"}),
            ("ne", 1, {"two", "old_only", "none"}),
            ("between", [1, 1], {"one"}),
            ("between", [0, 1], {"one", "old_only", "none"}),
        ],
    )
    def test_window_of_30_days(self, people, op, value, expected):
        tree = {"event": "purchase", "window": {"days": 30}, "op": op, "value": value}
        assert match(tree) == sorted(people[k].pk for k in expected)

    def test_without_window_counts_everything(self, people):
        tree = {"event": "purchase", "op": "gte", "value": 1}
        assert match(tree) == sorted(people[k].pk for k in ("two", "one", "old_only"))

    def test_between_dates_in_company_time_zone(self):
        inside, before, after = customer(), customer(), customer()
        # 2026-03-01 00:30 in Shanghai is 2026-02-28 16:30 UTC: inside a window starting 03-01.
        event(inside, at=dt.datetime(2026, 2, 28, 16, 30, tzinfo=dt.UTC))
        event(before, at=dt.datetime(2026, 2, 28, 15, 30, tzinfo=dt.UTC))
        event(after, at=dt.datetime(2026, 3, 31, 16, 30, tzinfo=dt.UTC))  # 04-01 00:30 local
        tree = {
            "event": "purchase",
            "window": {"from": "2026-03-01", "to": "2026-03-31"},
            "op": "gte",
            "value": 1,
        }
        assert match(tree) == [inside.pk]

    def test_filters(self):
        toy, food, price, other_text, sku = (customer() for _ in range(5))
        event(toy, category="儿童玩具")
        event(food, category="食品")
        event(price, "message", text="请问这个价格能便宜点吗")
        event(other_text, "message", text="你好")
        event(sku, "browse", target="SKU-42")
        assert match({"event": "purchase", "category": "儿童玩具", "op": "gte", "value": 1}) == [
            toy.pk
        ]
        assert match({"event": "message", "text_contains": "价格", "op": "gte", "value": 1}) == [
            price.pk
        ]
        assert match({"event": "browse", "target": "SKU-42", "op": "gte", "value": 1}) == [sku.pk]


class TestEventAmounts:
    @pytest.fixture
    def people(self):
        big, small, null_amount, none = customer(), customer(), customer(), customer()
        event(big, amount=1500, days_ago=5)
        event(big, amount=1000, days_ago=50)
        event(big, amount=9000, days_ago=200)  # outside 90 days
        event(small, amount=300, days_ago=5)
        event(null_amount, amount=None, days_ago=5)
        return {"big": big, "small": small, "null": null_amount, "none": none}

    def tree(self, agg, op, value):
        return {
            "event": "purchase",
            "agg": agg,
            "measure": "amount",
            "window": {"days": 90},
            "op": op,
            "value": value,
        }

    def test_sum(self, people):
        assert match(self.tree("sum", "gt", 2000)) == [people["big"].pk]
        # Sum of no events (or only NULL amounts) is 0, so "sum < 500" includes them.
        assert match(self.tree("sum", "lt", 500)) == sorted(
            people[k].pk for k in ("small", "null", "none")
        )

    def test_avg_and_max_of_nothing_match_nothing(self, people):
        assert match(self.tree("avg", "gte", 1250)) == [people["big"].pk]
        assert match(self.tree("avg", "lt", 1000)) == [people["small"].pk]
        assert match(self.tree("max", "gte", 1500)) == [people["big"].pk]
        assert match(self.tree("max", "lte", 1000)) == [people["small"].pk]
        # …but negation is the complement: "not (max ≥ 1500)" includes the customer without events.
        assert match({"not": self.tree("max", "gte", 1500)}) == sorted(
            people[k].pk for k in ("small", "null", "none")
        )

    def test_quantity_measure(self):
        inviter, other = customer(), customer()
        event(inviter, "referral", quantity=2, days_ago=3)
        event(inviter, "referral", quantity=2, days_ago=30)
        event(other, "referral", quantity=1, days_ago=3)
        tree = {"event": "referral", "agg": "sum", "measure": "quantity", "op": "gte", "value": 3}
        assert match(tree) == [inviter.pk]


def test_days_since_last_event():
    quiet, chatty, never = customer(), customer(), customer()
    event(quiet, "message", days_ago=10)
    event(quiet, "message", days_ago=30)
    event(chatty, "message", days_ago=2)
    tree = {"event": "message", "agg": "days_since_last", "op": "gte", "value": 7}
    assert match(tree) == [quiet.pk]
    assert match({**tree, "op": "lt"}) == [chatty.pk]
    assert match({**tree, "op": "between", "value": [1, 3]}) == [chatty.pk]
    assert match({"not": tree}) == sorted([chatty.pk, never.pk])


def test_ratio_of_categories_and_reply_rate():
    fan, mixed, _nobody = customer(), customer(), customer()
    for category in ["儿童玩具", "儿童玩具", "儿童玩具", "食品"]:
        event(fan, category=category)
    for category in ["儿童玩具", "食品"]:
        event(mixed, category=category)
    share = {
        "ratio": {
            "numerator": {"event": "purchase", "category": "儿童玩具"},
            "denominator": {"event": "purchase"},
        },
        "op": "gte",
        "value": 0.7,
    }
    assert match(share) == [fan.pk]
    assert match({**share, "op": "lte", "value": 0.5}) == [mixed.pk]  # no denominator: no match
    assert match({**share, "op": "between", "value": [0.5, 0.75]}) == sorted([fan.pk, mixed.pk])

    replier, silent = customer(), customer()
    for _ in range(4):
        event(replier, "broadcast", days_ago=3)
        event(silent, "broadcast", days_ago=3)
    event(replier, "broadcast_reply", days_ago=2)
    event(replier, "broadcast_reply", days_ago=2)
    rate = {
        "ratio": {
            "numerator": {"event": "broadcast_reply", "window": {"days": 30}},
            "denominator": {"event": "broadcast", "window": {"days": 30}},
        },
        "op": "gt",
        "value": 0.25,
    }
    assert match(rate) == [replier.pk]


# --- tags and RFM ---------------------------------------------------------------------------------


def test_has_and_lacks_tag(superuser):
    vip = TagFactory(group=TagGroupFactory(name="会员"), name="VIP")
    holder, other = customer(), customer()
    tagging.assign_tags([holder], [vip], actor=superuser, source=AssignmentSource.MANUAL)
    assert match({"tag": vip.pk, "op": "has"}) == [holder.pk]
    assert match({"tag": vip.pk, "op": "lacks"}) == [other.pk]


class TestRfm:
    @pytest.fixture
    def people(self):
        return {
            "fresh": customer(
                last_order_at=NOW - dt.timedelta(days=5), order_count=12, total_spend=20000
            ),
            "month": customer(
                last_order_at=NOW - dt.timedelta(days=45), order_count=3, total_spend=999
            ),
            "stale": customer(
                last_order_at=NOW - dt.timedelta(days=400), order_count=1, total_spend=100
            ),
            "never": customer(last_order_at=None, order_count=0, total_spend=0),
        }

    @pytest.mark.parametrize(
        ("metric", "op", "value", "expected"),
        [
            ("recency", "eq", 5, {"fresh"}),
            ("recency", "eq", 4, {"month"}),
            ("recency", "eq", 1, {"stale", "never"}),  # never ordered scores 1
            ("recency", "gte", 3, {"fresh", "month"}),
            ("recency", "lt", 3, {"stale", "never"}),
            ("recency", "ne", 5, {"month", "stale", "never"}),
            ("frequency", "eq", 5, {"fresh"}),
            ("frequency", "eq", 3, {"month"}),
            ("frequency", "lte", 1, {"stale", "never"}),
            ("monetary", "gte", 4, {"fresh"}),
            ("monetary", "between", [2, 3], {"month"}),
            ("monetary", "gt", 5, set()),
        ],
    )
    def test_scores(self, people, metric, op, value, expected):
        assert match({"rfm": metric, "op": op, "value": value}) == sorted(
            people[k].pk for k in expected
        )

    def test_custom_thresholds(self, people):
        tree = {"rfm": "frequency", "op": "gte", "value": 2, "thresholds": [3, 20, 30, 40]}
        assert match(tree) == sorted([people["fresh"].pk, people["month"].pk])


# --- groups -------------------------------------------------------------------------------------


class TestGroups:
    @pytest.fixture
    def people(self):
        a = customer(source="官网", total_spend=5000)
        b = customer(source="官网", total_spend=10)
        c = customer(source="展会", total_spend=5000)
        d = customer(source="展会", total_spend=10)
        event(a, "inquiry")
        event(c, "inquiry")
        event(d, "inquiry")
        return {"a": a, "b": b, "c": c, "d": d}

    web = attr("source", "eq", "官网")
    rich = attr("total_spend", "gt", 1000)
    asked = {"event": "inquiry", "op": "gte", "value": 1}

    def pick(self, people, keys):
        return sorted(people[k].pk for k in keys)

    def test_all_any_not(self, people):
        assert match({"all": [self.web, self.rich]}) == self.pick(people, "a")
        assert match({"any": [self.web, self.rich]}) == self.pick(people, "abc")
        assert match({"not": {"any": [self.web, self.rich]}}) == self.pick(people, "d")
        assert match({"all": [self.web, {"not": self.rich}]}) == self.pick(people, "b")

    @pytest.mark.parametrize(("n", "expected"), [(1, "abcd"), (2, "ac"), (3, "a")])
    def test_at_least_n(self, people, n, expected):
        tree = {"any": [self.web, self.rich, self.asked], "at_least": n}
        assert match(tree) == self.pick(people, expected)

    def test_negated_at_least(self, people):
        tree = {"not": {"any": [self.web, self.rich, self.asked], "at_least": 2}}
        assert match(tree) == self.pick(people, "bd")

    def test_one_customer_with_the_same_query(self, people):
        tree = {"all": [self.web, self.rich]}
        query = matching_customers(tree, now=NOW)
        assert query.filter(pk=people["a"].pk).exists()
        assert not query.filter(pk=people["b"].pk).exists()
