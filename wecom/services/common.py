"""Helpers shared by the WeCom services: the sync-issue log and the synced-tag queries."""

from __future__ import annotations

import logging

from django.db.models import F
from django.utils import timezone

from tagging.models import TagKind, TagStatus
from wecom.models import WecomSyncIssue, WecomTagLink

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


def synced_links():
    """Tag links that sync: the TagDesk tag exists, is active and corporate."""
    return WecomTagLink.objects.filter(
        tag__isnull=False, tag__status=TagStatus.ACTIVE, tag__group__kind=TagKind.CORPORATE
    )


def synced_tag_map() -> dict[int, str]:
    """{TagDesk tag id: WeCom tag id} of every synced tag."""
    return dict(synced_links().values_list("tag_id", "wecom_id"))
