"""Create the nightly "run all enabled rules" beat entry (00:00 company time); see rules.schedule."""

from django.db import migrations


def create_schedule(apps, schema_editor):
    from rules.schedule import ensure_nightly_schedule

    ensure_nightly_schedule(apps)


def remove_schedule(apps, schema_editor):
    from rules.schedule import NIGHTLY_TASK_NAME

    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NIGHTLY_TASK_NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("rules", "0003_rule_runs_and_unique_tag"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
