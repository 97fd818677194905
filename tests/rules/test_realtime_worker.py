"""A real Celery worker (Redis broker): an event committed through the service tags the customer
within seconds, through the on-commit wake-up alone. Needs REDIS_URL (CI sets it)."""

from __future__ import annotations

import os
import time

import pytest
from django.core.cache import cache
from django.utils import timezone

from customers.services import record_events
from rules import realtime
from rules.models import DirtyCustomer, RealtimeBatch, RuleMode
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


def test_an_event_tags_the_customer_within_seconds(celery_worker, make_rule, auto_tag):
    rule = make_rule({"event": "message", "text_contains": "价格", "op": "gte", "value": 1})
    rule.mode = RuleMode.REALTIME
    rule.save()
    cache.delete(realtime._wake_key())  # a wake-up left by an earlier run would swallow ours
    c = customer()
    started = time.monotonic()
    record_events(
        [
            {
                "customer_id": c.pk,
                "kind": "message",
                "text": "这个价格多少",
                "occurred_at": timezone.now(),
            }
        ]
    )
    assert wait_for(
        lambda: TagAssignment.objects.filter(customer=c, tag=rule.tag).exists(), timeout=30
    )
    elapsed = time.monotonic() - started
    assert elapsed < 10, elapsed
    assert wait_for(lambda: not DirtyCustomer.objects.exists(), timeout=10)
    batch = RealtimeBatch.objects.get()
    assert batch.customers == 1 and batch.added == 1 and batch.latency_ms < 10_000
