"""Beat entries that live in django-celery-beat's tables (editable in the admin under Periodic
tasks) rather than in ``CELERY_BEAT_SCHEDULE``: an app ensures its entry after every
``migrate``/``flush`` (post_migrate); an existing entry, edited or disabled, is left as it is."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from django.conf import settings


def ensure_crontab_task(
    apps: Any,
    *,
    name: str,
    task: str,
    hour: str,
    minute: str = "0",
    kwargs: dict[str, Any] | None = None,
    description: str = "",
) -> None:
    """Create the daily entry ``name`` at ``hour:minute`` company time if it is missing.
    ``apps`` is the app registry (historical in migrations)."""
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    if PeriodicTask.objects.filter(name=name).exists():
        return
    crontab, _created = CrontabSchedule.objects.get_or_create(
        minute=minute,
        hour=hour,
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.create(
        name=name,
        task=task,
        crontab=crontab,
        kwargs=json.dumps(kwargs or {}),
        enabled=True,
        description=description,
    )


def after_migrate(ensure: Callable[[Any], None]) -> Callable[..., None]:
    """A post_migrate receiver calling ``ensure(apps)`` once django-celery-beat's tables exist."""

    def receiver(
        sender: Any, app_config: Any = None, using: str = "default", apps: Any = None, **kwargs: Any
    ) -> None:
        if apps is None:  # flush sends no app registry: use the real one
            from django.apps import apps
        if not apps.is_installed("django_celery_beat"):
            return
        try:
            apps.get_model("django_celery_beat", "PeriodicTask")
        except LookupError:
            return
        ensure(apps)

    return receiver
