"""Assignments to WeCom through the outbox: one row per relationship, final state, retries,
dead letters, rate limit errors, tags deleted while queued, token refresh."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from customers.models import Customer
from tagging import services as tagging_services
from tagging.models import Tag
from tests.factories import CustomerFactory
from tests.wecom.fake_wecom import Follow
from wecom.models import OutboxStatus, WecomOutbox
from wecom.services import outbox
from wecom.services.contacts import sync_contacts
from wecom.services.library import sync_library

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(fake_wecom, wecom, employees):
    fake_wecom.add_group("意向", ["高", "中", "低"])
    sync_library(wecom)
    fake_wecom.add_contact("wmA", "甲", [Follow("zhangsan"), Follow("lisi")])
    fake_wecom.add_contact("wmB", "乙", [Follow("zhangsan")])
    sync_contacts(wecom)
    outbox.drain(wecom)
    fake_wecom.requests.clear()
    return fake_wecom


def tag(name):
    return Tag.objects.get(name=name)


def test_assignment_enqueues_one_row_per_relationship_in_the_same_transaction(world, wecom):
    a = Customer.objects.get(external_userid="wmA")
    tagging_services.assign_tags([a], [tag("高")], actor=None, source="api")
    rows = WecomOutbox.objects.filter(status=OutboxStatus.PENDING)
    assert sorted(rows.values_list("userid", flat=True)) == ["lisi", "zhangsan"]
    assert rows.first().change == {"add": [tag("高").pk], "remove": []}
    with pytest.raises(RuntimeError), transaction.atomic():
        tagging_services.assign_tags([a], [tag("中")], actor=None, source="api")
        raise RuntimeError
    assert rows.count() == 2  # the rolled-back change left no row


def test_unsynced_tags_and_customers_without_relationships_enqueue_nothing(world, wecom):
    from tests.factories import TagFactory, TagGroupFactory

    local = TagFactory(group=TagGroupFactory(name="本地"), name="x")
    tagging_services.assign_tags(
        [Customer.objects.get(external_userid="wmA")], [local], actor=None, source="api"
    )
    tagging_services.assign_tags([CustomerFactory()], [tag("高")], actor=None, source="api")
    assert not WecomOutbox.objects.exists()


def test_drain_sends_the_final_state_once_per_relationship(world, wecom):
    a = Customer.objects.get(external_userid="wmA")
    tagging_services.assign_tags([a], [tag("高"), tag("中")], actor=None, source="api")
    tagging_services.unassign_tags([a], [tag("中")], actor=None, source="api")
    tagging_services.assign_tags([a], [tag("低")], actor=None, source="api")
    assert WecomOutbox.objects.count() == 6
    counts = outbox.drain(wecom)
    assert counts == {"sent": 2, "unchanged": 0, "retried": 0, "dead": 0}
    calls = world.calls("externalcontact/mark_tag")
    assert len(calls) == 2  # one call per relationship, not per change
    assert {tuple(sorted(c.body["add_tag"])) for c in calls} == {
        tuple(sorted([world.tag_id("意向", "高"), world.tag_id("意向", "低")]))
    }
    assert world.relation_tags("lisi", "wmA") == {
        world.tag_id("意向", "高"),
        world.tag_id("意向", "低"),
    }
    assert not WecomOutbox.objects.filter(status=OutboxStatus.PENDING).exists()
    # Draining again sends nothing.
    assert outbox.drain(wecom)["sent"] == 0
    assert len(world.calls("externalcontact/mark_tag")) == 2


def test_removal_is_sent(world, wecom):
    a = Customer.objects.get(external_userid="wmA")
    tagging_services.assign_tags([a], [tag("高")], actor=None, source="api")
    outbox.drain(wecom)
    tagging_services.unassign_tags([a], [tag("高")], actor=None, source="api")
    outbox.drain(wecom)
    assert world.relation_tags("zhangsan", "wmA") == set()
    assert world.calls("externalcontact/mark_tag")[-1].body["remove_tag"] == [
        world.tag_id("意向", "高")
    ]


@pytest.mark.parametrize("failure", [-1, 45009, "http500", "timeout"])
def test_transient_failures_are_retried_then_delivered(world, wecom, failure):
    b = Customer.objects.get(external_userid="wmB")
    tagging_services.assign_tags([b], [tag("高")], actor=None, source="api")
    world.fail_next("externalcontact/mark_tag", failure, times=2)
    counts = outbox.drain(wecom)  # backoff 0 in tests: retried within the same drain
    assert (counts["retried"], counts["sent"]) == (2, 1)
    row = WecomOutbox.objects.get()
    assert row.status == OutboxStatus.DONE
    assert row.attempts == 2
    assert world.relation_tags("zhangsan", "wmB") == {world.tag_id("意向", "高")}
    assert len(world.calls("externalcontact/mark_tag")) == 3  # two failures, one success


def test_backoff_waits_before_the_next_attempt(world, wecom, settings):
    settings.WECOM_OUTBOX_RETRY_SECONDS = 60
    b = Customer.objects.get(external_userid="wmB")
    tagging_services.assign_tags([b], [tag("高")], actor=None, source="api")
    world.fail_next("externalcontact/mark_tag", 45009)
    assert outbox.drain(wecom) == {"sent": 0, "unchanged": 0, "retried": 1, "dead": 0}
    row = WecomOutbox.objects.get()
    assert row.status == OutboxStatus.PENDING and row.errcode == 45009
    assert 55 <= outbox.next_due_in() <= 60
    assert len(world.calls("externalcontact/mark_tag")) == 1


def test_permanent_errors_and_exhausted_retries_are_dead_letters(world, wecom, settings):
    settings.WECOM_OUTBOX_MAX_ATTEMPTS = 3
    a = Customer.objects.get(external_userid="wmA")
    tagging_services.assign_tags([a], [tag("高")], actor=None, source="api")
    world.fail_next("externalcontact/mark_tag", 84061)
    world.fail_next("externalcontact/mark_tag", -1, times=5)
    counts = outbox.drain(wecom)
    assert counts["dead"] == 2
    errcodes = sorted(WecomOutbox.objects.values_list("errcode", flat=True))
    assert errcodes == [-1, 84061]
    assert len(world.calls("externalcontact/mark_tag")) == 4  # 1 permanent + 3 attempts
    # Retry from the admin puts them back; now WeCom accepts.
    assert outbox.retry_dead(WecomOutbox.objects.values_list("pk", flat=True)) == 2
    assert outbox.drain(wecom)["sent"] == 2


def test_tag_deleted_in_wecom_while_queued_is_left_out(world, wecom):
    a = Customer.objects.get(external_userid="wmB")
    tagging_services.assign_tags([a], [tag("高"), tag("中")], actor=None, source="api")
    gone = world.tag_id("意向", "中")
    world.groups[world.group_id("意向")]["tags"].pop(gone)
    assert outbox.drain(wecom)["sent"] == 1
    assert world.relation_tags("zhangsan", "wmB") == {world.tag_id("意向", "高")}
    from wecom.models import WecomSyncIssue

    assert WecomSyncIssue.objects.get(code="deleted_in_wecom").wecom_id == gone


def test_expired_token_is_refreshed_once(world, wecom):
    b = Customer.objects.get(external_userid="wmB")
    tagging_services.assign_tags([b], [tag("高")], actor=None, source="api")
    world.expire_tokens()
    assert outbox.drain(wecom)["sent"] == 1
    assert [r.endpoint for r in world.requests] == [
        "externalcontact/mark_tag",  # 42001
        "gettoken",
        "externalcontact/mark_tag",
    ]
    assert world.requests[0].errcode == 42001


def test_token_is_shared_through_the_cache(world):
    from wecom.client import get_wecom

    get_wecom().follow_users()
    get_wecom().follow_users()
    assert not world.calls("gettoken")  # the world fixture's token is reused by new clients


def test_hook_makes_no_query_when_the_integration_is_off(db, settings, customers):
    from tests.factories import TagFactory

    settings.WECOM_CORP_ID = ""
    settings.WECOM_SECRET = ""
    t = TagFactory()
    with CaptureQueriesContext(connection) as ctx:
        outbox.on_assignments_changed([(customers[0].pk, t.pk)], [])
    assert len(ctx.captured_queries) == 0
