"""The customers and assignment hooks run inside the service's transaction: a failing listener
rolls the change back, and the rules listeners cost no query when no real-time rule exists."""

from __future__ import annotations

import pytest
from django.utils import timezone

from customers import hooks as customer_hooks
from customers.models import CustomerEvent
from customers.services import record_events
from tagging import hooks as tagging_hooks
from tagging.models import AssignmentSource, TagAssignment
from tagging.services import assign_tags
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory

pytestmark = pytest.mark.django_db


def _boom(*args):
    raise RuntimeError("listener failed")


@pytest.fixture
def failing_listeners():
    customer_hooks.register_customers_listener(_boom)
    tagging_hooks.on_assignments_changed(_boom)
    yield
    customer_hooks._listeners.remove(_boom)
    tagging_hooks._assignments_changed.remove(_boom)


def test_a_failing_listener_rolls_the_change_back(failing_listeners, superuser):
    c = CustomerFactory()
    with pytest.raises(RuntimeError):
        record_events([{"customer_id": c.pk, "kind": "message", "occurred_at": timezone.now()}])
    assert not CustomerEvent.objects.exists()
    tag = TagFactory(group=TagGroupFactory())
    with pytest.raises(RuntimeError):
        assign_tags([c], [tag], actor=superuser, source=AssignmentSource.MANUAL)
    assert not TagAssignment.objects.exists()


def test_listeners_cost_nothing_without_real_time_rules(django_assert_num_queries):
    from rules import realtime

    with django_assert_num_queries(0):
        realtime.on_customers_changed({1: customer_hooks.Change(events=frozenset({"purchase"}))})
        realtime.on_assignments_changed([(1, 2)], [])
