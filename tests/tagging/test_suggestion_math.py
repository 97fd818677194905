"""Tag combination suggestions against brute force on small random data: pair and triple
support, confidence and lift (pure, from bitmaps), the bounds (top tags, triple cap), the
bitmaps read from the database, and the per-customer top 5."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permissions import services as grants
from permissions.policy import Level
from tagging import suggestions
from tagging.models import AssignmentSource, CustomerTagSuggestionDismissal, TagAssignment, TagKind
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory


def brute_force(holders: dict[int, set[int]], n: int, exclusive: dict[int, int], p):
    """Every measure straight from the definitions (docs/suggestions.md), over sets."""
    size = {t: len(c) for t, c in holders.items()}
    ranked = sorted((t for t in holders if size[t] >= p.min_support), key=lambda t: (-size[t], t))
    considered = sorted(ranked[: p.top_tags])

    def lift(k, sizes):
        expected = 1.0
        for s in sizes:
            expected *= s / n
        return (k / n) / expected

    pairs: dict = {}
    pair_lift: dict = {}
    found: dict[tuple[int, ...], tuple] = {}
    for a, b in itertools.combinations(considered, 2):
        if a in exclusive and exclusive[a] == exclusive.get(b):
            continue
        both = len(holders[a] & holders[b])
        if both >= p.min_support:
            pairs[(a, b)] = both
            pair_lift[(a, b)] = lift(both, [size[a], size[b]])
            if pair_lift[(a, b)] >= p.min_lift:
                found[(a, b)] = (both, max(both / size[a], both / size[b]), pair_lift[(a, b)])
    for x, y, z in itertools.combinations(considered, 3):
        sub = [(x, y), (x, z), (y, z)]
        if not all(s in pairs for s in sub) or max(pair_lift[s] for s in sub) < p.min_lift:
            continue
        k = len(holders[x] & holders[y] & holders[z])
        if k < p.min_support:
            continue
        value = lift(k, [size[x], size[y], size[z]])
        splits = [
            lift(k, [pairs[(y, z)], size[x]]),
            lift(k, [pairs[(x, z)], size[y]]),
            lift(k, [pairs[(x, y)], size[z]]),
        ]
        if value >= p.min_lift and min(splits) >= p.min_lift:
            found[(x, y, z)] = (k, max(k / pairs[s] for s in sub), value)
    return considered, pairs, found


def to_maps(holders):
    maps = {}
    for t, people in holders.items():
        value = 0
        for c in people:
            value |= 1 << c
        maps[t] = value
    return maps


worlds = st.integers(min_value=4, max_value=40).flatmap(
    lambda n: st.tuples(
        st.just(n),
        st.dictionaries(
            st.integers(min_value=1, max_value=9),
            st.sets(st.integers(min_value=0, max_value=n - 1), max_size=n),
            min_size=2,
            max_size=7,
        ),
        st.integers(min_value=1, max_value=4),  # min support
        st.sampled_from([1.0, 1.2, 1.5, 2.0]),  # min lift
        st.integers(min_value=2, max_value=8),  # top tags
    )
)


@settings(max_examples=150, deadline=None)
@given(worlds)
def test_pairs_and_triples_equal_brute_force(world):
    n, holders, min_support, min_lift, top_tags = world
    exclusive = {t: 1 for t in holders if t % 4 == 0}  # tags 4 and 8 exclude each other
    # An exclusive group means one holder at a time; make the data honour it.
    if 4 in holders and 8 in holders:
        holders[8] -= holders[4]
    params = suggestions.Params(min_support, min_lift, top_tags, max_triples=10**6)
    result = suggestions.combine(to_maps(holders), n, exclusive, params)
    considered, pairs, found = brute_force(holders, n, exclusive, params)
    assert result.tags_considered == considered
    assert result.pairs == pairs
    got = {c.tags: (c.support, c.confidence, c.lift) for c in result.combinations}
    assert set(got) == set(found)
    for key, (support, confidence, value) in found.items():
        assert got[key][0] == support
        assert got[key][1] == pytest.approx(confidence)
        assert got[key][2] == pytest.approx(value)
    lifts = [c.lift for c in result.combinations]
    assert lifts == sorted(lifts, reverse=True)


def test_a_known_pair_and_triple():
    # 10 customers; A and B together on 0-3, C on 0-3 too, D on everybody (independent).
    holders = {1: {0, 1, 2, 3, 9}, 2: {0, 1, 2, 3, 8}, 3: {0, 1, 2, 3}, 4: set(range(10))}
    params = suggestions.Params(min_support=2, min_lift=1.5, top_tags=10, max_triples=100)
    result = suggestions.combine(to_maps(holders), 10, {}, params)
    by_tags = {c.tags: c for c in result.combinations}
    ab = by_tags[(1, 2)]
    assert (ab.support, ab.confidence) == (4, 0.8)
    assert ab.lift == pytest.approx(0.4 / (0.5 * 0.5))
    abc = by_tags[(1, 2, 3)]
    assert abc.support == 4 and abc.lift == pytest.approx(0.4 / (0.5 * 0.5 * 0.4))
    assert not any(4 in c.tags for c in result.combinations)  # D: lift 1, never suggested


def test_the_bounds_hold():
    rng = random.Random(7)
    holders = {t: {c for c in range(60) if rng.random() < 0.5} for t in range(1, 13)}
    base = suggestions.Params(min_support=5, min_lift=1.0, top_tags=12, max_triples=10**6)
    everything = suggestions.combine(to_maps(holders), 60, {}, base)
    assert everything.triples_counted > 10
    capped = suggestions.combine(
        to_maps(holders), 60, {}, suggestions.Params(5, 1.0, 12, max_triples=10)
    )
    assert capped.triples_counted == 10
    none = suggestions.combine(to_maps(holders), 60, {}, suggestions.Params(5, 1.0, 12, 0))
    assert none.triples_counted == 0 and all(len(c.tags) == 2 for c in none.combinations)
    top = suggestions.combine(to_maps(holders), 60, {}, suggestions.Params(5, 1.0, 4, 10**6))
    biggest = sorted(holders, key=lambda t: (-len(holders[t]), t))[:4]
    assert top.tags_considered == sorted(biggest)
    assert all(set(pair) <= set(biggest) for pair in top.pairs)


# --- from the database ---------------------------------------------------------------------------


@pytest.fixture
def random_world(db, departments, sales_operator, superuser):
    """40 customers of 销售部 with random tags in an editable group, a view-only group, an
    exclusive editable group, an auto group and the operator's and a colleague's personal tags."""
    rng = random.Random(2026)
    sales = departments["销售部"]
    editable = TagGroupFactory(name="偏好")
    viewable = TagGroupFactory(name="来源")
    exclusive = TagGroupFactory(name="意向", exclusive=True)
    auto = TagGroupFactory(name="自动", kind=TagKind.AUTO)
    mine = TagGroupFactory(name="我的", kind=TagKind.PERSONAL, owner=sales_operator)
    theirs = TagGroupFactory(name="他的", kind=TagKind.PERSONAL, owner=superuser)
    for group, level in ((editable, Level.EDIT), (exclusive, Level.EDIT), (viewable, Level.VIEW)):
        grants.grant(group, actor=superuser, level=level, department=sales)
    grants.grant(auto, actor=superuser, level=Level.VIEW, department=sales)
    tags = {
        "editable": [TagFactory(group=editable, name=f"E{i}") for i in range(8)],
        "viewable": [TagFactory(group=viewable, name=f"V{i}") for i in range(3)],
        "exclusive": [TagFactory(group=exclusive, name=f"X{i}") for i in range(3)],
        "auto": [TagFactory(group=auto, name="A0")],
        "mine": [TagFactory(group=mine, name="M0")],
        "theirs": [TagFactory(group=theirs, name="T0")],
    }
    people = CustomerFactory.create_batch(40, department=sales)
    rows = []
    for person in people:
        for kind, group_tags in tags.items():
            if kind == "exclusive":
                if rng.random() < 0.6:
                    rows.append((person, rng.choice(group_tags)))
                continue
            for t in group_tags:
                if rng.random() < 0.35:
                    rows.append((person, t))
    TagAssignment.objects.bulk_create(
        [TagAssignment(customer=c, tag=t, source=AssignmentSource.MANUAL) for c, t in rows]
    )
    return people, tags


def test_the_bitmaps_read_from_the_database_are_the_assignments(random_world):
    _people, tags = random_world
    all_tags = [t for group in tags.values() for t in group]
    maps, customers = suggestions._bitmaps([t.pk for t in all_tags])
    assert customers == 40
    for t in all_tags:
        ids = set(TagAssignment.objects.filter(tag=t).values_list("customer_id", flat=True))
        assert {i for i in range(maps[t.pk].bit_length()) if maps[t.pk] >> i & 1} == ids
    shared = {t.pk for t in suggestions.shared_tags()}
    assert tags["mine"][0].pk not in shared and tags["theirs"][0].pk not in shared
    assert tags["auto"][0].pk in shared


def brute_top5(user_tags_visible, holders, customer_id, candidates, exclusive_groups, dismissed, p):
    """Top 5 for one customer straight from the definitions, over sets."""
    size = {t: len(c) for t, c in holders.items()}
    ranked = sorted((t for t in holders if size[t] >= p.min_support), key=lambda t: (-size[t], t))
    considered = set(ranked[: p.top_tags])
    held = {t for t in user_tags_visible if customer_id in holders.get(t, set())}
    full = {exclusive_groups[t] for t in held if t in exclusive_groups}
    scores = {}
    for c in candidates:
        if c in held or c not in considered or c in dismissed:
            continue
        if c in exclusive_groups and exclusive_groups[c] in full:
            continue
        evidence = []
        for h in sorted(held & considered):
            both = len(holders[h] & holders[c])
            if both >= p.min_support:
                evidence.append((both / size[h], h, both))
        if evidence:
            top = max(e[0] for e in evidence)
            because = min(e[1] for e in evidence if e[0] == top)
            support = next(e[2] for e in evidence if e[1] == because)
            scores[c] = (top, sum(e[0] for e in evidence), support, because)
    order = sorted(scores, key=lambda c: (-scores[c][0], -scores[c][1], -scores[c][2], c))
    return [(c, scores[c][0], scores[c][3]) for c in order[:5]]


def test_top_five_per_customer_equals_brute_force(random_world, sales_operator):
    people, tags = random_world
    params = suggestions.Params(min_support=2, min_lift=1.0, top_tags=300, max_triples=100)
    report = suggestions.request_report(params=params)
    suggestions.store(report, suggestions.compute(params))
    shared = {t.pk for t in suggestions.shared_tags()}
    holders = {
        t.pk: set(TagAssignment.objects.filter(tag=t).values_list("customer_id", flat=True))
        for group in tags.values()
        for t in group
        if t.pk in shared
    }
    visible = {t.pk for kind in ("editable", "viewable", "exclusive", "auto") for t in tags[kind]}
    candidates = {t.pk for kind in ("editable", "exclusive") for t in tags[kind]}
    exclusive_groups = {t.pk: t.group_id for t in tags["exclusive"]}
    dismissed_for = people[0].pk
    first = suggestions.for_customer(sales_operator, dismissed_for)
    assert first, "the random world should give the first customer suggestions"
    CustomerTagSuggestionDismissal.objects.create(customer=people[0], tag=first[0].tag)
    for person in people:
        dismissed = {first[0].tag.pk} if person.pk == dismissed_for else set()
        expected = brute_top5(
            visible, holders, person.pk, candidates, exclusive_groups, dismissed, params
        )
        got = suggestions.for_customer(sales_operator, person.pk)
        assert [(s.tag.pk, s.because.pk) for s in got] == [(c, b) for c, _conf, b in expected]
        for s, (_c, confidence, _b) in zip(got, expected, strict=True):
            assert s.confidence == pytest.approx(confidence)
            assert s.tag.group.kind == TagKind.CORPORATE  # never auto, never personal


def test_personal_tags_are_never_counted_nor_suggested(random_world, sales_operator):
    people, tags = random_world
    params = suggestions.Params(min_support=1, min_lift=1.0, top_tags=300, max_triples=1000)
    report = suggestions.store(
        suggestions.request_report(params=params), suggestions.compute(params)
    )
    personal = {tags["mine"][0].pk, tags["theirs"][0].pk}
    from tagging.models import CombinationSuggestion, TagCooccurrence

    assert not TagCooccurrence.objects.filter(tag_id__in=personal).exists()
    assert not TagCooccurrence.objects.filter(other_id__in=personal).exists()
    assert not any(set(s.tag_ids) & personal for s in CombinationSuggestion.objects.all())
    assert report.customers == 40
    for person in people:
        assert (
            not {s.tag.pk for s in suggestions.for_customer(sales_operator, person.pk)} & personal
        )
