"""Tag search for pickers (SPEC §9): prefix, substring, pinyin initials and full pinyin.

Typing ``nn``, ``niunai`` or ``牛奶`` finds 牛奶过敏. Pinyin keys are computed once per distinct
tag name per process (names change rarely; a rename is simply a new key). Ranking: an exact
name first, then the most used tags (assignment counts, cached for a few minutes company-wide
and used only for ordering, never shown), then prefix before substring matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.core.cache import cache
from django.db.models import Count
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
        usage = dict(
            TagAssignment.objects.order_by()
            .values_list("tag_id")
            .annotate(n=Count("id"))
            .values_list("tag_id", "n")
        )
        cache.set(USAGE_CACHE_KEY, usage, USAGE_CACHE_SECONDS)
    return usage


@dataclass(frozen=True)
class Hit:
    tag: dict
    match: str


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
