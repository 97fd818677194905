"""A real Celery worker (Redis broker) runs the rule tasks, including the nightly entry exactly
as django-celery-beat would send it. Needs REDIS_URL (CI sets it)."""

from __future__ import annotations

import json
import os

import pytest
from django_celery_beat.models import PeriodicTask

from rules.models import RuleRun, RunStatus
from tagging.models import TagAssignment
from tests.conftest import wait_for
from tests.rules.conftest import customer

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"),
        reason="REDIS_URL is not set: the worker test needs a Redis broker (CI sets it).",
    ),
]

RICH = {"attribute": "total_spend", "op": "gt", "value": 1000}


def test_worker_runs_a_rule(celery_worker, make_rule, auto_tag):
    from rules.tasks import run_rule_task

    rich = customer(total_spend=5000)
    customer(total_spend=0)
    rule = make_rule(RICH, tag=auto_tag)
    run_rule_task.delay(rule.pk, trigger="manual")
    assert wait_for(lambda: RuleRun.objects.filter(rule=rule, status=RunStatus.SUCCEEDED).exists())
    run = RuleRun.objects.get(rule=rule)
    assert (run.matched, run.added, run.removed) == (1, 1, 0)
    assert list(
        TagAssignment.objects.filter(tag=auto_tag).values_list("customer_id", flat=True)
    ) == [rich.pk]


def test_worker_runs_the_nightly_beat_entry(celery_worker, make_rule, auto_tag):
    customer(total_spend=5000)
    rule = make_rule(RICH, tag=auto_tag)
    entry = PeriodicTask.objects.get(task="rules.run_all_rules")
    # What django-celery-beat sends at 00:00: the entry's task name with its kwargs.
    celery_worker.send_task(
        entry.task, args=json.loads(entry.args), kwargs=json.loads(entry.kwargs)
    )
    assert wait_for(lambda: RuleRun.objects.filter(rule=rule, status=RunStatus.SUCCEEDED).exists())
    assert RuleRun.objects.get(rule=rule).trigger == "schedule"
