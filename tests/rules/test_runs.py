"""Runs: recorded with counts and timings, never overlapping, retried on transient errors;
the nightly beat entry; the ``run_rules`` command (docs/rules.md#commands, a contract)."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from celery.exceptions import Retry
from django.core.management import call_command
from django.db import OperationalError
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from rules import services
from rules.models import Rule, RuleRun, RunStatus, RunTrigger
from rules.tasks import run_all_rules_task, run_rule_task
from tagging.models import TagAssignment
from tests.factories import TagFactory
from tests.rules.conftest import customer

pytestmark = pytest.mark.django_db

RICH = {"attribute": "total_spend", "op": "gt", "value": 1000}


def test_run_is_recorded(make_rule, auto_tag, superuser):
    customer(total_spend=5000)
    rule = make_rule(RICH, tag=auto_tag)
    run = services.run_rule(rule, trigger=RunTrigger.MANUAL, actor=superuser)
    run.refresh_from_db()
    assert run.status == RunStatus.SUCCEEDED
    assert (run.matched, run.added, run.removed) == (1, 1, 0)
    assert run.finished_at >= run.started_at
    assert "total" in run.timings and len(run.timings) >= 2
    assert run.triggered_by == superuser and run.trigger == "manual"


def test_overlapping_run_is_refused(make_rule, auto_tag):
    customer(total_spend=5000)
    rule = make_rule(RICH, tag=auto_tag)
    RuleRun.objects.create(
        rule=rule, trigger="schedule", status=RunStatus.RUNNING, started_at=timezone.now()
    )
    run = services.run_rule(rule, trigger=RunTrigger.MANUAL)
    assert run.status == RunStatus.SKIPPED
    assert "in progress" in run.error
    assert not TagAssignment.objects.exists()


def test_abandoned_run_does_not_block_forever(make_rule, auto_tag):
    rule = make_rule(RICH, tag=auto_tag)
    stale = RuleRun.objects.create(
        rule=rule,
        trigger="schedule",
        status=RunStatus.RUNNING,
        started_at=timezone.now() - dt.timedelta(hours=1),
        lease_expires_at=timezone.now() - dt.timedelta(seconds=1),
    )
    assert services.run_rule(rule, trigger=RunTrigger.MANUAL).status == RunStatus.SUCCEEDED
    stale.refresh_from_db()
    assert stale.status == RunStatus.FAILED and "lease expired" in stale.error


def test_invalid_rule_run_is_rejected(make_rule, auto_tag):
    rule = make_rule(RICH, tag=auto_tag)
    Rule.objects.filter(pk=rule.pk).update(tree={"attribute": "gone", "op": "eq", "value": 1})
    run = services.run_rule(rule, trigger=RunTrigger.COMMAND)
    assert run.status == RunStatus.REJECTED
    assert "Unknown customer field" in run.error


def test_failure_is_recorded_and_raised(make_rule, auto_tag, monkeypatch):
    rule = make_rule(RICH, tag=auto_tag)

    def boom(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(services, "apply_rule", boom)
    with pytest.raises(OperationalError):
        services.run_rule(rule, trigger=RunTrigger.SCHEDULE)
    run = RuleRun.objects.get(rule=rule)
    assert run.status == RunStatus.FAILED and run.error.startswith("OperationalError")


def test_task_retries_transient_errors(make_rule, auto_tag, monkeypatch):
    customer(total_spend=5000)
    rule = make_rule(RICH, tag=auto_tag)
    real = services.apply_rule
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OperationalError("could not serialize access")
        return real(*args, **kwargs)

    monkeypatch.setattr(services, "apply_rule", flaky)
    # The transient error asks Celery for a retry (with backoff); the retry then succeeds.
    assert OperationalError in run_rule_task.autoretry_for
    with pytest.raises(Retry):
        run_rule_task.apply(args=[rule.pk], kwargs={"trigger": "manual"}).get()
    result = run_rule_task.apply(args=[rule.pk], kwargs={"trigger": "manual"}, retries=1).get()
    assert result["status"] == RunStatus.SUCCEEDED and result["added"] == 1
    assert list(
        RuleRun.objects.filter(rule=rule).order_by("id").values_list("status", flat=True)
    ) == [
        RunStatus.FAILED,
        RunStatus.SUCCEEDED,
    ]


def test_run_all_runs_enabled_rules_in_dependency_order(make_rule, auto_group):
    base, derived, off = (TagFactory(group=auto_group) for _ in range(3))
    # Created first, but reads a tag another rule makes: must run after it.
    derived_rule = make_rule({"tag": base.pk, "op": "has"}, tag=derived)
    base_rule = make_rule(RICH, tag=base)
    make_rule(RICH, tag=off, enabled=False)
    rich = customer(total_spend=5000)
    result = run_all_rules_task.apply(kwargs={"trigger": "schedule"}).get()
    assert [r["rule"] for r in result["runs"]] == [base_rule.pk, derived_rule.pk]
    assert set(TagAssignment.objects.filter(tag=derived).values_list("customer_id", flat=True)) == {
        rich.pk
    }
    assert not TagAssignment.objects.filter(tag=off).exists()


def test_nightly_beat_entry_exists():
    task = PeriodicTask.objects.get(task="rules.run_all_rules")
    assert task.enabled
    assert (task.crontab.minute, task.crontab.hour) == ("0", "0")
    assert str(task.crontab.timezone) == "Asia/Shanghai"
    assert json.loads(task.kwargs) == {"trigger": "schedule"}


# --- the command ----------------------------------------------------------------------------------


def run_command(*args):
    out = StringIO()
    try:
        call_command("run_rules", *args, stdout=out)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue().strip().splitlines()


def test_command_json_summary(make_rule, auto_tag):
    customer(total_spend=5000)
    customer(total_spend=0)
    rule = make_rule(RICH, tag=auto_tag, name="高消费")
    code, lines = run_command("--json")
    assert code == 0
    summary = json.loads(lines[-1])
    assert summary["ok"] is True and summary["dry_run"] is False
    assert summary["rules"][0]["id"] == rule.pk
    assert {k: summary["rules"][0][k] for k in ("matched", "added", "removed")} == {
        "matched": 1,
        "added": 1,
        "removed": 0,
    }
    assert "matched=1 added=1 removed=0" in lines[0]


def test_command_dry_run_and_single_rule(make_rule, auto_tag, auto_group):
    customer(total_spend=5000)
    rule = make_rule(RICH, tag=auto_tag)
    make_rule(
        {"attribute": "total_spend", "op": "lt", "value": 1}, tag=TagFactory(group=auto_group)
    )
    code, lines = run_command("--rule", str(rule.pk), "--dry-run", "--json")
    summary = json.loads(lines[-1])
    assert code == 0 and summary["dry_run"] is True
    assert [r["id"] for r in summary["rules"]] == [rule.pk]
    assert summary["added"] == 1
    assert not TagAssignment.objects.exists()


def test_command_exits_non_zero_when_rejected(make_rule, auto_tag):
    rule = make_rule(RICH, tag=auto_tag)
    Rule.objects.filter(pk=rule.pk).update(tree={})
    code, lines = run_command("--json")
    assert code == 1
    summary = json.loads(lines[-1])
    assert summary["ok"] is False and summary["rules"][0]["status"] == "rejected"


def test_command_unknown_rule(db):
    code, lines = run_command("--rule", "424242", "--json")
    assert code == 1
    assert "424242" in json.loads(lines[-1])["error"]
