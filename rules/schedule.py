"""The nightly beat entry: "run every enabled rule" at 00:00 company time (docs/rules.md#runs).

It lives in django-celery-beat's tables, so administrators edit the time or disable it in the
admin (Periodic tasks). Created by migration ``rules.0004`` and re-ensured after every
``migrate``/``flush`` (post_migrate); an existing entry, edited or disabled, is left as it is.
"""

from __future__ import annotations

from typing import Any

from config.beat import after_migrate, ensure_crontab_task

NIGHTLY_TASK_NAME = "Run all auto-tag rules (nightly)"
NIGHTLY_TASK = "rules.run_all_rules"


def ensure_nightly_schedule(apps: Any) -> None:
    """Create the entry if missing. ``apps`` is the app registry (historical in migrations)."""
    ensure_crontab_task(
        apps,
        name=NIGHTLY_TASK_NAME,
        task=NIGHTLY_TASK,
        hour="0",
        kwargs={"trigger": "schedule"},
        description="Evaluates every enabled auto-tag rule (docs/rules.md#runs).",
    )


ensure_after_migrate = after_migrate(ensure_nightly_schedule)
