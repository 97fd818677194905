"""The nightly beat entry "WeCom sync and drift report" (django-celery-beat's tables, editable
in the admin under Periodic tasks), ensured after every migrate (config.beat)."""

from __future__ import annotations

from typing import Any

from config.beat import after_migrate, ensure_crontab_task

NIGHTLY_TASK_NAME = "WeCom sync and drift report (nightly)"
NIGHTLY_TASK = "wecom.nightly_sync"


def ensure_nightly_schedule(apps: Any) -> None:
    ensure_crontab_task(
        apps,
        name=NIGHTLY_TASK_NAME,
        task=NIGHTLY_TASK,
        hour="2",
        description="WeCom library, contacts and chats sync, then the drift report (issue 10).",
    )


ensure_after_migrate = after_migrate(ensure_nightly_schedule)
