"""Celery tasks for rules: ids in, JSON out; the work is ``rules.services.run_rule(s)``.

Transient database errors (connection lost, serialisation failure, deadlock) are retried with
backoff; a run that finds its rule already running is recorded as skipped and not retried.
A run whose worker was lost (its lease expired) is failed and queued again by ``reap_rule_runs``
(beat, every minute), at most TAGDESK_JOB_MAX_ATTEMPTS times.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError
from django.utils import timezone
from django.utils.translation import gettext as _

from rules.models import RunStatus, RunTrigger
from rules.services import expired_runs, run_rule, run_rules

TRANSIENT = (OperationalError, InterfaceError)
logger = logging.getLogger(__name__)


def _actor(actor_id: int | None):
    return get_user_model().objects.filter(pk=actor_id).first() if actor_id else None


def _summary(run) -> dict:
    return {
        "run": run.pk,
        "rule": run.rule_id,
        "status": run.status,
        "matched": run.matched,
        "added": run.added,
        "removed": run.removed,
        "error": run.error,
    }


@shared_task(
    name="rules.run_rule",
    bind=True,
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
)
def run_rule_task(
    self,
    rule_id: int,
    trigger: str = RunTrigger.MANUAL,
    dry_run: bool = False,
    actor_id: int | None = None,
    attempt: int = 1,
) -> dict:
    """Run one rule (admin "run now", API, the reaper)."""
    run = run_rule(
        rule_id,
        trigger=trigger,
        dry_run=dry_run,
        actor=_actor(actor_id),
        task_id=self.request.id or "",
        attempt=attempt,
    )
    return _summary(run)


def queue_rule_run(rule_id: int, *, trigger: str, dry_run: bool = False, actor_id=None) -> bool:
    """Queue one run; False (logged) when the broker refuses. No row exists before the task
    runs (the task creates its RuleRun), so a refused message orphans nothing."""
    try:
        run_rule_task.delay(rule_id, trigger=trigger, dry_run=dry_run, actor_id=actor_id)
    except Exception:
        if run_rule_task.app.conf.task_always_eager:
            raise  # no broker: that was the run itself failing, recorded on its RuleRun
        logger.exception("rule %s could not be queued", rule_id)
        return False
    return True


@shared_task(name="rules.reap_rule_runs", ignore_result=True)
def reap_rule_runs() -> dict:
    """Beat, every minute: a ``running`` run whose lease expired lost its worker. Fail it (a
    conditional update, so two reapers never both act) and queue the rule again; its evaluation
    was one transaction, so the new run starts over from a clean state."""
    now = timezone.now()
    requeued, failed = [], []
    fields = ("pk", "rule_id", "trigger", "dry_run", "attempt", "triggered_by_id")
    for run in expired_runs(now).only(*fields):
        give_up = run.attempt >= settings.TAGDESK_JOB_MAX_ATTEMPTS
        error = (
            _("Worker lost %(count)d times (lease expired); not run again.")
            % {"count": run.attempt}
            if give_up
            else _("Worker lost (lease expired); the rule was queued again.")
        )
        if (
            not expired_runs(now)
            .filter(pk=run.pk)
            .update(status=RunStatus.FAILED, finished_at=now, lease_expires_at=None, error=error)
        ):
            continue
        if give_up:
            failed.append(run.pk)
            continue
        logger.warning("rule run %s lost its worker: rule %s queued again", run.pk, run.rule_id)
        run_rule_task.apply_async(
            (run.rule_id,),
            {
                "trigger": run.trigger,
                "dry_run": run.dry_run,
                "actor_id": run.triggered_by_id,
                "attempt": run.attempt + 1,
            },
        )
        requeued.append(run.pk)
    return {"requeued": requeued, "failed": failed}


@shared_task(
    name="rules.realtime_batch",
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=60,
    max_retries=10,
)
def realtime_batch_task() -> dict:
    """Evaluate the customers marked dirty (rules.realtime). The wake-up key is dropped first,
    so a change committed while this runs enqueues the next task: no wake-up is lost."""
    from django.core.cache import cache

    from rules import realtime

    cache.delete(realtime._wake_key())
    results = realtime.process()
    if results and realtime.pending():
        realtime.schedule()  # ran out of time with rows left (or rows re-marked meanwhile)
    return {
        "batches": len(results),
        "customers": sum(r.customers for r in results),
        "added": sum(r.added for r in results),
        "removed": sum(r.removed for r in results),
    }


@shared_task(name="rules.run_all_rules", bind=True, max_retries=5)
def run_all_rules_task(
    self, trigger: str = RunTrigger.SCHEDULE, rule_ids: list[int] | None = None
) -> dict:
    """Nightly: every enabled rule in dependency order. Rules that failed on a transient
    database error are retried (only those) with backoff. Delivered again after a lost worker,
    it skips the rules it already ran (``run_rules``'s task id)."""
    runs = run_rules(rule_ids, trigger=trigger, task_id=self.request.id or "")
    if rule_ids is None:
        from rules.realtime import prune_batches

        prune_batches()
    transient = [
        run.rule_id
        for run in runs
        if run.status == RunStatus.FAILED
        and run.error.split(":")[0] in {e.__name__ for e in TRANSIENT}
    ]
    result = {"runs": [_summary(run) for run in runs]}
    if transient:
        raise self.retry(
            kwargs={"trigger": trigger, "rule_ids": transient},
            countdown=min(300, 30 * 2**self.request.retries),
        )
    return result
