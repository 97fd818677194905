"""The outbound CRM webhook (docs/wecom.md#crm-webhook--crm-webhook).

Every assignment batch (one call of tagging's assignment hook) that touches a tag in an active
endpoint's groups writes, in the batch's own transaction, one :class:`WebhookDelivery` per
endpoint (split every :data:`MAX_CUSTOMERS` customers). The worker (:func:`drain`) sends each
endpoint's deliveries in order: the oldest pending one first, and nothing newer while it waits
for a retry, so a receiver never sees a removal before the addition it undoes.

A body is built once, at the first attempt, from the outbound names and the protection lock's
:func:`~wecom.services.protection.customer_data`, and stored: retries send the same bytes under
the same ``Idempotency-Key``. Each attempt is signed afresh (``X-TagDesk-Timestamp``,
``X-TagDesk-Signature: v1=hex(HMAC-SHA256(secret, "<timestamp>.<body>"))``) and checked by
:func:`~wecom.services.protection.guard`. Timeouts, connection errors, 408, 429 and 5xx are
retried with backoff; other answers (4xx, redirects) and a refusal by the lock are dead letters.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import requests
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Min
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Customer
from tagging.models import Tag, TagGroup
from wecom.models import (
    DeliveryStatus,
    OutboundName,
    WebhookDelivery,
    WebhookEndpoint,
)
from wecom.models_webhook import validate_webhook_url
from wecom.services.protection import ProtectedFieldError, customer_data, guard

logger = logging.getLogger("wecom.webhook")

MAX_CUSTOMERS = 500  # customers per delivery: a rule tagging 100,000 makes 200 POSTs, not one
MAX_RETRY_DELAY = 3600
EVENT_TAGS_CHANGED = "tags.changed"
EVENT_PING = "ping"
USER_AGENT = "TagDesk-Webhook/1"


# --- enqueueing ---------------------------------------------------------------------------------


def on_assignments_changed(added: list[tuple[int, int]], removed: list[tuple[int, int]]) -> int:
    """Behind the tagging hook (``wecom.tasks.webhook_listener``), inside the assignment
    service's transaction; returns the deliveries written. No query while
    ``CRM_WEBHOOK_ENABLED`` is off; one while no active endpoint follows the tags' groups."""
    if not settings.CRM_WEBHOOK_ENABLED:
        return 0
    tag_ids = {t for _c, t in added} | {t for _c, t in removed}
    through = WebhookEndpoint.groups.through
    followers: dict[int, set[int]] = defaultdict(set)  # tag id -> endpoint ids
    for endpoint_id, tag_id in through.objects.filter(
        webhookendpoint__active=True, taggroup__tags__in=tag_ids
    ).values_list("webhookendpoint_id", "taggroup__tags__id"):
        followers[tag_id].add(endpoint_id)
    if not followers:
        return 0
    per_endpoint: dict[int, dict[int, dict[str, list[int]]]] = defaultdict(
        lambda: defaultdict(lambda: {"added": [], "removed": []})
    )
    for kind, pairs in (("added", added), ("removed", removed)):
        for customer_id, tag_id in pairs:
            for endpoint_id in followers.get(tag_id, ()):
                per_endpoint[endpoint_id][customer_id][kind].append(tag_id)
    batch = str(uuid.uuid4())
    now = timezone.now()
    rows = []
    for endpoint_id, changes in sorted(per_endpoint.items()):
        customers = sorted(changes)
        chunks = [customers[i : i + MAX_CUSTOMERS] for i in range(0, len(customers), MAX_CUSTOMERS)]
        for part, chunk in enumerate(chunks, start=1):
            change = {
                "batch": batch,
                "part": part,
                "parts": len(chunks),
                "customers": {str(c): changes[c] for c in chunk},
            }
            rows.append(
                WebhookDelivery(
                    endpoint_id=endpoint_id, change=change, created_at=now, next_attempt_at=now
                )
            )
    WebhookDelivery.objects.bulk_create(rows, batch_size=500)
    return len(rows)


# --- the body -----------------------------------------------------------------------------------


def build_body(delivery: WebhookDelivery) -> str:
    """The JSON document of a delivery (compact, keys sorted, UTF-8 text). Tags carry their
    TagDesk id and name and their outbound ``code`` (null without a mapping); a tag deleted
    since the change has null name and code. Customers carry the protection lock's data."""
    change = delivery.change
    per_customer = change.get("customers", {})
    tag_ids = {t for c in per_customer.values() for k in ("added", "removed") for t in c[k]}
    tags = {t.pk: t for t in Tag.objects.filter(pk__in=tag_ids).select_related("group").order_by()}
    group_ids = {t.group_id for t in tags.values()}
    codes = _codes(tag_ids, group_ids)
    customers = customer_data(int(c) for c in per_customer)

    def tag_doc(tag_id: int) -> dict[str, Any]:
        tag = tags.get(tag_id)
        if tag is None:
            return {"id": tag_id, "name": None, "code": None, "group": None}
        group: TagGroup = tag.group
        return {
            "id": tag.pk,
            "name": tag.name,
            "code": codes["tag"].get(tag.pk),
            "group": {"id": group.pk, "name": group.name, "code": codes["group"].get(group.pk)},
        }

    doc = {
        "id": str(delivery.key),
        "type": EVENT_TAGS_CHANGED,
        "sequence": delivery.pk,
        "batch": change.get("batch"),
        "part": change.get("part", 1),
        "parts": change.get("parts", 1),
        "created_at": delivery.created_at.isoformat(),
        "changes": [
            {
                "customer": customers.get(int(c), {"id": int(c), "deleted": True}),
                "added": [tag_doc(t) for t in sorted(per_customer[c]["added"])],
                "removed": [tag_doc(t) for t in sorted(per_customer[c]["removed"])],
            }
            for c in sorted(per_customer, key=int)
        ],
    }
    return _dumps(doc)


def _codes(tag_ids: Iterable[int], group_ids: Iterable[int]) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {"tag": {}, "group": {}}
    rows = OutboundName.objects.filter(tag_id__in=list(tag_ids)) | OutboundName.objects.filter(
        group_id__in=list(group_ids)
    )
    for tag_id, group_id, code in rows.values_list("tag_id", "group_id", "code"):
        if tag_id is not None:
            out["tag"][tag_id] = code
        else:
            out["group"][group_id] = code
    return out


def _dumps(doc: dict) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def customer_ids_of(delivery: WebhookDelivery) -> list[int]:
    return [int(c) for c in delivery.change.get("customers", {})]


def _has_erased(customer_ids: list[int]) -> bool:
    return Customer.objects.filter(pk__in=customer_ids).count() < len(set(customer_ids))


def _vocabulary(delivery: WebhookDelivery) -> set[str]:
    """The strings of a delivery's body that are not customer data (see ``guard``'s
    ``allowed``): the current names and outbound codes of its tags and their groups, read from
    the database, and the delivery's own ids, type and time."""
    change = delivery.change
    tag_ids = {
        t for c in change.get("customers", {}).values() for k in ("added", "removed") for t in c[k]
    }
    words: set[str] = {EVENT_TAGS_CHANGED, str(delivery.key), delivery.created_at.isoformat()}
    if change.get("batch"):
        words.add(str(change["batch"]))
    group_ids: set[int] = set()
    for name, group_id, group_name in Tag.objects.filter(pk__in=tag_ids).values_list(
        "name", "group_id", "group__name"
    ):
        words.update((name, group_name))
        group_ids.add(group_id)
    for codes in _codes(tag_ids, group_ids).values():
        words.update(codes.values())
    return words


# --- signing and posting ------------------------------------------------------------------------


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 of ``b"<timestamp>." + body`` under the endpoint's secret."""
    mac = hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def headers_for(endpoint: WebhookEndpoint, key: str, event: str, body: bytes) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Idempotency-Key": key,
        "X-TagDesk-Event": event,
        "X-TagDesk-Timestamp": str(timestamp),
        "X-TagDesk-Signature": sign(endpoint.secret, timestamp, body),
    }


@dataclass
class PostResult:
    ok: bool
    transient: bool
    http_status: int | None
    error: str
    retry_after: int | None = None


def post(endpoint: WebhookEndpoint, key: str, event: str, body: str) -> PostResult:
    """One signed POST, redirects not followed; the URL is checked again first (the host's
    address may have changed since it was saved)."""
    try:
        validate_webhook_url(endpoint.url)
    except ValidationError as exc:
        return PostResult(False, False, None, " ".join(exc.messages))
    raw = body.encode()
    try:
        response = requests.post(
            endpoint.url,
            data=raw,
            headers=headers_for(endpoint, key, event, raw),
            timeout=settings.CRM_WEBHOOK_TIMEOUT,
            allow_redirects=False,
            stream=True,  # only the status is read: a receiver's huge answer stays unread
        )
    except requests.Timeout:
        return PostResult(False, True, None, _("The receiver did not answer in time."))
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        return PostResult(
            False, True, None, _("Cannot connect to the receiver: %(error)s") % {"error": exc}
        )
    except requests.RequestException as exc:  # an invalid URL and the like: no retry helps
        return PostResult(False, False, None, str(exc))
    status = response.status_code
    response.close()
    if 200 <= status < 300:
        return PostResult(True, False, status, "")
    transient = status in {408, 429} or status >= 500
    return PostResult(
        False,
        transient,
        status,
        _("The receiver answered HTTP %(status)d.") % {"status": status},
        _retry_after(response.headers.get("Retry-After")),
    )


def _retry_after(value: str | None) -> int | None:
    """Retry-After in seconds (an HTTP date or anything else is ignored)."""
    value = (value or "").strip()
    if value.isascii() and value.isdigit():  # not "²" or "٣", which isdigit() also accepts
        return min(int(value), MAX_RETRY_DELAY)
    return None


def send_ping(endpoint: WebhookEndpoint) -> PostResult:
    """A signed ``ping`` (no customer data), sent now and not recorded: the admin's test."""
    key = str(uuid.uuid4())
    body = _dumps(
        {"id": key, "type": EVENT_PING, "created_at": timezone.now().isoformat(), "changes": []}
    )
    guard(json.loads(body), [])
    return post(endpoint, key, EVENT_PING, body)


# --- draining -----------------------------------------------------------------------------------


def drain(*, deadline: float | None = None) -> dict[str, int]:
    """Send every due delivery, each endpoint's in order; returns counts (sent, retried, dead).
    Stops at ``deadline`` (a ``time.monotonic()`` value) if given. Safe in many workers: an
    endpoint is sent to by one worker at a time (its row is locked while a POST is under way)."""
    counts = {"sent": 0, "retried": 0, "dead": 0}
    while deadline is None or time.monotonic() < deadline:
        endpoint_ids = list(
            WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, endpoint__active=True)
            .order_by()
            .values_list("endpoint_id", flat=True)
            .distinct()
        )
        progressed = False
        for endpoint_id in endpoint_ids:
            outcome = _send_head(endpoint_id)
            if outcome is not None:
                counts[outcome] += 1
                progressed = True
        if not progressed:
            break
    return counts


def next_due_in() -> float | None:
    """Seconds until the next head of an active endpoint's queue is due (None: nothing)."""
    heads = (
        WebhookDelivery.objects.filter(status=DeliveryStatus.PENDING, endpoint__active=True)
        .values("endpoint_id")
        .annotate(head=Min("id"))
        .values_list("head", flat=True)
    )
    due = WebhookDelivery.objects.filter(pk__in=list(heads)).aggregate(due=Min("next_attempt_at"))
    if due["due"] is None:
        return None
    return max((due["due"] - timezone.now()).total_seconds(), 0.0)


def _send_head(endpoint_id: int) -> str | None:
    with transaction.atomic():
        endpoint = (
            WebhookEndpoint.objects.select_for_update(skip_locked=True)
            .filter(pk=endpoint_id, active=True)
            .first()
        )
        if endpoint is None:
            return None  # another worker is sending to it, or it was switched off
        head = (
            WebhookDelivery.objects.select_for_update()
            .filter(endpoint=endpoint, status=DeliveryStatus.PENDING)
            .order_by("id")
            .first()
        )
        if head is None or head.next_attempt_at > timezone.now():
            return None  # the head waits for its retry; later ones wait behind it
        return _attempt(endpoint, head)


def _attempt(endpoint: WebhookEndpoint, delivery: WebhookDelivery) -> str:
    customer_ids = customer_ids_of(delivery)
    if not delivery.body or _has_erased(customer_ids):
        # A customer erased since the body was frozen leaves it: the retry names them by
        # TagDesk id only, as a body built after the erasure would.
        delivery.body = build_body(delivery)
    delivery.attempts += 1
    try:
        guard(json.loads(delivery.body), customer_ids, allowed=_vocabulary(delivery))
    except ProtectedFieldError as exc:
        logger.error("webhook delivery %s refused by the protection lock", delivery.pk)
        return _finish(delivery, DeliveryStatus.DEAD, None, str(exc))
    result = post(endpoint, str(delivery.key), EVENT_TAGS_CHANGED, delivery.body)
    if result.ok:
        return _finish(delivery, DeliveryStatus.DONE, result.http_status, "")
    if result.transient and delivery.attempts < settings.CRM_WEBHOOK_MAX_ATTEMPTS:
        delay = settings.CRM_WEBHOOK_RETRY_SECONDS * 2 ** (delivery.attempts - 1)
        if result.retry_after is not None:
            delay = max(delay, result.retry_after)
        delivery.next_attempt_at = timezone.now() + timedelta(seconds=min(delay, MAX_RETRY_DELAY))
        delivery.http_status = result.http_status
        delivery.error = result.error[:255]
        delivery.save()
        return "retried"
    return _finish(delivery, DeliveryStatus.DEAD, result.http_status, result.error)


def _finish(delivery: WebhookDelivery, status: str, http_status: int | None, error: str) -> str:
    delivery.status = status
    delivery.http_status = http_status
    delivery.error = error[:255]
    delivery.finished_at = timezone.now()
    delivery.save()
    return "sent" if status == DeliveryStatus.DONE else "dead"


# --- dead letters -------------------------------------------------------------------------------


@transaction.atomic
def retry_dead(ids: Iterable[int]) -> int:
    """Put dead letters back in their endpoint's queue (admin action); returns how many. The
    body and key stay: the receiver recognises a delivery it may have half-processed."""
    return WebhookDelivery.objects.filter(pk__in=list(ids), status=DeliveryStatus.DEAD).update(
        status=DeliveryStatus.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        finished_at=None,
    )
