"""Create the nightly "run all enabled rules" beat entry (00:00 company time).

It lives in django-celery-beat's tables, so administrators can change the time or disable it in
the admin (Periodic tasks); re-running this migration never duplicates it.
"""

from django.conf import settings
from django.db import migrations

TASK_NAME = "Run all auto-tag rules (nightly)"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    crontab, _ = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour="0",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.get_or_create(
        name=TASK_NAME,
        defaults={
            "task": "rules.run_all_rules",
            "crontab": crontab,
            "kwargs": '{"trigger": "schedule"}',
            "enabled": True,
            "description": "Evaluates every enabled auto-tag rule (SPEC §6).",
        },
    )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name=TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("rules", "0003_rule_runs_and_unique_tag"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
