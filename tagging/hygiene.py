"""Tag hygiene: find tags to clean up and preview the cleanup (docs/segments.md#hygiene,
docs/taxonomy.md#merge).

Finders (read-only, set-based): :func:`unused_tags` (no assignment added for N days),
:func:`small_tags` (fewer than N customers), :func:`overlapping_pairs` (customer sets overlapping
>= 85%: merge candidates), :func:`near_duplicate_names` (不吃香菜 / 不要香菜, VIP客 / VIP客户).
Actions go through ``tagging.services`` (``merge_tags``, ``archive_tag``); :func:`preview_merge`
and :func:`preview_archive` describe their effect first. :func:`monthly_report` bundles the
suggestions (Celery beat, ``tagging.hygiene_monthly_report``).

Counts here are company-wide, so the pages are for tag admins (``policy.is_tag_admin``).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from django.db import connection
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.utils import timezone

from tagging import bitmaps
from tagging.models import (
    AuditAction,
    AuditEntry,
    Segment,
    Tag,
    TagAssignment,
    TagKind,
    TagStatus,
)
from tagging.names import fold_name
from tagging.segments import tag_ids

OVERLAP_THRESHOLD = 0.85
SMALL_TAG_CUSTOMERS = 5
UNUSED_DAYS = 90


def _candidates(tags: QuerySet[Tag] | None) -> QuerySet[Tag]:
    qs = Tag.objects.all() if tags is None else tags
    return qs.filter(status=TagStatus.ACTIVE).exclude(group__kind=TagKind.AUTO)


def unused_tags(days: int = UNUSED_DAYS, tags: QuerySet[Tag] | None = None, now=None) -> list[Tag]:
    """Active, non-auto tags older than ``days`` to which no customer was added in ``days``
    (by any source; a merge counts as an addition). Auto tags are their rules' business."""
    cutoff = (now or timezone.now()) - dt.timedelta(days=days)
    recent_audit = AuditEntry.objects.filter(
        tag=OuterRef("pk"), action=AuditAction.ASSIGNMENT_ADDED, created_at__gte=cutoff
    )
    recent_row = TagAssignment.objects.filter(tag=OuterRef("pk"), created_at__gte=cutoff)
    found = list(
        _candidates(tags)
        .filter(created_at__lt=cutoff)
        .exclude(Exists(recent_audit))
        .exclude(Exists(recent_row))
        .select_related("group")
    )
    return _with_counts(found)


def _with_counts(tag_list: list[Tag]) -> list[Tag]:
    """Set ``customer_count`` on each tag (from the segment index on PostgreSQL: no scan of the
    assignment table) and order by it, smallest first."""
    if bitmaps.available():
        counts = bitmaps.sizes()
    else:
        counts = dict(
            TagAssignment.objects.filter(tag_id__in=[t.pk for t in tag_list])
            .values_list("tag_id")
            .annotate(n=Count("pk"))
            .values_list("tag_id", "n")
        )
    for t in tag_list:
        t.customer_count = counts.get(t.pk, 0)
    return sorted(tag_list, key=lambda t: (t.customer_count, t.pk))


def small_tags(minimum: int = SMALL_TAG_CUSTOMERS, tags: QuerySet[Tag] | None = None) -> list[Tag]:
    """Active, non-auto tags carried by fewer than ``minimum`` customers (zero included)."""
    return [
        t
        for t in _with_counts(list(_candidates(tags).select_related("group")))
        if t.customer_count < minimum
    ]


@dataclass
class Overlap:
    a: int
    b: int
    a_count: int
    b_count: int
    both: int

    @property
    def jaccard(self) -> float:
        union = self.a_count + self.b_count - self.both
        return self.both / union if union else 0.0

    @property
    def containment(self) -> float:
        smaller = min(self.a_count, self.b_count)
        return self.both / smaller if smaller else 0.0


def overlapping_pairs(
    tags: QuerySet[Tag] | None = None, threshold: float = OVERLAP_THRESHOLD
) -> list[Overlap]:
    """Pairs of tags (same kind, same owner for personal ones) whose customers overlap by at
    least ``threshold``, measured as |A∩B| / |A∪B| (so a tag is not flagged only because it is a
    small part of a big one). Sizes bound the overlap (|A∩B|/|A∪B| <= small/large), so only pairs
    of similar size are compared: on PostgreSQL with the bitmap index, as in-memory ANDs; else
    with one SQL self-join restricted to those pairs."""
    tag_list = list(_candidates(tags).select_related("group"))
    if bitmaps.available():
        maps = bitmaps.load(t.pk for t in tag_list)
        sizes = {pk: m.bit_count() for pk, m in maps.items()}
        pairs = _similar_size_pairs(tag_list, sizes, threshold)
        found = [
            Overlap(a, b, sizes[a], sizes[b], (maps[a] & maps[b]).bit_count()) for a, b in pairs
        ]
    else:
        found = overlapping_pairs_sql([t.pk for t in tag_list], threshold, tag_list)
    return sorted(
        (o for o in found if o.both and o.jaccard >= threshold),
        key=lambda o: (-o.jaccard, o.a, o.b),
    )


def _similar_size_pairs(
    tag_list: list[Tag], sizes: dict[int, int], threshold: float
) -> list[tuple[int, int]]:
    def family(t: Tag) -> tuple[str, int | None]:
        return (t.group.kind, t.group.owner_id)

    ordered = sorted((t for t in tag_list if sizes.get(t.pk)), key=lambda t: sizes[t.pk])
    pairs: list[tuple[int, int]] = []
    for i, small in enumerate(ordered):
        for large in ordered[i + 1 :]:
            if sizes[small.pk] < threshold * sizes[large.pk]:
                break
            if family(small) == family(large):
                pairs.append((min(small.pk, large.pk), max(small.pk, large.pk)))
    return pairs


def overlapping_pairs_sql(
    tag_pks: list[int], threshold: float = OVERLAP_THRESHOLD, tag_list: list[Tag] | None = None
) -> list[Overlap]:
    """The same as :func:`overlapping_pairs` in one SQL statement (SQLite; bench baseline)."""
    if tag_list is None:
        tag_list = list(Tag.objects.filter(pk__in=tag_pks).select_related("group"))
    sizes = dict(
        TagAssignment.objects.filter(tag_id__in=tag_pks)
        .values_list("tag_id")
        .annotate(n=Count("pk"))
        .values_list("tag_id", "n")
    )
    pairs = _similar_size_pairs(tag_list, sizes, threshold)
    if not pairs:
        return []
    found: dict[tuple[int, int], int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(pairs), 500):
            chunk = pairs[start : start + 500]
            values = ", ".join(["(%s, %s)"] * len(chunk))
            cursor.execute(
                f"WITH p(a, b) AS (VALUES {values})"  # noqa: S608 - only placeholders are interpolated
                " SELECT p.a, p.b, count(*) FROM p"
                " JOIN tagging_tagassignment x ON x.tag_id = p.a"
                " JOIN tagging_tagassignment y ON y.tag_id = p.b AND y.customer_id = x.customer_id"
                " GROUP BY p.a, p.b",
                [v for pair in chunk for v in pair],
            )
            found.update({(a, b): n for a, b, n in cursor.fetchall()})
    return [Overlap(a, b, sizes[a], sizes[b], found.get((a, b), 0)) for a, b in pairs]


# --- near-duplicate names --------------------------------------------------------------------------


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance (insert, delete, substitute one character)."""
    if len(a) < len(b):
        a, b = b, a
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i]
        for j, cb in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        previous = current
    return previous[-1]


def name_similarity(a: str, b: str) -> float:
    """1 - edit distance / longer length, on folded names (full/half width, case)."""
    a, b = fold_name(a), fold_name(b)
    longest = max(len(a), len(b))
    return 1 - edit_distance(a, b) / longest if longest else 1.0


@dataclass
class NamePair:
    a: Tag
    b: Tag
    similarity: float


def near_duplicate_names(
    tags: QuerySet[Tag] | None = None, min_similarity: float = 0.75, min_length: int = 3
) -> list[NamePair]:
    """Pairs of active tags of the same kind (and owner) whose folded names differ by little:
    similarity >= ``min_similarity`` (不吃香菜/不要香菜 0.75, VIP客/VIP客户 0.8). Names shorter
    than ``min_length`` are skipped (高/中/低 mean something only in their group), and so are
    pairs within one exclusive group (alternatives by design, e.g. 高意向/低意向)."""
    tag_list = list(_candidates(tags).select_related("group").order_by("pk"))
    keyed = [(t, fold_name(t.name)) for t in tag_list if len(fold_name(t.name)) >= min_length]
    by_char: dict[str, set[int]] = defaultdict(set)
    for index, (_tag, key) in enumerate(keyed):
        for char in set(key):
            by_char[char].add(index)
    found = []
    for index, (tag, key) in enumerate(keyed):
        shared = Counter(j for char in set(key) for j in by_char[char] if j > index)
        for j, common in shared.items():
            other, other_key = keyed[j]
            longest = max(len(key), len(other_key))
            # Similarity s needs about s * longest characters in common (1 spare for repeats).
            if common + 1 < min_similarity * longest:
                continue
            if (tag.group.kind, tag.group.owner_id) != (other.group.kind, other.group.owner_id):
                continue
            if tag.group_id == other.group_id and tag.group.exclusive:
                continue
            similarity = 1 - edit_distance(key, other_key) / longest
            if similarity >= min_similarity:
                found.append(NamePair(tag, other, round(similarity, 3)))
    return sorted(found, key=lambda p: (-p.similarity, p.a.pk, p.b.pk))


# --- previews ---------------------------------------------------------------------------------


def _segments_naming(tag_pks: set[int]) -> list[Segment]:
    return [s for s in Segment.objects.order_by("name") if tag_ids(s.expression) & tag_pks]


def preview_merge(sources: Iterable[Tag], target: Tag) -> dict:
    """What ``merge_tags(sources, target)`` would do, without doing it."""
    source_pks = {t.pk for t in sources} - {target.pk}
    holders = TagAssignment.objects.filter(tag_id__in=source_pks).values("customer_id")
    source_customers = holders.distinct().count()
    already = TagAssignment.objects.filter(tag=target, customer_id__in=holders).count()
    return {
        "sources": sorted(source_pks),
        "target": target.pk,
        "source_assignments": TagAssignment.objects.filter(tag_id__in=source_pks).count(),
        "customers_moving": source_customers,
        "customers_already_on_target": already,
        "target_customers_after": TagAssignment.objects.filter(tag=target).count()
        + source_customers
        - already,
        "segments_rewritten": [s.name for s in _segments_naming(source_pks)],
        "rules_rewritten": _rules_naming(source_pks),
    }


def preview_archive(tag: Tag) -> dict:
    """What ``archive_tag(tag)`` would do: assignments stay; the tag leaves pickers."""
    return {
        "tag": tag.pk,
        "assignments_kept": TagAssignment.objects.filter(tag=tag).count(),
        "segments_naming_it": [s.name for s in _segments_naming({tag.pk})],
        "rules_naming_it": _rules_naming({tag.pk}),
    }


def _rules_naming(tag_pks: set[int]) -> list[str]:
    """Names of rules whose condition tree mentions one of the tags (has/lacks tag leaves)."""
    from rules.models import Rule

    def mentions(node) -> bool:
        if isinstance(node, dict):
            if node.get("tag") in tag_pks or node.get("tag_id") in tag_pks:
                return True
            return any(mentions(v) for v in node.values())
        if isinstance(node, list):
            return any(mentions(v) for v in node)
        return False

    return [r.name for r in Rule.objects.order_by("name") if mentions(r.tree)]


# --- monthly report ---------------------------------------------------------------------------------


def monthly_report(now=None) -> dict:
    """All suggestions in one JSON-serialisable dict (ids and names): the monthly task stores it
    as a :class:`tagging.models.HygieneReport`, shown on the hygiene page."""
    now = now or timezone.now()
    names = {t.pk: str(t) for t in Tag.objects.select_related("group")}

    def tag_row(t: Tag) -> dict:
        return {"id": t.pk, "tag": str(t), "customers": getattr(t, "customer_count", None)}

    return {
        "generated_at": now.isoformat(),
        "unused": [tag_row(t) for t in unused_tags(now=now)],
        "small": [tag_row(t) for t in small_tags()],
        "overlapping": [
            {
                **asdict(o),
                "a_name": names.get(o.a),
                "b_name": names.get(o.b),
                "jaccard": round(o.jaccard, 3),
            }
            for o in overlapping_pairs()
        ],
        "near_duplicates": [
            {
                "a": p.a.pk,
                "b": p.b.pk,
                "a_name": str(p.a),
                "b_name": str(p.b),
                "similarity": p.similarity,
            }
            for p in near_duplicate_names()
        ],
    }


def store_monthly_report(now=None):
    from tagging.models import HygieneReport

    report = monthly_report(now)
    counts = {k: len(v) for k, v in report.items() if isinstance(v, list)}
    return HygieneReport.objects.create(payload=report, summary=counts)


__all__ = [
    "Overlap",
    "edit_distance",
    "monthly_report",
    "name_similarity",
    "near_duplicate_names",
    "overlapping_pairs",
    "overlapping_pairs_sql",
    "preview_archive",
    "preview_merge",
    "small_tags",
    "store_monthly_report",
    "unused_tags",
]
