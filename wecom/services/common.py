"""Helpers shared by the WeCom services: the sync-issue log and the synced-tag queries."""

from __future__ import annotations

import logging

from django.db.models import F
from django.utils import timezone

from tagging.models import TagKind, TagStatus
from wecom.models import SyncDirection, WecomSyncIssue, WecomTagLink

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


NOT_TO_WECOM = [SyncDirection.FROM_WECOM, SyncDirection.OFF]
NOT_FROM_WECOM = [SyncDirection.TO_WECOM, SyncDirection.OFF]


def synced_links():
    """Tag links whose assignments go to WeCom: the TagDesk tag exists, is active and
    corporate, and its group's sync rule (if any) sends to WeCom."""
    return WecomTagLink.objects.filter(
        tag__isnull=False, tag__status=TagStatus.ACTIVE, tag__group__kind=TagKind.CORPORATE
    ).exclude(tag__group__wecom_rule__direction__in=NOT_TO_WECOM)


def managed_wecom_ids() -> set[str]:
    """WeCom tag ids TagDesk may remove from a relationship: linked, and sent to WeCom."""
    return set(
        WecomTagLink.objects.exclude(
            tag__group__wecom_rule__direction__in=NOT_TO_WECOM
        ).values_list("wecom_id", flat=True)
    )


def pulled_links() -> dict[str, int]:
    """{WeCom tag id: TagDesk tag id} of the tags whose WeCom-side changes come to TagDesk."""
    return dict(
        WecomTagLink.objects.filter(tag__isnull=False)
        .exclude(tag__group__wecom_rule__direction__in=NOT_FROM_WECOM)
        .values_list("wecom_id", "tag_id")
    )
