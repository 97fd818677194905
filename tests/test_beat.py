"""The database beat entries (config.beat): present after migrate, left alone once edited."""

from __future__ import annotations

import json

import pytest
from django.apps import apps
from django_celery_beat.models import PeriodicTask

from rules import schedule as rules_schedule
from tagging import schedule as tagging_schedule
from wecom import schedule as wecom_schedule

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("module", "hour", "kwargs"),
    [
        (rules_schedule, "0", {"trigger": "schedule"}),
        (wecom_schedule, "2", {}),
        (tagging_schedule, "3", {}),
    ],
)
def test_nightly_entries_exist_after_migrate(module, hour, kwargs, settings):
    entry = PeriodicTask.objects.get(name=module.NIGHTLY_TASK_NAME)
    assert entry.task == module.NIGHTLY_TASK and entry.enabled
    assert (entry.crontab.hour, entry.crontab.minute) == (hour, "0")
    assert str(entry.crontab.timezone) == settings.TIME_ZONE
    assert json.loads(entry.kwargs) == kwargs


@pytest.mark.parametrize("module", [rules_schedule, wecom_schedule, tagging_schedule])
def test_an_edited_entry_is_left_as_it_is(module):
    PeriodicTask.objects.filter(name=module.NIGHTLY_TASK_NAME).update(enabled=False)
    module.ensure_after_migrate(sender=None, apps=apps)
    entries = PeriodicTask.objects.filter(name=module.NIGHTLY_TASK_NAME)
    assert entries.count() == 1 and not entries.get().enabled


@pytest.mark.parametrize("module", [rules_schedule, wecom_schedule, tagging_schedule])
def test_a_deleted_entry_comes_back(module):
    PeriodicTask.objects.filter(name=module.NIGHTLY_TASK_NAME).delete()
    module.ensure_after_migrate(sender=None)  # flush sends no app registry
    assert PeriodicTask.objects.filter(name=module.NIGHTLY_TASK_NAME, enabled=True).exists()
