"""Segment evaluation equals a brute-force Python evaluation on random data (hypothesis), on
every path: the bitmap index (PostgreSQL), SQL EXISTS, both mixed with attribute filters, the
id-list and the bitmap-parameter narrowing, counts, pages and the changelist ``restrict``."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from customers.models import Customer
from tagging import segments
from tagging.models import TagAssignment
from tagging.services import assign_tags
from tests.factories import CustomerFactory, DepartmentFactory, TagFactory, TagGroupFactory

SOURCES = ["官网", "展会", "转介绍"]
DAYS = [dt.date(2026, 1, d) for d in (5, 10, 15, 20)]


@pytest.fixture
def world(superuser, departments):
    rng = random.Random(20261124)
    north = DepartmentFactory(name="华北", parent=departments["销售部"])
    depts = [departments["销售部"], north, departments["财务部"], None]
    groups = [TagGroupFactory(name=f"组{g}") for g in range(3)]
    tags = [TagFactory(group=groups[i % 3], name=f"标签{i}") for i in range(8)]
    customers = []
    for i in range(60):
        day = rng.choice([*DAYS, None])
        customers.append(
            CustomerFactory(
                source=rng.choice(SOURCES),
                total_spend=Decimal(rng.choice([0, 500, 2000, 3500])),
                last_order_at=timezone.make_aware(
                    dt.datetime.combine(day, dt.time(rng.randint(0, 23)))
                )
                if day
                else None,
                department=depts[i % 4],
            )
        )
    for i, t in enumerate(tags):
        share = [0.7, 0.5, 0.5, 0.3, 0.2, 0.1, 0.05, 0.0][i]
        chosen = [c for c in customers if rng.random() < share]
        if chosen:
            assign_tags(chosen, [t], actor=superuser, source="manual")
    held: dict[int, set[int]] = {c.pk: set() for c in customers}
    for c, t in TagAssignment.objects.values_list("customer_id", "tag_id"):
        held[c].add(t)
    return {"tags": [t.pk for t in tags], "held": held, "departments": [d for d in depts if d]}


def brute(expr: dict, customer: Customer, held: set[int]) -> bool:
    if "tag" in expr:
        return expr["tag"] in held
    if "not" in expr:
        return not brute(expr["not"], customer, held)
    if "and" in expr:
        return all(brute(e, customer, held) for e in expr["and"])
    if "or" in expr:
        return any(brute(e, customer, held) for e in expr["or"])
    field, op, value = expr["attr"], expr["op"], expr["value"]
    if field == "department":
        dept = customer.department
        match = dept is not None and dept.path.startswith(type(dept).objects.get(pk=value).path)
        return match if op == "eq" else not match
    actual = getattr(customer, field)
    if op == "ne":
        return not brute({**expr, "op": "eq"}, customer, held)
    if actual is None:
        return False
    if field == "total_spend":
        value = Decimal(value)
    elif field == "last_order_at":
        actual, value = timezone.localtime(actual).date(), dt.date.fromisoformat(value)
    elif op == "contains":
        return value.lower() in actual.lower()
    return {
        "eq": actual == value,
        "gt": actual > value,
        "gte": actual >= value,
        "lt": actual < value,
        "lte": actual <= value,
    }[op]


def expressions(world):
    tags = st.sampled_from(world["tags"]).map(lambda t: {"tag": t})
    attrs = st.one_of(
        st.builds(
            lambda v, op: {"attr": "source", "op": op, "value": v},
            st.sampled_from(SOURCES),
            st.sampled_from(["eq", "ne"]),
        ),
        st.builds(
            lambda v: {"attr": "source", "op": "contains", "value": v},
            st.sampled_from(["官", "会", "x"]),
        ),
        st.builds(
            lambda v, op: {"attr": "total_spend", "op": op, "value": v},
            st.sampled_from(["0", "500", "2000"]),
            st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
        ),
        st.builds(
            lambda d, op: {"attr": "last_order_at", "op": op, "value": d.isoformat()},
            st.sampled_from(DAYS),
            st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"]),
        ),
        st.builds(
            lambda d, op: {"attr": "department", "op": op, "value": d.pk},
            st.sampled_from(world["departments"]),
            st.sampled_from(["eq", "ne"]),
        ),
    )
    leaves = st.one_of(tags, tags, tags, attrs)
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"and": xs}),
            st.lists(inner, min_size=1, max_size=3).map(lambda xs: {"or": xs}),
            inner.map(lambda x: {"not": x}),
        ),
        max_leaves=6,
    )


@pytest.mark.parametrize("small_result", [20_000, 0], ids=["id-list", "bitmap-param"])
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_matches_brute_force(world, superuser, monkeypatch, small_result, data):
    monkeypatch.setattr(segments, "SMALL_RESULT", small_result)
    expr = segments.validate(data.draw(expressions(world)), superuser)
    everyone = list(Customer.objects.select_related("department").order_by("-pk"))
    expected = [c.pk for c in everyone if brute(expr, c, world["held"][c.pk])]
    assert segments.count(expr, superuser) == len(expected)
    assert segments.customer_ids(expr, superuser) == expected
    page = segments.page(expr, superuser, number=2, per_page=7)
    assert page.count == len(expected)
    assert [c.pk for c in page.customers] == expected[7:14]
    narrowed = segments.restrict(
        Customer.objects.filter(pk__in=expected[:10] + [everyone[0].pk]), expr
    )
    assert set(narrowed.values_list("pk", flat=True)) == set(expected[:10]) | (
        {everyone[0].pk} & set(expected)
    )
    # The SQL compiler alone (the SQLite path) gives the same answer on every database.
    assert sorted(
        Customer.objects.filter(segments.compile_q(expr)).values_list("pk", flat=True)
    ) == sorted(expected)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_text_form_round_trips(world, superuser, data):
    expr = segments.validate(data.draw(expressions(world)), superuser)
    assert segments.parse(segments.to_text(expr, superuser), superuser) == expr
