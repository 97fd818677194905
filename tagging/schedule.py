"""The nightly beat entry "Tag combination suggestions" (django-celery-beat's tables, editable
in the admin under Periodic tasks), ensured after every migrate (config.beat)."""

from __future__ import annotations

from typing import Any

from config.beat import after_migrate, ensure_crontab_task

NIGHTLY_TASK_NAME = "Tag combination suggestions (nightly)"
NIGHTLY_TASK = "tagging.compute_tag_suggestions"


def ensure_nightly_schedule(apps: Any) -> None:
    ensure_crontab_task(
        apps,
        name=NIGHTLY_TASK_NAME,
        task=NIGHTLY_TASK,
        hour="3",
        description="Pairs and triples of tags held together far above chance (docs/suggestions.md).",
    )


ensure_after_migrate = after_migrate(ensure_nightly_schedule)
