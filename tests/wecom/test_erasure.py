"""Erasing customers (PIPL right to deletion) reaches the WeCom app's copies: CRM webhook
deliveries (finished and queued) keep no identifier of them and a queued one is still sent, as
a deletion; group chat members, callbacks and sync issues of them go or are redacted; outbox
rows cascade; a failing listener rolls the whole erasure back; the listener's queries do not
grow with the deliveries."""

from __future__ import annotations

import json

import pytest
from django.apps import apps
from django.core import serializers
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from customers import hooks
from customers.models import Customer
from customers.services import ERASED, erase_customers
from tagging import services as tagging_services
from tests.factories import CustomerFactory, FollowerFactory
from wecom.models import (
    CallbackStatus,
    DeliveryStatus,
    GroupChat,
    GroupChatMember,
    WebhookDelivery,
    WecomCallbackEvent,
    WecomOutbox,
    WecomSyncIssue,
)
from wecom.services import erasure, protection, webhook

pytestmark = pytest.mark.django_db


def assign(customers, tags):
    return tagging_services.assign_tags(customers, tags, actor=None, source="api")


def wecom_dump() -> str:
    """Every row of every wecom table, as text: what an erased identifier must not be in."""
    return "".join(
        serializers.serialize("json", model._default_manager.all())
        for model in apps.get_app_config("wecom").get_models()
    )


def secrets_of(customer: Customer) -> list[str]:
    phone = customer.phone or ""
    return [s for s in [customer.external_userid, phone, phone[3:], customer.name] if s]


@pytest.fixture
def released():
    """name, phone and followers' remarks may leave TagDesk: bodies carry them."""
    keep = {"name", "phone", "follower_remarks"}
    protection.set_locked_fields(
        [f for f in protection.LOCKABLE_FIELDS if f not in keep], actor=None
    )


def test_finished_and_queued_deliveries_keep_no_identifier_and_the_queue_sends_a_deletion(
    receiver, endpoint, level, tag_admin, settings, released
):
    settings.CRM_WEBHOOK_RETRY_SECONDS = 60
    a, b = CustomerFactory(name="将被删除"), CustomerFactory(name="留下的人")
    FollowerFactory(customer=a, remark="老客户秘密备注")
    assign([a, b], [level["gold"]])
    tagging_services.unassign_tags([b], [level["gold"]], actor=None, source="api")
    assert webhook.drain()["sent"] == 2  # both finished, one naming a
    receiver.answer(503)
    assign([a, b], [level["silver"]])  # queued: attempted once, body frozen with a's data
    # Queued behind it: never attempted, no body yet.
    tagging_services.unassign_tags([a], [level["gold"]], actor=None, source="api")
    assert webhook.drain() == {"sent": 0, "retried": 1, "dead": 0}
    frozen = WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING).order_by("pk")
    assert [bool(d.body) for d in frozen] == [True, False]
    assert "将被删除" in frozen[0].body and a.external_userid in frozen[0].body
    only_b = WebhookDelivery.objects.filter(status=DeliveryStatus.DONE).order_by("pk")[1]
    only_b_body = only_b.body
    assert str(a.pk) not in only_b.change["customers"]

    chat = GroupChat.objects.create(chat_id="wrChat1", name="客户群")
    GroupChatMember.objects.create(
        chat=chat, userid=a.external_userid, kind=2, name=a.name, customer=a
    )
    GroupChatMember.objects.create(chat=chat, userid=b.external_userid, kind=2, customer=b)
    WecomCallbackEvent.objects.create(
        dedupe_key="k1",
        event="change_external_contact",
        change_type="edit_external_contact",
        payload={"ExternalUserID": a.external_userid, "UserID": "zhangsan"},
    )
    WecomSyncIssue.objects.create(
        kind="contact", wecom_id=a.external_userid, code="x", message="name too long"
    )
    WecomOutbox.objects.create(userid="zhangsan", external_userid=a.external_userid, customer=a)

    erase_customers([a.pk], actor=tag_admin, reason="PIPL request")

    dump = wecom_dump()
    for secret in [*secrets_of(a), "老客户秘密备注"]:
        assert secret not in dump, secret
    assert b.external_userid in dump
    only_b.refresh_from_db()
    assert only_b.body == only_b_body  # another customer's delivery: byte for byte
    first = WebhookDelivery.objects.filter(status=DeliveryStatus.DONE).order_by("pk")[0]
    customers = {c["customer"]["id"]: c["customer"] for c in json.loads(first.body)["changes"]}
    assert customers[a.pk] == {
        "id": a.pk,
        "external_userid": ERASED,
        "name": ERASED,
        "phone": ERASED,
        "follower_remarks": ERASED,
    }
    assert customers[b.pk]["name"] == "留下的人"
    assert list(GroupChatMember.objects.values_list("userid", flat=True)) == [b.external_userid]
    assert not WecomOutbox.objects.exists()  # cascaded: the outbox drain never meets it
    assert not WecomSyncIssue.objects.exists()
    event = WecomCallbackEvent.objects.get()
    assert event.status == CallbackStatus.IGNORED
    assert event.payload == {"ExternalUserID": ERASED, "UserID": "zhangsan"}

    receiver.answer(200)
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    assert webhook.drain() == {"sent": 2, "retried": 0, "dead": 0}
    retry, removal = receiver.requests[-2:]
    assert retry.headers["Idempotency-Key"] == receiver.requests[-3].headers["Idempotency-Key"]
    assert [c["customer"] for c in retry.json["changes"]] == [
        {"id": a.pk, "deleted": True},
        {"id": b.pk, "external_userid": b.external_userid, "name": "留下的人", "phone": b.phone}
        | {"follower_remarks": []},
    ]
    assert [c["customer"] for c in removal.json["changes"]] == [{"id": a.pk, "deleted": True}]
    for request in (retry, removal):
        for secret in secrets_of(a):
            assert secret not in request.body.decode()
    for secret in secrets_of(a):
        assert secret not in wecom_dump()


def test_a_failing_listener_rolls_the_whole_erasure_back(
    receiver, endpoint, level, tag_admin, monkeypatch, released
):
    a = CustomerFactory(name="还在")
    assign([a], [level["gold"]])
    webhook.drain()
    body = WebhookDelivery.objects.get().body
    chat = GroupChat.objects.create(chat_id="wrChat1")
    GroupChatMember.objects.create(chat=chat, userid=a.external_userid, kind=2, customer=a)

    def boom(ids):
        raise RuntimeError("listener down")

    # After the wecom listener: its redaction ran and must be undone too.
    monkeypatch.setattr(hooks, "_erasure_listeners", [*hooks._erasure_listeners, boom])
    with pytest.raises(RuntimeError):
        erase_customers([a.pk], actor=tag_admin, reason="PIPL request")
    assert Customer.objects.filter(pk=a.pk).exists()
    assert WebhookDelivery.objects.get().body == body
    assert GroupChatMember.objects.get().customer_id == a.pk


def test_the_listener_costs_the_same_queries_for_2_or_20_deliveries(endpoint, level):
    others = [CustomerFactory() for _ in range(3)]

    def queries_for(n):
        gone = CustomerFactory()
        for customer in [gone] * n + others * n:
            WebhookDelivery.objects.create(
                endpoint=endpoint,
                change={"customers": {str(customer.pk): {"added": [1], "removed": []}}},
                body=json.dumps(
                    {"changes": [{"customer": {"id": customer.pk, "external_userid": "wmX"}}]}
                ),
            )
        with CaptureQueriesContext(connection) as ctx:
            erasure.on_customers_erased([gone.pk])
        mentioning = WebhookDelivery.objects.filter(body__contains=ERASED).count()
        WebhookDelivery.objects.all().delete()
        return len(ctx.captured_queries), mentioning

    (few, rewritten_few), (many, rewritten_many) = queries_for(2), queries_for(20)
    assert (rewritten_few, rewritten_many) == (2, 20)
    assert few == many <= 8, (few, many)


def test_deliveries_beyond_one_chunk_are_all_redacted(endpoint, monkeypatch):
    monkeypatch.setattr(erasure, "CHUNK", 3)
    gone, other = CustomerFactory(), CustomerFactory()

    def delivery(*customers):
        return WebhookDelivery.objects.create(
            endpoint=endpoint,
            change={"customers": {str(c.pk): {"added": [1], "removed": []} for c in customers}},
            body=json.dumps(
                {
                    "changes": [
                        {"customer": {"id": c.pk, "external_userid": c.external_userid}}
                        for c in customers
                    ]
                }
            ),
        )

    naming = [delivery(gone, other) for _ in range(7)]
    untouched = delivery(other)
    before = untouched.body
    assert erasure.redact_deliveries([gone.pk]) == 7
    for row in naming:
        row.refresh_from_db()
        customers = {c["customer"]["id"]: c["customer"] for c in json.loads(row.body)["changes"]}
        assert customers[gone.pk]["external_userid"] == ERASED
        assert customers[other.pk]["external_userid"] == other.external_userid
    untouched.refresh_from_db()
    assert untouched.body == before


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the GIN index is PostgreSQL's")
def test_the_erasure_finds_its_deliveries_through_the_customers_index(endpoint):
    """20,200 deliveries of 10 customers each (other customers by ids no row has), 200 naming
    the erased one: the plan reads the index of wecom 0005, not the table."""
    gone = CustomerFactory()
    # Written by SQL: 20,200 ORM objects take the test 15 s.
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO wecom_webhookdelivery
                (endpoint_id, key, change, body, status, attempts, error, next_attempt_at,
                 created_at)
            SELECT %(endpoint)s, gen_random_uuid(),
                   jsonb_build_object('customers', (
                       SELECT jsonb_object_agg(
                           CASE WHEN i > 20000 AND j = 0 THEN %(gone)s ELSE 100000 + (i + j) %% 5000 END,
                           '{"added": [1], "removed": []}'::jsonb)
                       FROM generate_series(0, 9) j)),
                   repeat('{"changes": [{"customer": {"id": 1}}]}', 20), 'done', 1, '', now(),
                   now()
            FROM generate_series(1, 20200) i
            """,
            {"endpoint": endpoint.pk, "gone": str(gone.pk)},
        )
        cursor.execute("ANALYZE wecom_webhookdelivery")
    plan = erasure.deliveries_naming([gone.pk]).values("pk").explain()
    assert "Index Scan on webhookdelivery_customers" in plan, plan
    assert "Seq Scan" not in plan, plan
    assert erasure.deliveries_naming([gone.pk]).count() == 200


def test_the_hook_makes_no_query_without_listeners(monkeypatch):
    monkeypatch.setattr(hooks, "_erasure_listeners", [])
    with CaptureQueriesContext(connection) as ctx:
        hooks.customers_erased([1, 2])
    assert ctx.captured_queries == []


def test_a_body_that_is_not_json_is_dropped():
    assert erasure._redacted_body("not json", {1}) == ERASED
    assert erasure._redacted_body('{"changes":[{"customer":{"id":2}}]}', {1}) is None
