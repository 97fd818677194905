"""The nightly beat entry "WeCom sync and drift report" (django-celery-beat's tables, editable
in the admin under Periodic tasks), ensured after every migrate like rules.schedule."""

from __future__ import annotations

from django.conf import settings

NIGHTLY_TASK_NAME = "WeCom sync and drift report (nightly)"
NIGHTLY_TASK = "wecom.nightly_sync"


def ensure_nightly_schedule(apps) -> None:
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name=NIGHTLY_TASK_NAME).exists():
        return
    crontab, _created = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour="2",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.create(
        name=NIGHTLY_TASK_NAME,
        task=NIGHTLY_TASK,
        crontab=crontab,
        enabled=True,
        description="WeCom library, contacts and chats sync, then the drift report (issue 10).",
    )


def ensure_after_migrate(sender, app_config=None, using="default", apps=None, **kwargs) -> None:
    if apps is None:
        from django.apps import apps
    if not apps.is_installed("django_celery_beat"):
        return
    try:
        apps.get_model("django_celery_beat", "PeriodicTask")
    except LookupError:
        return
    ensure_nightly_schedule(apps)
