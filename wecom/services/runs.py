"""Sync runs: the status row (status, counts, error, timings) every sync and check writes."""

from __future__ import annotations

from collections.abc import Callable

from django.utils import timezone

from wecom.client import Wecom, WecomError, get_wecom
from wecom.models import SyncRunStatus, WecomSyncRun


def run(kind: str, work: Callable[[Wecom], dict]) -> dict:
    """Run ``work(wecom)`` under a run row; returns its summary plus ``ok`` and ``run``."""
    row = WecomSyncRun.objects.create(kind=kind)
    try:
        summary = work(get_wecom())
    except WecomError as exc:
        row.status, row.error = SyncRunStatus.FAILED, str(exc)[:255]
        row.finished_at = timezone.now()
        row.save(update_fields=["status", "error", "finished_at"])
        return {"ok": False, "run": row.pk, "error": str(exc)}
    row.status, row.summary, row.finished_at = SyncRunStatus.DONE, summary, timezone.now()
    row.save(update_fields=["status", "summary", "finished_at"])
    return {"ok": True, "run": row.pk, **summary}


def full_sync(
    *,
    library: bool,
    contacts: bool,
    chats: bool,
    check: bool = False,
    repair: bool = False,
    kind: str = "sync",
) -> dict:
    from wecom.services import chats as chats_service
    from wecom.services import contacts as contacts_service
    from wecom.services import drift, outbox
    from wecom.services import library as library_service

    def work(wecom: Wecom) -> dict:
        summary: dict = {}
        if library:
            summary["library"] = library_service.sync_library(wecom)
        if contacts:
            summary["contacts"] = contacts_service.sync_contacts(wecom)
        if chats:
            summary["chats"] = chats_service.sync_chats(wecom)
        if library or contacts:
            summary["outbox"] = outbox.drain(wecom)
        if check or repair:
            summary["check"] = drift.check(wecom, repair=repair)
            if repair:
                summary["check_after_repair"] = drift.check(wecom)
        return summary

    return run(kind, work)
