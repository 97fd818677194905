"""A real Celery worker (Redis broker) runs the rule tasks, including the nightly entry exactly
as django-celery-beat would send it. Needs REDIS_URL (CI sets it)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from django.db import connection, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from rules.models import RuleRun, RunStatus
from tagging.models import TagAssignment, TagGroup, TagKind
from tests.conftest import wait_for
from tests.factories import TagFactory, TagGroupFactory
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


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a worker process needs a database it can share"
)
def test_a_worker_killed_mid_run_is_reaped_and_the_rule_runs_again(
    make_rule, monkeypatch, settings
):
    """SIGKILL the worker process while it evaluates a rule: its heartbeat (another thread,
    another connection) stops renewing the lease, the reaper fails the run and queues the rule,
    and a new worker applies it exactly once."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from rules.tasks import reap_rule_runs, run_rule_task

    group = TagGroupFactory(name="价值分层", kind=TagKind.AUTO, exclusive=True)
    tag = TagFactory(group=group, name="高价值")
    rich = [customer(total_spend=5000) for _ in range(3)]
    customer(total_spend=0)
    rule = make_rule(RICH, tag=tag)
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "TAGDESK_JOB_LEASE_SECONDS": "2",  # heartbeat every 2/3 s
    }
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo"]
    command += ["--without-mingle", "--without-gossip", "--loglevel", "WARNING"]
    command += ["--hostname", f"doomed-rule-{rule.pk}@%h"]
    worker = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env)
    app.conf.task_always_eager = False  # restored by the autouse fixture
    running = RuleRun.objects.filter(rule=rule, status=RunStatus.RUNNING)
    try:
        with transaction.atomic():
            # Rules of an exclusive group lock it while they write: the run waits here.
            TagGroup.objects.select_for_update().get(pk=group.pk)
            run_rule_task.delay(rule.pk, trigger="manual")
            assert wait_for(running.exists, 60)
            first_lease = running.get().lease_expires_at
            assert wait_for(lambda: running.get().lease_expires_at > first_lease, 10)  # alive
            worker.send_signal(signal.SIGKILL)
            assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
    lost = running.get()
    assert not TagAssignment.objects.filter(tag=tag).exists()  # its transaction rolled back
    assert wait_for(lambda: RuleRun.objects.get(pk=lost.pk).lease_expires_at < timezone.now())
    assert reap_rule_runs() == {"requeued": [lost.pk], "failed": []}
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            assert wait_for(
                lambda: RuleRun.objects.filter(rule=rule, status=RunStatus.SUCCEEDED).exists(), 60
            )
    finally:
        import redis

        redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(
            "unacked", "unacked_index", "unacked_mutex"
        )
    lost.refresh_from_db()
    assert lost.status == RunStatus.FAILED and "queued again" in lost.error
    again = RuleRun.objects.get(rule=rule, status=RunStatus.SUCCEEDED)
    assert (again.attempt, again.added) == (2, 3)
    assert sorted(TagAssignment.objects.filter(tag=tag).values_list("customer", flat=True)) == [
        c.pk for c in rich
    ]
