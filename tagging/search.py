"""Tag search for pickers (docs/api.md#get-apiv1tagssearch): prefix, substring, pinyin initials and
full pinyin. The one search behind the API's ``/tags/search`` and every admin tag picker and filter.

Typing ``nn``, ``niunai`` or ``牛奶`` finds 牛奶过敏. Pinyin keys are computed once per distinct
tag name per process (names change rarely; a rename is simply a new key). Ranking: an exact
name first, then the most used tags (assignment counts company-wide, cached for a few minutes,
estimated from PostgreSQL's statistics on big tables, used only for ordering, never shown),
then prefix before substring matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F
from pypinyin import Style, lazy_pinyin

from tagging.models import TagAssignment
from tagging.names import fold_name

USAGE_CACHE_KEY = "api:tag-usage:v1"
USAGE_CACHE_SECONDS = 300

_QUALITY = {"exact": 0, "prefix": 1, "pinyin": 2, "substring": 3}


@lru_cache(maxsize=20000)
def pinyin_keys(name: str) -> tuple[str, str]:
    """(initials, full pinyin) of a name, lower-case without spaces: 牛奶过敏 -> (nngm, niunaiguomin).
    Latin runs stay whole in both (VIP客户 -> vipkh, vipkehu)."""
    initials = "".join(lazy_pinyin(name, style=Style.FIRST_LETTER))
    full = "".join(lazy_pinyin(name))
    return fold_name(initials).replace(" ", ""), fold_name(full).replace(" ", "")


def match_kind(query: str, name_key: str, name: str) -> str | None:
    """How a folded query matches a tag name: exact, prefix, substring, pinyin or None."""
    if name_key == query:
        return "exact"
    if name_key.startswith(query):
        return "prefix"
    if query in name_key:
        return "substring"
    if query.isascii() and query.replace(" ", "").isalnum():
        compact = query.replace(" ", "")
        initials, full = pinyin_keys(name)
        if initials.startswith(compact) or full.startswith(compact):
            return "pinyin"
        if compact in initials or compact in full:
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


def tag_rows(tags):
    """The plain rows :func:`search_tags` ranks, from a queryset of tags (already scoped by the
    policy): one query, no model instances."""
    return tags.order_by().values(
        "id",
        "name",
        "name_key",
        "sort_order",
        "group_id",
        colour_own=F("colour"),
        group_name=F("group__name"),
        kind=F("group__kind"),
        group_colour=F("group__colour"),
        group_sort_order=F("group__sort_order"),
    )


def search_tags(rows, query: str) -> list[Hit]:
    """Rank tag rows (dicts with id, name, name_key, sort_order and group_sort_order) for
    ``query``; plain rows rather than model instances, as a picker searches on every keystroke."""
    folded = fold_name(query)
    if not folded:
        return []
    usage = tag_usage()
    hits = []
    for row in rows:
        kind = match_kind(folded, row["name_key"], row["name"])
        if kind:
            hits.append(Hit(row, kind))
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
