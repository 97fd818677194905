"""Helpers shared by the WeCom services: the sync-issue log, the corp-wide rate limiter and the
synced-tag queries."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import NamedTuple

from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from tagging.models import Tag, TagKind, TagStatus
from wecom.models import SyncDirection, WecomStrategyTagLink, WecomSyncIssue, WecomTagLink

logger = logging.getLogger("wecom")


def record_issue(kind: str, wecom_id: str, code: str, message: str) -> None:
    """Log something the sync skipped, with the reason; seen again = counted, not duplicated."""
    logger.warning("wecom sync skipped %s %s: %s (%s)", kind, wecom_id, message, code)
    updated = WecomSyncIssue.objects.filter(kind=kind, wecom_id=wecom_id[:128], code=code).update(
        last_seen=timezone.now(), count=F("count") + 1, message=message[:255]
    )
    if not updated:
        WecomSyncIssue.objects.create(
            kind=kind, wecom_id=wecom_id[:128], code=code, message=message[:255]
        )


def throttle(rate: int, api: str) -> None:
    """Block until this call fits in ``rate`` calls per second of ``api`` for the corp (WeCom
    limits each API per corp), counted in the shared cache so that all workers and threads
    together keep the rate."""
    misses = 0
    while True:
        now = time.time()
        window = int(now)
        key = f"wecom:rate:{settings.WECOM_CORP_ID}:{api}:{window}"
        cache.add(key, 0, timeout=5)
        try:
            used = cache.incr(key)
        except ValueError:  # the key expired between add and incr, or the cache is down
            misses += 1
            if misses >= 3:  # no shared counter: keep this caller alone under the rate
                time.sleep(1 / rate)
                return
            continue
        if used <= rate:
            return
        time.sleep(max(window + 1 - now, 0.001))


NOT_TO_WECOM = [SyncDirection.FROM_WECOM, SyncDirection.OFF]
NOT_FROM_WECOM = [SyncDirection.TO_WECOM, SyncDirection.OFF]


def synced_links():
    """Tag links whose assignments go to WeCom: the TagDesk tag exists, is active and
    corporate, and its group's sync rule (if any) sends to WeCom."""
    return WecomTagLink.objects.filter(
        tag__isnull=False, tag__status=TagStatus.ACTIVE, tag__group__kind=TagKind.CORPORATE
    ).exclude(tag__group__wecom_rule__direction__in=NOT_TO_WECOM)


def strategy_links():
    """Strategy tag links whose assignments go to WeCom: an active auto tag in the configured
    规则组 (none while ``WECOM_STRATEGY_ID`` is unset)."""
    if settings.WECOM_STRATEGY_ID is None:
        return WecomStrategyTagLink.objects.none()
    return WecomStrategyTagLink.objects.filter(
        tag__isnull=False,
        tag__status=TagStatus.ACTIVE,
        tag__group__kind=TagKind.AUTO,
        group_link__strategy_id=settings.WECOM_STRATEGY_ID,
    )


# WeCom's limit on a rule-group tag's (and its group's) name: the push refuses longer ones.
STRATEGY_NAME_LIMIT = 30


def pending_strategy_tags(tag_ids: Iterable[int] | None = None) -> set[int]:
    """Active auto tags the next strategy push creates in WeCom (``strategy.sync_strategy_tags``):
    no rule-group tag yet, and a name WeCom takes (the push refuses and logs a longer one, so
    nothing should wait for it); only ``tag_ids`` if given. No query while
    ``WECOM_STRATEGY_ID`` is unset, one otherwise."""
    if settings.WECOM_STRATEGY_ID is None:
        return set()
    tags = Tag.objects.filter(
        group__kind=TagKind.AUTO, status=TagStatus.ACTIVE, wecom_strategy_link__isnull=True
    )
    if tag_ids is not None:
        tags = tags.filter(pk__in=list(tag_ids))
    return {
        pk
        for pk, name, group_name, group_link in tags.values_list(
            "pk", "name", "group__name", "group__wecom_strategy_link"
        )
        if len(name) <= STRATEGY_NAME_LIMIT
        and (group_link is not None or len(group_name) <= STRATEGY_NAME_LIMIT)
    }


def synced_tag_map(tag_ids: Iterable[int] | None = None) -> dict[int, str]:
    """{TagDesk tag id: WeCom tag id} of every tag whose assignments go to WeCom: corp tags
    (:func:`synced_links`) and rule-group tags (:func:`strategy_links`); only ``tag_ids`` if
    given. Two queries."""
    return {t: info.wecom_id for t, info in synced_tag_info(tag_ids).items()}


class SyncedTag(NamedTuple):
    wecom_id: str
    group_id: int
    delay_minutes: int  # the group's sync delay (docs/wecom.md#sync-delay--同步延迟); 0 = none


def synced_tag_info(tag_ids: Iterable[int] | None = None) -> dict[int, SyncedTag]:
    """:func:`synced_tag_map` with each tag's group and its sync delay (rule-group tags have
    none: TagDesk's rules make them, there is no sync rule to review them by). Two queries."""
    corp, strategy = synced_links(), strategy_links()
    if tag_ids is not None:
        ids = list(tag_ids)
        corp, strategy = corp.filter(tag_id__in=ids), strategy.filter(tag_id__in=ids)
    out = {
        t: SyncedTag(w, g, d or 0)
        for t, w, g, d in corp.values_list(
            "tag_id", "wecom_id", "tag__group_id", "tag__group__wecom_rule__delay_minutes"
        )
    }
    out.update(
        (t, SyncedTag(w, g, 0))
        for t, w, g in strategy.values_list("tag_id", "wecom_id", "tag__group_id")
    )
    return out


def managed_wecom_ids() -> set[str]:
    """WeCom tag ids TagDesk may remove from a relationship: linked, and sent to WeCom (every
    rule-group tag TagDesk pushed is TagDesk's)."""
    corp = WecomTagLink.objects.exclude(tag__group__wecom_rule__direction__in=NOT_TO_WECOM)
    return set(corp.values_list("wecom_id", flat=True)) | set(
        WecomStrategyTagLink.objects.values_list("wecom_id", flat=True)
    )


def pulled_links() -> dict[str, int]:
    """{WeCom tag id: TagDesk tag id} of the tags whose WeCom-side changes come to TagDesk."""
    return dict(
        WecomTagLink.objects.filter(tag__isnull=False)
        .exclude(tag__group__wecom_rule__direction__in=NOT_FROM_WECOM)
        .values_list("wecom_id", "tag_id")
    )
