"""The outbound CRM webhook: one signed delivery per tag-change batch and endpoint, in the
batch's transaction; outbound names applied; retries on 5xx/429/timeouts with the same body and
idempotency key; dead letters on 4xx; per-endpoint order; the lock; refusals of bad config."""

from __future__ import annotations

import json

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tagging import services as tagging_services
from tests.factories import CustomerFactory, FollowerFactory, TagFactory, TagGroupFactory
from tests.wecom.fake_receiver import verify
from wecom.models import DeliveryStatus, OutboundName, WebhookDelivery, WebhookEndpoint
from wecom.services import protection, webhook

pytestmark = pytest.mark.django_db


def assign(customers, tags):
    return tagging_services.assign_tags(customers, tags, actor=None, source="api")


def test_one_signed_delivery_per_batch_with_outbound_names(receiver, endpoint, level):
    OutboundName.objects.create(tag=level["gold"], code="VIP01")
    OutboundName.objects.create(group=level["group"], code="LEVEL")
    a, b = CustomerFactory(remark="老客户"), CustomerFactory()
    assign([a, b], [level["gold"], level["silver"]])
    delivery = WebhookDelivery.objects.get()  # one batch, one endpoint: one delivery
    with pytest.raises(RuntimeError), transaction.atomic():
        assign([a], [TagFactory(group=level["group"])])
        raise RuntimeError
    assert WebhookDelivery.objects.count() == 1  # the rolled-back batch left no delivery

    assert webhook.drain() == {"sent": 1, "retried": 0, "dead": 0}
    (request,) = receiver.requests
    assert request.verified
    assert request.headers["Idempotency-Key"] == str(delivery.key)
    assert request.headers["X-TagDesk-Event"] == "tags.changed"
    doc = request.json
    assert (doc["id"], doc["type"], doc["part"], doc["parts"]) == (
        str(delivery.key),
        "tags.changed",
        1,
        1,
    )
    assert [c["customer"] for c in doc["changes"]] == [
        {"id": a.pk, "external_userid": a.external_userid},
        {"id": b.pk, "external_userid": b.external_userid},
    ]
    added = doc["changes"][0]["added"]
    assert {t["name"]: t["code"] for t in added} == {"黄金会员": "VIP01", "白银会员": None}
    assert added[0]["group"] == {"id": level["group"].pk, "name": "会员等级", "code": "LEVEL"}
    assert doc["changes"][0]["removed"] == []
    delivery.refresh_from_db()
    assert (delivery.status, delivery.http_status, delivery.attempts) == (
        DeliveryStatus.DONE,
        200,
        1,
    )
    assert webhook.drain()["sent"] == 0  # nothing twice


def test_removals_are_sent(receiver, endpoint, level):
    a = CustomerFactory()
    assign([a], [level["gold"]])
    tagging_services.unassign_tags([a], [level["gold"]], actor=None, source="api")
    webhook.drain()
    assert [r.json["changes"][0]["removed"] for r in receiver.requests][1][0]["id"] == level[
        "gold"
    ].pk


def test_nothing_is_sent_for_groups_not_configured(receiver, endpoint, level):
    other = TagFactory(group=TagGroupFactory(name="来源"), name="官网")
    a = CustomerFactory()
    assign([a], [other])
    assert not WebhookDelivery.objects.exists()
    assign([a], [other, level["gold"]])  # already has 官网: only 黄金会员 is a change
    tagging_services.unassign_tags([a], [other], actor=None, source="api")
    webhook.drain()
    assert len(receiver.requests) == 1
    changes = receiver.requests[0].json["changes"]
    assert [t["name"] for t in changes[0]["added"]] == ["黄金会员"]


def test_inactive_endpoints_get_nothing(receiver, endpoint, level):
    endpoint.active = False
    endpoint.save()
    assign([CustomerFactory()], [level["gold"]])
    assert not WebhookDelivery.objects.exists()


def test_each_endpoint_gets_its_own_delivery(receiver, endpoint, level):
    second = WebhookEndpoint.objects.create(
        name="BI", url=receiver.url + "2", secret=receiver.secret
    )
    second.groups.add(level["group"])
    assign([CustomerFactory()], [level["gold"]])
    webhook.drain()
    assert sorted(r.path for r in receiver.requests) == ["/hook", "/hook2"]
    assert len({r.headers["Idempotency-Key"] for r in receiver.requests}) == 2


def test_big_batches_are_split(receiver, endpoint, level, monkeypatch):
    monkeypatch.setattr(webhook, "MAX_CUSTOMERS", 2)
    assign([CustomerFactory() for _ in range(5)], [level["gold"]])
    webhook.drain()
    docs = sorted((r.json for r in receiver.requests), key=lambda d: d["part"])
    assert [(d["part"], d["parts"], len(d["changes"])) for d in docs] == [
        (1, 3, 2),
        (2, 3, 2),
        (3, 3, 1),
    ]
    assert len({d["batch"] for d in docs}) == 1


@pytest.mark.parametrize("failure", [500, 503, 429, 408, "timeout"])
def test_transient_failures_are_retried_with_the_same_body_and_key(
    receiver, endpoint, level, failure
):
    if failure == "timeout":
        receiver.answer(200, times=2, delay=1.0)  # the client gives up after 0.5 s
    else:
        receiver.answer(failure, times=2)
    assign([CustomerFactory()], [level["gold"]])
    assert webhook.drain() == {"sent": 1, "retried": 2, "dead": 0}
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1
    assert len({r.headers["Idempotency-Key"] for r in receiver.requests}) == 1
    assert all(r.verified for r in receiver.requests)
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.DONE, 3)


def test_backoff_holds_the_endpoint_queue_in_order(receiver, endpoint, level, settings):
    settings.CRM_WEBHOOK_RETRY_SECONDS = 60
    receiver.answer(500)
    a = CustomerFactory()
    assign([a], [level["gold"]])
    tagging_services.unassign_tags([a], [level["gold"]], actor=None, source="api")
    assert webhook.drain() == {"sent": 0, "retried": 1, "dead": 0}
    assert len(receiver.requests) == 1  # the removal waits behind the addition
    assert 55 <= webhook.next_due_in() <= 60
    first = WebhookDelivery.objects.order_by("id").first()
    assert (first.status, first.http_status, first.error) == (
        DeliveryStatus.PENDING,
        500,
        "The receiver answered HTTP 500.",
    )


def test_retry_after_is_honoured(receiver, endpoint, level):
    receiver.script.append((429, 0.0))
    assign([CustomerFactory()], [level["gold"]])

    import requests

    real_post = requests.post

    def post_with_header(*args, **kwargs):
        response = real_post(*args, **kwargs)
        if response.status_code == 429:
            response.headers["Retry-After"] = "120"
        return response

    import unittest.mock

    with unittest.mock.patch("requests.post", post_with_header):
        webhook.drain()
    assert 115 <= webhook.next_due_in() <= 120


def test_client_errors_are_dead_letters_and_can_be_retried(receiver, endpoint, level):
    receiver.answer(400)
    assign([CustomerFactory()], [level["gold"]])
    assert webhook.drain() == {"sent": 0, "retried": 0, "dead": 1}
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.http_status) == (DeliveryStatus.DEAD, 400)
    assert webhook.retry_dead([delivery.pk]) == 1
    assert webhook.drain()["sent"] == 1
    first, second = receiver.requests
    assert first.body == second.body
    assert first.headers["Idempotency-Key"] == second.headers["Idempotency-Key"]


def test_exhausted_retries_are_dead_letters(receiver, endpoint, level, settings):
    settings.CRM_WEBHOOK_MAX_ATTEMPTS = 2
    receiver.answer(502, times=5)
    assign([CustomerFactory()], [level["gold"]])
    assert webhook.drain() == {"sent": 0, "retried": 1, "dead": 1}
    assert WebhookDelivery.objects.get().error == "The receiver answered HTTP 502."


def test_connection_refused_is_retried(receiver, endpoint, level, settings):
    settings.CRM_WEBHOOK_MAX_ATTEMPTS = 2
    receiver.stop()
    assign([CustomerFactory()], [level["gold"]])
    assert webhook.drain() == {"sent": 0, "retried": 1, "dead": 1}
    assert "Cannot connect" in WebhookDelivery.objects.get().error
    receiver.start()  # for the fixture's stop


def test_redirects_are_not_followed(receiver, endpoint, level):
    receiver.answer(302)
    assign([CustomerFactory()], [level["gold"]])
    assert webhook.drain()["dead"] == 1


# --- the protection lock ---------------------------------------------------------------------


def test_the_lock_keeps_personal_fields_out_by_default(receiver, endpoint, level):
    a = CustomerFactory(name="张秘密", remark="VIP老客户备注", company="神秘公司", source="官网")
    FollowerFactory(customer=a, remark="跟进备注秘密")
    assign([a], [level["gold"]])
    webhook.drain()
    body = receiver.requests[0].body.decode()
    for secret in [
        "张秘密",
        "VIP老客户备注",
        "神秘公司",
        a.phone,
        a.phone[3:],
        "跟进备注秘密",
        "官网",
    ]:
        assert secret not in body
    assert receiver.requests[0].json["changes"][0]["customer"] == {
        "id": a.pk,
        "external_userid": a.external_userid,
    }


def test_released_fields_are_sent_and_locked_ones_still_are_not(receiver, endpoint, level):
    a = CustomerFactory(name="王五", company="某公司")
    FollowerFactory(customer=a, remark="老朋友")
    locked = [
        f for f in protection.LOCKABLE_FIELDS if f not in {"name", "company", "follower_remarks"}
    ]
    protection.set_locked_fields(locked, actor=None)
    assign([a], [level["gold"]])
    webhook.drain()
    customer = receiver.requests[0].json["changes"][0]["customer"]
    assert customer == {
        "id": a.pk,
        "external_userid": a.external_userid,
        "name": "王五",
        "company": "某公司",
        "follower_remarks": ["老朋友"],
    }


def test_a_body_carrying_a_locked_value_is_refused_and_never_sent(
    receiver, endpoint, level, monkeypatch
):
    a = CustomerFactory()

    def leaky(ids):  # a future code path that forgets the builder
        return {c: {"id": c, "mobile": a.phone} for c in ids}

    monkeypatch.setattr(webhook, "customer_data", leaky)
    assign([a], [level["gold"]])
    assert webhook.drain() == {"sent": 0, "retried": 0, "dead": 1}
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == DeliveryStatus.DEAD
    assert "protection lock" in delivery.error and "mobile phone" in delivery.error
    assert receiver.requests == []


def test_locking_a_field_after_enqueueing_stops_a_frozen_body(receiver, endpoint, level, settings):
    settings.CRM_WEBHOOK_MAX_ATTEMPTS = 1  # the 500 below makes a dead letter at once
    a = CustomerFactory(name="赵六六六")
    protection.set_locked_fields([f for f in protection.LOCKABLE_FIELDS if f != "name"], actor=None)
    receiver.answer(500)
    assign([a], [level["gold"]])
    webhook.drain()
    assert "赵六六六" in receiver.requests[0].body.decode()
    protection.set_locked_fields(list(protection.LOCKABLE_FIELDS), actor=None)
    webhook.retry_dead(WebhookDelivery.objects.values_list("pk", flat=True))
    assert webhook.drain()["dead"] == 1
    assert len(receiver.requests) == 1  # the frozen body names a field locked since
    assert "protection lock" in WebhookDelivery.objects.get().error


def test_a_tag_named_like_a_locked_value_is_still_delivered(receiver, endpoint, level):
    """Tag and group names and outbound codes are TagDesk's vocabulary, not customer data: a
    rule that tags customers from 官网 with 官网 must not turn every delivery into a dead letter."""
    official = TagFactory(group=level["group"], name="官网")
    OutboundName.objects.create(tag=official, code="官网渠道客户")
    a = CustomerFactory(source="官网", company="官网渠道客户", attributes={"name": "钻石卡会员"})
    assign([a], [official])
    assert webhook.drain() == {"sent": 1, "retried": 0, "dead": 0}
    (change,) = receiver.requests[0].json["changes"]
    assert change["customer"] == {"id": a.pk, "external_userid": a.external_userid}
    assert (change["added"][0]["name"], change["added"][0]["code"]) == ("官网", "官网渠道客户")
    # the exemption covers the vocabulary only: the same values anywhere else are refused
    for leak in ["官网", "官网渠道客户", "钻石卡会员"]:
        with pytest.raises(protection.ProtectedFieldError):
            protection.guard({"note": leak}, [a.pk])


def test_attribute_keys_are_not_secrets(receiver, endpoint, level):
    a = CustomerFactory(attributes={"name": "甲", "group": "乙", "city": "上海"})
    assign([a], [level["gold"]])
    assert webhook.drain()["sent"] == 1  # the body's own keys "name" and "group" are no leak
    with pytest.raises(protection.ProtectedFieldError, match="attributes"):
        protection.guard({"x": "上海"}, [a.pk])


def test_a_customer_erased_before_the_retry_leaves_the_frozen_body(
    receiver, endpoint, level, tag_admin, settings
):
    from customers.services import erase_customers

    settings.CRM_WEBHOOK_RETRY_SECONDS = 60
    protection.set_locked_fields([f for f in protection.LOCKABLE_FIELDS if f != "name"], actor=None)
    a, b = CustomerFactory(name="将被删除"), CustomerFactory(name="留下的人")
    receiver.answer(503)
    assign([a, b], [level["gold"]])
    assert webhook.drain() == {"sent": 0, "retried": 1, "dead": 0}
    assert "将被删除" in receiver.requests[0].body.decode()
    external = a.external_userid
    erase_customers([a.pk], actor=tag_admin, reason="PIPL request")
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())  # the retry is due
    assert webhook.drain()["sent"] == 1
    retry = receiver.requests[1]
    assert "将被删除" not in retry.body.decode() and external not in retry.body.decode()
    assert [c["customer"] for c in retry.json["changes"]] == [
        {"id": a.pk, "deleted": True},
        {"id": b.pk, "external_userid": b.external_userid, "name": "留下的人"},
    ]
    assert retry.headers["Idempotency-Key"] == receiver.requests[0].headers["Idempotency-Key"]


def test_the_url_check_never_raises_anything_but_a_validation_error():
    from wecom.models_webhook import validate_webhook_url

    for url in ["http://[::1/x", "http://[zz]/", "http://h:99999/", "http://" + "a" * 70 + ".com/"]:
        with pytest.raises(ValidationError):
            validate_webhook_url(url)


def test_unknown_fields_cannot_be_locked():
    from tagging.errors import TaggingError

    with pytest.raises(TaggingError, match="Unknown customer field: password"):
        protection.set_locked_fields(["password"], actor=None)


# --- configuration ----------------------------------------------------------------------------


def test_a_delivery_costs_the_same_queries_for_3_or_30_customers(receiver, endpoint, level):
    protection.set_locked_fields(["phone"], actor=None)  # followers' remarks read too

    def queries_for(n):
        customers = [CustomerFactory() for _ in range(n)]
        for customer in customers:
            FollowerFactory(customer=customer, remark="备注")
        assign(customers, [level["gold"], level["silver"]])
        with CaptureQueriesContext(connection) as ctx:
            assert webhook.drain()["sent"] == 1
        tagging_services.unassign_tags(
            customers, [level["gold"], level["silver"]], actor=None, source="api"
        )
        webhook.drain()
        return len(ctx.captured_queries)

    few, many = queries_for(3), queries_for(30)
    assert few == many <= 16, (few, many)


def test_hook_makes_no_query_while_webhooks_are_off(settings, level):
    settings.CRM_WEBHOOK_ENABLED = False
    with CaptureQueriesContext(connection) as ctx:
        webhook.on_assignments_changed([(1, level["gold"].pk)], [])
    assert len(ctx.captured_queries) == 0


def test_hook_makes_one_query_when_no_endpoint_follows_the_tags(settings, level):
    settings.CRM_WEBHOOK_ENABLED = True
    with CaptureQueriesContext(connection) as ctx:
        assert webhook.on_assignments_changed([(1, level["gold"].pk)], []) == 0
    assert len(ctx.captured_queries) == 1


def test_queued_deliveries_wait_while_webhooks_are_off(receiver, endpoint, level, settings):
    from wecom.tasks import drain_webhooks

    assign([CustomerFactory()], [level["gold"]])
    settings.CRM_WEBHOOK_ENABLED = False
    assert drain_webhooks() is None
    assert receiver.requests == []
    settings.CRM_WEBHOOK_ENABLED = True
    assert drain_webhooks() == {"sent": 1, "retried": 0, "dead": 0}


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("120", 120),
        (" 7 ", 7),
        ("99999999", 3600),
        ("\u00b2", None),
        ("\u0663", None),
        ("Wed, 21 Oct 2026 07:28:00 GMT", None),
        ("", None),
        (None, None),
        ("-5", None),
    ],
)
def test_retry_after_values(header, seconds):
    assert webhook._retry_after(header) == seconds


def endpoint_errors(**fields):
    ep = WebhookEndpoint(name="x", **fields)
    try:
        ep.full_clean(exclude=["groups"])
    except ValidationError as exc:
        return exc.message_dict
    return {}


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://127.0.0.1/hook", "Enter an http:// or https:// URL with a host."),
        ("javascript:alert(1)", "Enter a valid URL."),
        ("http://user:pw@127.0.0.1/hook", "Put no user name or password in the URL"),
        ("http://0.0.0.0/hook", "0.0.0.0 cannot receive webhooks."),
        ("http://[::1/hook", "Enter a valid URL."),
        ("http://127.0.0.1:99999/hook", "cannot be resolved"),
    ],
)
def test_bad_urls_are_refused(settings, url, message):
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = True
    errors = endpoint_errors(url=url)
    assert any(message in m for m in errors["url"]), errors


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hook",
        "https://10.1.2.3/hook",
        "http://169.254.169.254/latest",
        "http://[::1]/x",
        "http://localhost/x",
    ],
)
def test_internal_addresses_are_refused_unless_allowed(settings, url):
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = False
    (message,) = endpoint_errors(url=url)["url"]
    assert "resolves to the internal address" in message
    assert "CRM_WEBHOOK_ALLOW_PRIVATE=true" in message
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = True
    assert endpoint_errors(url=url) == {}


def test_an_endpoint_turned_internal_after_saving_gets_a_dead_letter(
    receiver, endpoint, level, settings
):
    assign([CustomerFactory()], [level["gold"]])
    settings.CRM_WEBHOOK_ALLOW_PRIVATE = False
    assert webhook.drain()["dead"] == 1
    assert "internal address" in WebhookDelivery.objects.get().error
    assert receiver.requests == []


def test_short_secrets_and_duplicate_names_are_refused(receiver, endpoint):
    errors = endpoint_errors(url=receiver.url, secret="short")
    assert errors["secret"] == ["The signing secret needs at least 16 characters."]
    dup = WebhookEndpoint(name="CRM", url=receiver.url)
    with pytest.raises(ValidationError, match="already exists"):
        dup.full_clean(exclude=["groups"])


def test_outbound_names_are_validated(level):
    OutboundName.objects.create(tag=level["gold"], code="VIP01")

    def errors(**fields):
        try:
            OutboundName(**fields).full_clean()
        except ValidationError as exc:
            return exc.messages
        return []

    assert errors(tag=level["silver"], code="VIP01") == [
        "Another tag already has this outbound name."
    ]
    assert errors(group=level["group"], code="VIP01") == []  # tags and groups are separate lists
    assert errors(tag=level["silver"], group=level["group"], code="X") == [
        "Choose either a tag or a tag group, not both."
    ]
    assert errors(code="X") == ["Choose either a tag or a tag group, not both."]
    assert errors(tag=level["silver"], code="V" * 65) == [
        "Ensure this value has at most 64 characters (it has 65)."
    ]
    assert errors(tag=level["silver"], code=" VIP") == [
        "An outbound name may not be empty or start or end with a space."
    ]
    assert errors(tag=level["silver"], code="VIP\x00") == [
        "An outbound name may not contain control characters."
    ]
    assert "Outbound name with this Tag already exists." in errors(tag=level["gold"], code="VIP02")


def test_ping_is_signed_and_carries_no_customer(receiver, endpoint):
    result = webhook.send_ping(endpoint)
    assert (result.ok, result.http_status) == (True, 200)
    (request,) = receiver.requests
    assert request.verified and request.json["type"] == "ping"
    assert request.headers["X-TagDesk-Event"] == "ping"


def test_the_documented_receiver_check_refuses_tampering_and_replays(receiver, endpoint):
    webhook.send_ping(endpoint)
    (request,) = receiver.requests
    assert not verify("another-secret-123", request.headers, request.body)
    assert not verify(receiver.secret, request.headers, request.body + b" ")
    later = int(request.headers["X-TagDesk-Timestamp"]) + 301
    assert not verify(receiver.secret, request.headers, request.body, now=later)
    assert json.loads(request.body)["changes"] == []
