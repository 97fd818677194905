"""Tag combination suggestions (docs/suggestions.md): which tags customers hold together far
more often than chance, computed from the segment index's per-tag bitmaps.

Two readers of one computation:

- **tag admins** get pairs and triples with high *lift* and enough *support* as candidate
  segments (:func:`compute`, stored by :func:`run_report` as
  :class:`~tagging.models.CombinationSuggestion` rows, decided in ``tagging.suggestion_actions``);
- **operators** tagging one customer get the five tags most often held together with the
  customer's current ones (:func:`for_customer`), read from the pair counts the report stores
  (:class:`~tagging.models.TagCooccurrence`), so one customer costs one index range per tag it
  holds instead of a pass over a million-bit bitmap per candidate.

The measures, for tags A, B, C held by |A|, |B|, |C| of N customers::

    support(A,B)      = |A∩B|                 (customers holding both)
    confidence(A→B)   = |A∩B| / |A|
    lift(A,B)         = P(A∩B) / (P(A)·P(B))  = |A∩B|·N / (|A|·|B|)
    lift(A,B,C)       = P(A∩B∩C) / (P(A)·P(B)·P(C))

Only shared tags enter: active corporate and auto tags (auto tags are facts about customers,
fine as inputs). Personal tags never do — the report is read by every tag admin, and another
employee's personal tags are shown to nobody (docs/permissions.md#tags-shown-on-a-customer).

Bounded work (seconds at 1M customers and ~500 tags): tags held by fewer than ``min_support``
customers cannot be part of a frequent pair and are dropped (apriori); of the rest only the
``top_tags`` most held are paired; a triple is counted only when all three of its pairs are
frequent and one of them already has the minimum lift, at most ``max_triples`` of them, the
strongest pairs first. A triple is kept only when every split of it (a pair and the third tag)
also has the minimum lift, P(A∩B∩C) / (P(A∩B)·P(C)) and so on (else it is a strong pair with an
unrelated third tag, which says nothing new).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from customers.models import Customer
from permissions import policy
from tagging import bitmaps
from tagging.models import (
    CombinationSuggestion,
    CustomerTagSuggestionDismissal,
    SuggestionReport,
    SuggestionStatus,
    Tag,
    TagAssignment,
    TagCooccurrence,
    TagKind,
    TagStatus,
)

TOP_PER_CUSTOMER = 5
# Stored per report, strongest first: a page a tag admin can read, not every frequent pair.
MAX_PAIR_SUGGESTIONS = 200
MAX_TRIPLE_SUGGESTIONS = 100


@dataclass(frozen=True)
class Params:
    min_support: int
    min_lift: float
    top_tags: int
    max_triples: int

    @classmethod
    def from_settings(cls, **overrides: Any) -> Params:
        values: dict[str, Any] = {
            "min_support": settings.TAGDESK_SUGGESTION_MIN_SUPPORT,
            "min_lift": settings.TAGDESK_SUGGESTION_MIN_LIFT,
            "top_tags": settings.TAGDESK_SUGGESTION_TOP_TAGS,
            "max_triples": settings.TAGDESK_SUGGESTION_MAX_TRIPLES,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass
class Combination:
    tags: tuple[int, ...]  # sorted ids
    support: int
    confidence: float
    lift: float

    @property
    def key(self) -> str:
        return ",".join(map(str, self.tags))


@dataclass
class Computation:
    customers: int
    sizes: dict[int, int]  # tag id -> customers, for the tags considered
    pairs: dict[tuple[int, int], int]  # (a, b), a < b -> customers holding both (frequent only)
    combinations: list[Combination]
    triples_counted: int = 0
    seconds: float = 0.0
    tags_considered: list[int] = field(default_factory=list)


def shared_tags() -> list[Tag]:
    """The tags a report may name: active corporate and auto tags (never personal ones)."""
    return list(
        Tag.objects.filter(status=TagStatus.ACTIVE)
        .exclude(group__kind=TagKind.PERSONAL)
        .select_related("group")
        .order_by("pk")
    )


def _bitmaps(tag_ids: list[int]) -> tuple[dict[int, int], int]:
    """Per-tag customer bitmaps and the number of customers, in one snapshot: the segment index
    on PostgreSQL, else built from the assignment table (same bits)."""
    if bitmaps.available():
        maps = bitmaps.load([bitmaps.ALL_CUSTOMERS, *tag_ids])
        return {t: maps[t] for t in tag_ids}, maps[bitmaps.ALL_CUSTOMERS].bit_count()
    found: dict[int, int] = dict.fromkeys(tag_ids, 0)
    rows = TagAssignment.objects.filter(tag_id__in=tag_ids).values_list("tag_id", "customer_id")
    for tag_id, customer_id in rows.iterator(chunk_size=10_000):
        found[tag_id] |= 1 << customer_id
    return found, Customer.objects.count()


def lift(support: int, sizes: list[int], customers: int) -> float:
    """P(all) / Π P(each), from counts."""
    denominator = 1.0
    for size in sizes:
        denominator *= size / customers
    return (support / customers) / denominator if denominator else 0.0


def compute(params: Params, tags: list[Tag] | None = None) -> Computation:
    """Pair and triple candidates from the bitmaps (read-only; see the module docstring)."""
    started = time.perf_counter()
    tags = shared_tags() if tags is None else tags
    maps, customers = _bitmaps([t.pk for t in tags])
    exclusive_group = {t.pk: t.group_id for t in tags if t.group.exclusive}
    result = combine(maps, customers, exclusive_group, params)
    result.seconds = time.perf_counter() - started
    return result


def combine(
    maps: dict[int, int], customers: int, exclusive_group: dict[int, int], params: Params
) -> Computation:
    """:func:`compute` on given bitmaps (bit n set = customer n holds the tag) of ``customers``
    customers; ``exclusive_group`` maps tags of exclusive groups to their group. Pure."""
    sizes = {pk: m.bit_count() for pk, m in maps.items()}
    # Apriori: a tag below the minimum support is in no frequent pair.
    ranked = sorted(
        (pk for pk in maps if sizes[pk] >= params.min_support), key=lambda pk: (-sizes[pk], pk)
    )
    considered = sorted(ranked[: params.top_tags])
    result = Computation(customers, {pk: sizes[pk] for pk in considered}, {}, [])
    result.tags_considered = considered
    if customers == 0:
        return result

    pair_lift: dict[tuple[int, int], float] = {}
    for i, a in enumerate(considered):
        map_a = maps[a]
        for b in considered[i + 1 :]:
            group = exclusive_group.get(a)
            if group is not None and exclusive_group.get(b) == group:
                continue  # one tag of an exclusive group at a time: never together
            both = (map_a & maps[b]).bit_count()
            if both < params.min_support:
                continue
            result.pairs[(a, b)] = both
            value = lift(both, [sizes[a], sizes[b]], customers)
            pair_lift[(a, b)] = value
            if value >= params.min_lift:
                result.combinations.append(
                    Combination((a, b), both, max(both / sizes[a], both / sizes[b]), value)
                )

    neighbours: dict[int, set[int]] = defaultdict(set)
    for a, b in result.pairs:
        neighbours[a].add(b)
        neighbours[b].add(a)
    seen: set[tuple[int, ...]] = set()
    strong = sorted(
        (pair for pair, value in pair_lift.items() if value >= params.min_lift),
        key=lambda pair: (-pair_lift[pair], pair),
    )
    for a, b in strong:
        if len(seen) >= params.max_triples:
            break
        map_ab: int | None = None
        for c in sorted(neighbours[a] & neighbours[b]):
            triple = tuple(sorted((a, b, c)))
            if triple in seen:
                continue
            if len(seen) >= params.max_triples:
                break
            seen.add(triple)
            if map_ab is None:
                map_ab = maps[a] & maps[b]
            support = (map_ab & maps[c]).bit_count()
            if support < params.min_support:
                continue
            x, y, z = triple
            value = lift(support, [sizes[x], sizes[y], sizes[z]], customers)
            # Each tag must go with the other two beyond chance: the lift of every split
            # (pair, third) = P(ABC) / (P(pair)·P(third)) reaches the minimum.
            splits = (
                lift(support, [result.pairs[(y, z)], sizes[x]], customers),
                lift(support, [result.pairs[(x, z)], sizes[y]], customers),
                lift(support, [result.pairs[(x, y)], sizes[z]], customers),
            )
            if value < params.min_lift or min(splits) < params.min_lift:
                continue
            confidence = max(
                support / result.pairs[(x, y)],
                support / result.pairs[(x, z)],
                support / result.pairs[(y, z)],
            )
            result.combinations.append(Combination(triple, support, confidence, value))
    result.triples_counted = len(seen)
    result.combinations.sort(key=lambda c: (-c.lift, -c.support, c.tags))
    return result


def _strongest(combinations: list[Combination]) -> list[Combination]:
    pairs = [c for c in combinations if len(c.tags) == 2][:MAX_PAIR_SUGGESTIONS]
    triples = [c for c in combinations if len(c.tags) == 3][:MAX_TRIPLE_SUGGESTIONS]
    return pairs + triples


@transaction.atomic
def store(report: SuggestionReport, computation: Computation) -> SuggestionReport:
    """Replace the co-occurrence counts and the undecided suggestions with ``computation``'s.

    Rows already accepted or dismissed keep their decision (their figures are refreshed), so a
    dismissed combination does not come back as new. One transaction: readers see the old
    report or the new one."""
    now = timezone.now()
    customers = computation.customers
    keep = _strongest(computation.combinations)
    keys = [c.key for c in keep]
    CombinationSuggestion.objects.filter(status=SuggestionStatus.NEW).exclude(key__in=keys).delete()
    existing = {s.key: s for s in CombinationSuggestion.objects.filter(key__in=keys)}
    new_rows, changed = [], []
    for c in keep:
        figures = {
            "support": c.support,
            "support_ratio": c.support / customers if customers else 0.0,
            "confidence": c.confidence,
            "lift": c.lift,
            "report": report,
        }
        row = existing.get(c.key)
        if row is None:
            new_rows.append(
                CombinationSuggestion(key=c.key, tag_ids=list(c.tags), size=len(c.tags), **figures)
            )
        else:
            for name, value in figures.items():
                setattr(row, name, value)
            changed.append(row)
    CombinationSuggestion.objects.bulk_create(new_rows, batch_size=500)
    CombinationSuggestion.objects.bulk_update(
        changed, ["support", "support_ratio", "confidence", "lift", "report"], batch_size=500
    )
    TagCooccurrence.objects.all().delete()
    rows = [
        TagCooccurrence(tag_id=t, other_id=t, customers=n) for t, n in computation.sizes.items()
    ]
    all_customers = bitmaps.ALL_CUSTOMERS
    rows.append(TagCooccurrence(tag_id=all_customers, other_id=all_customers, customers=customers))
    for (a, b), n in computation.pairs.items():
        rows.append(TagCooccurrence(tag_id=a, other_id=b, customers=n))
        rows.append(TagCooccurrence(tag_id=b, other_id=a, customers=n))
    TagCooccurrence.objects.bulk_create(rows, batch_size=5000)
    report.status = SuggestionReport.Status.DONE
    report.finished_at = now
    report.customers = customers
    report.tags_considered = len(computation.tags_considered)
    report.pairs_counted = len(computation.pairs)
    report.triples_counted = computation.triples_counted
    report.suggestions = len(keep)
    report.seconds = round(computation.seconds, 3)
    report.save()
    return report


def request_report(*, actor: Any = None, params: Params | None = None) -> SuggestionReport:
    """A queued report (the task claims and runs it): on demand from the admin, or nightly."""
    params = params or Params.from_settings()
    return SuggestionReport.objects.create(
        requested_by=actor if getattr(actor, "pk", None) else None,
        min_support=params.min_support,
        min_lift=params.min_lift,
    )


def run_report(report_id: int) -> SuggestionReport | None:
    """Claim the queued report (a conditional UPDATE: a second delivery of the task does
    nothing), compute and store it. A failure is recorded on the report, never half-stored."""
    claimed = SuggestionReport.objects.filter(
        pk=report_id, status=SuggestionReport.Status.QUEUED
    ).update(status=SuggestionReport.Status.RUNNING, started_at=timezone.now())
    if not claimed:
        return None
    report = SuggestionReport.objects.get(pk=report_id)
    params = Params.from_settings(min_support=report.min_support, min_lift=report.min_lift)
    try:
        return store(report, compute(params))
    except Exception as exc:
        SuggestionReport.objects.filter(pk=report_id).update(
            status=SuggestionReport.Status.FAILED, finished_at=timezone.now(), error=str(exc)[:2000]
        )
        raise


def latest_report() -> SuggestionReport | None:
    return SuggestionReport.objects.filter(status=SuggestionReport.Status.DONE).first()


# --- one customer ---------------------------------------------------------------------------


@dataclass
class TagSuggestion:
    tag: Tag
    confidence: float  # the highest share of holders of one of the customer's tags holding it
    support: int  # customers holding both it and that tag
    lift: float
    because: Tag  # that tag


def for_customer(
    user: Any,
    customer_id: int,
    *,
    limit: int = TOP_PER_CUSTOMER,
    shown_tags: Any = None,
    addable_tags: Any = None,
) -> list[TagSuggestion]:
    """The tags most often held together with the customer's current ones, best first.

    Candidates: tags ``user`` may add (edit level, not auto), that the customer does not hold,
    not dismissed for this customer, not in an exclusive group where the customer already holds
    a tag. Evidence: only the customer's tags ``user`` sees on customers
    (``policy.customer_tags``: never someone else's personal tag). Score: the highest
    confidence over the customer's tags, then the summed confidence, then support. The caller
    checks the customer is in the user's scope. Four queries.

    ``shown_tags`` / ``addable_tags``: the same two policy answers as id subqueries already
    compiled by the caller (the API's ``api.scope``); by default built here from the policy."""
    if shown_tags is None:
        shown_tags = policy.customer_tags(user).values("pk")
    if addable_tags is None:
        addable_tags = addable(user).values("pk")
    held = list(
        TagAssignment.objects.filter(customer_id=customer_id, tag_id__in=shown_tags).values_list(
            "tag_id", "tag__group_id", "tag__group__exclusive"
        )
    )
    held_ids = {tag_id for tag_id, _group, _exclusive in held}
    if not held_ids:
        return []
    full_groups = {group for _tag, group, exclusive in held if exclusive}
    # One statement, each part an index read: the rows of the held tags (their own sizes
    # included), the candidates' sizes, and the number of customers (key 0). UNION ALL rather
    # than OR, which PostgreSQL can only answer with a scan of the whole table.
    columns = ("tag_id", "other_id", "customers")
    pairs = TagCooccurrence.objects.filter(tag_id__in=held_ids).values_list(*columns)
    candidate_sizes = TagCooccurrence.objects.filter(
        tag_id__in=addable_tags, other_id=F("tag_id")
    ).values_list(*columns)
    everyone = TagCooccurrence.objects.filter(
        tag_id=bitmaps.ALL_CUSTOMERS, other_id=bitmaps.ALL_CUSTOMERS
    ).values_list(*columns)
    rows = pairs.union(candidate_sizes, everyone, all=True)
    sizes: dict[int, int] = {}
    together: list[tuple[int, int, int]] = []
    for tag_id, other_id, customers in rows:
        if tag_id == other_id:
            sizes[tag_id] = customers
        else:
            together.append((tag_id, other_id, customers))
    best: dict[
        int, tuple[float, float, int, int]
    ] = {}  # other -> (max conf, sum, support, because)
    for tag_id, other_id, customers in together:
        if other_id in held_ids or tag_id not in sizes or other_id not in sizes:
            continue  # held already, or not a candidate (the size rows are candidates' only)
        confidence = customers / sizes[tag_id]
        top, total, support, because = best.get(other_id, (0.0, 0.0, 0, 0))
        if confidence > top or (confidence == top and tag_id < because):
            top, support, because = confidence, customers, tag_id
        best[other_id] = (top, total + confidence, support, because)
    if not best:
        return []
    dismissed = set(
        CustomerTagSuggestionDismissal.objects.filter(
            customer_id=customer_id, tag_id__in=list(best)
        ).values_list("tag_id", flat=True)
    )
    ranked = sorted(
        (pk for pk in best if pk not in dismissed),
        key=lambda pk: (-best[pk][0], -best[pk][1], -best[pk][2], pk),
    )
    # Enough spares for the exclusive-group filter, loaded in one query.
    shortlist = ranked[: limit * 4 + len(full_groups)]
    tags = Tag.objects.select_related("group").in_bulk(
        shortlist + [best[pk][3] for pk in shortlist]
    )
    customers = sizes.get(bitmaps.ALL_CUSTOMERS, 0)
    found: list[TagSuggestion] = []
    for pk in shortlist:
        tag = tags.get(pk)
        if tag is None or (tag.group.exclusive and tag.group_id in full_groups):
            continue
        top, _total, support, because = best[pk]
        found.append(
            TagSuggestion(
                tag=tag,
                confidence=top,
                support=support,
                lift=lift(support, [sizes[because], sizes[pk]], customers) if customers else 0.0,
                because=tags[because],
            )
        )
        if len(found) >= limit:
            break
    return found


def addable(user: Any) -> QuerySet[Tag]:
    """The tags that may be suggested to ``user``: those they may add to customers by hand (edit
    level, not auto) and that a report counts (not personal)."""
    return policy.visible_tags(user, policy.Level.EDIT).exclude(
        group__kind__in=[TagKind.AUTO, TagKind.PERSONAL]
    )
