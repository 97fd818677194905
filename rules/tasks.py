"""Celery tasks for rules: ids in, JSON out; the work is ``rules.services.run_rule(s)``.

Transient database errors (connection lost, serialisation failure, deadlock) are retried with
backoff; a run that finds its rule already running is recorded as skipped and not retried.
"""

from __future__ import annotations

from celery import shared_task
from django.contrib.auth import get_user_model
from django.db import InterfaceError, OperationalError

from rules.models import RunStatus, RunTrigger
from rules.services import run_rule, run_rules

TRANSIENT = (OperationalError, InterfaceError)


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
    autoretry_for=TRANSIENT,
    retry_backoff=True,
    retry_backoff_max=300,
    max_retries=5,
)
def run_rule_task(
    rule_id: int,
    trigger: str = RunTrigger.MANUAL,
    dry_run: bool = False,
    actor_id: int | None = None,
) -> dict:
    """Run one rule (admin "run now", API)."""
    return _summary(run_rule(rule_id, trigger=trigger, dry_run=dry_run, actor=_actor(actor_id)))


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
    database error are retried (only those) with backoff."""
    runs = run_rules(rule_ids, trigger=trigger)
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
