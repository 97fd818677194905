"""Tag search for pickers (docs/api.md#get-apiv1tagssearch): prefix, substring, pinyin initials and
full pinyin. The one search behind the API's ``/tags/search`` and every admin tag picker and filter.

Typing ``nn``, ``niunai`` or ``牛奶`` finds 牛奶过敏. The pinyin keys are stored on each tag
(``Tag.pinyin_initials``, ``Tag.pinyin_full``, kept by ``Tag.save``), so the database returns only
the matching tags of the user's scope (substring ``LIKE`` on the folded name and the keys) and
Python ranks those few. Ranking: an exact name first, then the most used tags (assignment counts
company-wide, cached for a few minutes, estimated from PostgreSQL's statistics on big tables, used
only for ordering, never shown), then prefix before substring matches.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Q
from django.db.models.query import QuerySet

from tagging.models import Tag, TagAssignment
from tagging.names import fold_name, pinyin_keys

__all__ = ["Hit", "match_kind", "pinyin_keys", "search_tags", "tag_usage"]

USAGE_CACHE_KEY = "api:tag-usage:v1"
USAGE_CACHE_SECONDS = 300

_QUALITY = {"exact": 0, "prefix": 1, "pinyin": 2, "substring": 3}


def _pinyin_query(query: str) -> str | None:
    """The form of a folded query that is compared with pinyin keys, or None when the query
    cannot be pinyin (anything but ASCII letters, digits and spaces)."""
    if query.isascii() and query.replace(" ", "").isalnum():
        return query.replace(" ", "")
    return None


def match_kind(query: str, name_key: str, initials: str, full: str) -> str | None:
    """How a folded query matches a tag (its folded name and pinyin keys): exact, prefix,
    substring, pinyin or None."""
    if name_key == query:
        return "exact"
    if name_key.startswith(query):
        return "prefix"
    if query in name_key:
        return "substring"
    compact = _pinyin_query(query)
    if compact and (compact in initials or compact in full):
        return "pinyin"
    return None


def tag_usage() -> dict[int, int]:
    """Assignments per tag company-wide, from the cache (refreshed every few minutes)."""
    usage = cache.get(USAGE_CACHE_KEY)
    if usage is None:
        usage = _planner_estimates() or _exact_counts()
        cache.set(USAGE_CACHE_KEY, usage, USAGE_CACHE_SECONDS)
    return usage


# Above this many assignments, counting them for a ranking costs seconds; PostgreSQL's planner
# statistics (kept fresh by autovacuum's ANALYZE) rank the most common tags for free.
ESTIMATE_ABOVE_ROWS = 200_000


def _planner_estimates() -> dict[int, int] | None:
    if connection.vendor != "postgresql":
        return None
    table = TagAssignment._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass", [table])
        row = cursor.fetchone()
        if not row or row[0] < ESTIMATE_ABOVE_ROWS:
            return None
        cursor.execute(
            "SELECT most_common_vals::text::bigint[], most_common_freqs FROM pg_stats "
            "WHERE schemaname = current_schema() AND tablename = %s AND attname = 'tag_id'",
            [table],
        )
        stats = cursor.fetchone()
    if not stats or not stats[0]:
        return None
    return {int(tag_id): int(freq * row[0]) for tag_id, freq in zip(*stats, strict=True)}


def _exact_counts() -> dict[int, int]:
    return dict(
        TagAssignment.objects.order_by()
        .values_list("tag_id")
        .annotate(n=Count("id"))
        .values_list("tag_id", "n")
    )


@dataclass(frozen=True)
class Hit:
    tag: dict
    match: str


def _tag_rows(tags: QuerySet[Tag], folded: str):
    """The plain rows :func:`search_tags` ranks: the tags of ``tags`` (already scoped by the
    policy) whose folded name or pinyin keys contain the query, in one query, no model
    instances. ``contains`` is a LIKE with ``%`` and ``_`` escaped, as Python's ``in``."""
    matches = Q(name_key__contains=folded)
    compact = _pinyin_query(folded)
    if compact:
        matches |= Q(pinyin_initials__contains=compact) | Q(pinyin_full__contains=compact)
    return (
        tags.filter(matches)
        .order_by()
        .values(
            "id",
            "name",
            "name_key",
            "pinyin_initials",
            "pinyin_full",
            "sort_order",
            "group_id",
            colour_own=F("colour"),
            group_name=F("group__name"),
            kind=F("group__kind"),
            group_colour=F("group__colour"),
            group_sort_order=F("group__sort_order"),
        )
    )


def search_tags(tags: QuerySet[Tag], query: str) -> list[Hit]:
    """The tags of ``tags`` (a queryset the policy scoped) that match ``query``, ranked; plain
    rows (dicts) rather than model instances, as a picker searches on every keystroke."""
    folded = fold_name(query)
    if not folded:
        return []
    hits = []
    for row in _tag_rows(tags, folded):
        kind = match_kind(folded, row["name_key"], row["pinyin_initials"], row["pinyin_full"])
        if kind:
            hits.append(Hit(row, kind))
    if not hits:
        return hits
    usage = tag_usage()
    hits.sort(
        key=lambda h: (
            h.match != "exact",
            -usage.get(h.tag["id"], 0),
            _QUALITY[h.match],
            h.tag["group_sort_order"],
            h.tag["sort_order"],
            h.tag["id"],
        )
    )
    return hits
