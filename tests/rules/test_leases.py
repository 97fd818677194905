"""Rule runs that heal: a running row holds a lease its heartbeat renews; the reaper fails a run
whose worker was lost and queues its rule again; a nightly task delivered again resumes."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from rules import services
from rules.models import RuleRun, RunStatus, RunTrigger
from rules.tasks import reap_rule_runs, run_all_rules_task
from tagging.models import TagAssignment
from tests.rules.conftest import customer

pytestmark = pytest.mark.django_db

RICH = {"attribute": "total_spend", "op": "gt", "value": 1000}


def lost_run(rule, *, attempt=1, expired=True, **fields):
    """A ``running`` row whose worker died (SIGKILL): its transaction rolled back, the row stays."""
    now = timezone.now()
    return RuleRun.objects.create(
        rule=rule,
        trigger=RunTrigger.SCHEDULE,
        status=RunStatus.RUNNING,
        started_at=now - dt.timedelta(minutes=20),
        lease_expires_at=now + dt.timedelta(seconds=-1 if expired else 60),
        attempt=attempt,
        **fields,
    )


def test_a_run_holds_a_lease_while_running_and_releases_it(make_rule, auto_tag, settings):
    settings.TAGDESK_JOB_LEASE_SECONDS = 300
    rule = make_rule(RICH, tag=auto_tag)
    seen = []
    original = services.apply_rule

    def spy(*args, **kwargs):
        seen.append(RuleRun.objects.get(rule=rule, status=RunStatus.RUNNING).lease_expires_at)
        return original(*args, **kwargs)

    services.apply_rule = spy
    try:
        run = services.run_rule(rule, trigger=RunTrigger.MANUAL, task_id="t-1")
    finally:
        services.apply_rule = original
    left = (seen[0] - timezone.now()).total_seconds()
    assert 290 < left <= 300
    run.refresh_from_db()
    assert (run.status, run.lease_expires_at, run.task_id) == (RunStatus.SUCCEEDED, None, "t-1")


def test_the_reaper_fails_a_lost_run_and_runs_its_rule_again(make_rule, auto_tag, superuser):
    rich = customer(total_spend=5000)
    rule = make_rule(RICH, tag=auto_tag)
    lost = lost_run(rule, triggered_by=superuser)
    alive = lost_run(make_rule(RICH), expired=False)
    result = reap_rule_runs()  # eager in tests: the queued run happens at once
    assert result == {"requeued": [lost.pk], "failed": []}
    lost.refresh_from_db()
    assert lost.status == RunStatus.FAILED and "queued again" in lost.error
    assert lost.finished_at and lost.lease_expires_at is None
    again = RuleRun.objects.filter(rule=rule).exclude(pk=lost.pk).get()
    assert (again.status, again.attempt, again.trigger) == (RunStatus.SUCCEEDED, 2, "schedule")
    assert again.triggered_by == superuser
    assert list(TagAssignment.objects.filter(tag=auto_tag).values_list("customer", flat=True)) == [
        rich.pk
    ]
    assert RuleRun.objects.get(pk=alive.pk).status == RunStatus.RUNNING  # its worker is alive
    assert reap_rule_runs() == {"requeued": [], "failed": []}


def test_a_rule_that_keeps_losing_its_worker_stops(make_rule, auto_tag, settings):
    settings.TAGDESK_JOB_MAX_ATTEMPTS = 2
    rule = make_rule(RICH, tag=auto_tag)
    lost = lost_run(rule, attempt=2)
    assert reap_rule_runs() == {"requeued": [], "failed": [lost.pk]}
    lost.refresh_from_db()
    assert lost.status == RunStatus.FAILED and "2 times" in lost.error
    assert RuleRun.objects.filter(rule=rule).count() == 1


def test_a_run_reaped_while_alive_does_not_overwrite_the_outcome(make_rule, auto_tag):
    rule = make_rule(RICH, tag=auto_tag)
    original = services.apply_rule

    def reaped_meanwhile(*args, **kwargs):
        services.apply_rule = original  # once
        RuleRun.objects.filter(rule=rule, status=RunStatus.RUNNING).update(
            lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
        )
        reap_rule_runs()  # queues a new run, which finds the rule free and runs
        return original(*args, **kwargs)

    services.apply_rule = reaped_meanwhile
    try:
        first = services.run_rule(rule, trigger=RunTrigger.MANUAL)
    finally:
        services.apply_rule = original
    first.refresh_from_db()
    assert first.status == RunStatus.FAILED  # the reaper's verdict stands
    assert RuleRun.objects.filter(rule=rule, status=RunStatus.SUCCEEDED, attempt=2).count() == 1


def test_a_nightly_task_delivered_again_skips_rules_it_already_ran(make_rule, auto_tag):
    first = make_rule(RICH, tag=auto_tag)
    second = make_rule({"attribute": "total_spend", "op": "lt", "value": 10})
    customer(total_spend=5000)
    done = services.run_rule(first, trigger=RunTrigger.SCHEDULE, task_id="nightly-1")
    result = run_all_rules_task.apply(task_id="nightly-1").get()  # the same message again
    assert [r["run"] for r in result["runs"] if r["rule"] == first.pk] == [done.pk]
    assert RuleRun.objects.filter(rule=first).count() == 1
    assert RuleRun.objects.filter(rule=second, task_id="nightly-1").count() == 1
    run_all_rules_task.apply(task_id="nightly-2").get()  # the next night runs both again
    assert RuleRun.objects.filter(task_id="nightly-2").count() == 2


def test_admin_run_again_action(client, make_rule, auto_tag, superuser):
    customer(total_spend=5000)
    rule = make_rule(RICH, tag=auto_tag)
    lost = lost_run(rule)
    RuleRun.objects.filter(pk=lost.pk).update(status=RunStatus.FAILED)
    client.force_login(superuser)
    response = client.post(
        reverse("admin:rules_rulerun_changelist"),
        {"action": "run_again", "_selected_action": [lost.pk]},
        follow=True,
    )
    assert response.status_code == 200 and "1 rule(s) queued" in response.content.decode()
    assert RuleRun.objects.filter(rule=rule, status=RunStatus.SUCCEEDED).count() == 1


def test_admin_run_now_with_the_broker_down_says_so(client, make_rule, auto_tag, superuser):
    from config.celery import app
    from rules import tasks

    rule = make_rule(RICH, tag=auto_tag)
    app.conf.task_always_eager = False  # restored by the autouse fixture

    def refuse(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to redis")

    tasks.run_rule_task.delay, original = refuse, tasks.run_rule_task.delay
    try:
        client.force_login(superuser)
        response = client.post(reverse("admin:rules_rule_run", args=[rule.pk]), follow=True)
    finally:
        tasks.run_rule_task.delay = original
    assert response.status_code == 200
    assert "task queue is unavailable" in response.content.decode()
    assert not RuleRun.objects.exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="heartbeat needs a second connection")
def test_the_heartbeat_renews_the_lease_of_a_long_run(make_rule, auto_tag, settings):
    settings.TAGDESK_JOB_LEASE_SECONDS = 1  # renewed every 1/3 s
    rule = make_rule(RICH, tag=auto_tag)
    original = services.apply_rule
    leases = []

    def slow(*args, **kwargs):
        for _ in range(3):
            time.sleep(0.6)
            leases.append(RuleRun.objects.get(rule=rule, status=RunStatus.RUNNING).lease_expires_at)
        return original(*args, **kwargs)

    services.apply_rule = slow
    try:
        run = services.run_rule(rule, trigger=RunTrigger.MANUAL)
    finally:
        services.apply_rule = original
    assert leases[0] < leases[1] < leases[2]  # renewed while the run worked...
    assert run.status == RunStatus.SUCCEEDED
    assert reap_rule_runs()["requeued"] == []  # ... so it was never taken for lost
