"""The nightly beat entry: "run every enabled rule" at 00:00 company time (docs/rules.md#runs).

It lives in django-celery-beat's tables, so administrators edit the time or disable it in the
admin (Periodic tasks). Created by migration ``rules.0004`` and re-ensured after every
``migrate``/``flush`` (post_migrate); an existing entry, edited or disabled, is left as it is.
"""

from __future__ import annotations

import json

from django.conf import settings

NIGHTLY_TASK_NAME = "Run all auto-tag rules (nightly)"
NIGHTLY_TASK = "rules.run_all_rules"


def ensure_nightly_schedule(apps) -> None:
    """Create the entry if missing. ``apps`` is the app registry (historical in migrations)."""
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name=NIGHTLY_TASK_NAME).exists():
        return
    crontab, _created = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour="0",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.create(
        name=NIGHTLY_TASK_NAME,
        task=NIGHTLY_TASK,
        crontab=crontab,
        kwargs=json.dumps({"trigger": "schedule"}),
        enabled=True,
        description="Evaluates every enabled auto-tag rule (docs/rules.md#runs).",
    )


def ensure_after_migrate(sender, app_config=None, using="default", apps=None, **kwargs) -> None:
    if apps is None:  # flush sends no app registry: use the real one
        from django.apps import apps
    if not apps.is_installed("django_celery_beat"):
        return
    try:
        apps.get_model("django_celery_beat", "PeriodicTask")
    except LookupError:
        return
    ensure_nightly_schedule(apps)
