"""tagging.hooks as the WeCom sync uses it: registered in WecomConfig.ready, told the pairs of
every assignment service inside its transaction, and a failing handler rolls the change back."""

from __future__ import annotations

import pytest

from tagging import hooks, services
from tagging.models import AuditEntry, TagAssignment
from tests.factories import CustomerFactory, TagFactory
from wecom.tasks import (
    assignments_listener,
    deletion_listener,
    rule_assignments_listener,
    taxonomy_listener,
)

pytestmark = pytest.mark.django_db


def test_wecom_registers_in_its_app_config():
    assert assignments_listener in hooks._assignments_changed
    assert taxonomy_listener in hooks._taxonomy_changed
    assert deletion_listener in hooks._taxonomy_deleting
    assert rule_assignments_listener in hooks._rule_assignments_written


def test_the_rule_and_deletion_listeners_make_no_query_while_the_integration_is_off(settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.WECOM_CORP_ID = settings.WECOM_SECRET = None
    settings.WECOM_STRATEGY_ID = 1
    with CaptureQueriesContext(connection) as ctx:
        rule_assignments_listener([1, 2], None)
        deletion_listener([1], [2], None, "manual")
    assert ctx.captured_queries == []


def test_every_assignment_service_reports_its_pairs(monkeypatch, superuser):
    seen = []
    monkeypatch.setattr(hooks, "_assignments_changed", [lambda a, r: seen.append((a, r))])
    tag, other = TagFactory(), TagFactory()
    customer = CustomerFactory()
    services.assign_tags([customer], [tag], actor=superuser, source="manual")
    services.unassign_tags([customer], [tag], actor=superuser, source="manual")
    services.bulk_assign([(customer.pk, tag.pk)], actor=superuser, source="import")
    services.merge_tags([tag], other, actor=superuser)
    services.delete_tag(other, actor=superuser, confirm=True)
    pair, moved = (customer.pk, tag.pk), (customer.pk, other.pk)
    assert seen == [
        ([pair], []),
        ([], [pair]),
        ([pair], []),
        ([moved], [pair]),
        ([], [moved]),
    ]


def test_a_failing_assignment_handler_rolls_the_change_back(monkeypatch, superuser):
    def boom(added, removed):
        raise RuntimeError("handler failed")

    monkeypatch.setattr(hooks, "_assignments_changed", [boom])
    tag, customer = TagFactory(), CustomerFactory()
    audits = AuditEntry.objects.count()
    with pytest.raises(RuntimeError):
        services.assign_tags([customer], [tag], actor=superuser, source="manual")
    assert not TagAssignment.objects.exists()
    assert AuditEntry.objects.count() == audits


def test_taxonomy_changes_are_reported(monkeypatch, superuser):
    calls = []
    monkeypatch.setattr(hooks, "_taxonomy_changed", [lambda: calls.append(1)])
    group = services.create_group(name="活动", actor=superuser)
    services.create_tag(group, "双11", actor=superuser)
    assert len(calls) == 2
