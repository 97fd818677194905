"""Concurrent events for one customer while a worker evaluates (PostgreSQL, real connections):
no lost update, no deadlock, and the end state equals a full nightly evaluation."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from customers.services import record_events
from rules import realtime, services
from rules.models import DirtyCustomer, RealtimeBatch, RuleMode, RunTrigger
from tagging.models import TagAssignment
from tests.rules.conftest import customer

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql", reason="row locks and SKIP LOCKED need PostgreSQL"
    ),
]

EVENTS = 40


def test_events_racing_a_worker_are_never_lost(make_rule):
    # The tag appears only with the very last event: a lost mark would leave it missing.
    rule = make_rule({"event": "purchase", "op": "gte", "value": EVENTS})
    rule.mode = RuleMode.REALTIME
    rule.save()
    realtime.set_enqueue(lambda countdown: None)  # the threads below are the only workers
    c = customer()
    done = threading.Event()
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            while not done.is_set():
                realtime.process(run_for=1.0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    def ingest() -> None:
        try:
            for _ in range(EVENTS):
                record_events(
                    [{"customer_id": c.pk, "kind": "purchase", "occurred_at": timezone.now()}]
                )
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=worker) for _ in range(2)]
    writer = threading.Thread(target=ingest)
    try:
        for t in (*workers, writer):
            t.start()
        writer.join(timeout=120)
        done.set()
        for t in workers:
            t.join(timeout=120)
    finally:
        from rules.apps import RulesConfig

        RulesConfig.wire_enqueue()
    assert not errors, errors
    # The workers evaluated while events were still arriving (the race did happen).
    assert RealtimeBatch.objects.filter(removed=0).count() > 1
    realtime.process()  # what the wake-up after the last commit does
    assert not DirtyCustomer.objects.exists()
    assert TagAssignment.objects.filter(tag=rule.tag, customer=c).exists()
    run = services.run_rule(rule, trigger=RunTrigger.SCHEDULE)
    assert (run.added, run.removed, run.missed) == (0, 0, 0)
