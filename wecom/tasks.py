"""Celery tasks of the WeCom sync: each takes ids (or nothing), calls one service and records
a run row where it is a sync. All are idempotent; they do nothing while the integration is off."""

from __future__ import annotations

import time

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from wecom.client import WecomError, get_wecom, is_enabled
from wecom.models import WecomCallbackEvent
from wecom.services import callbacks, delays, outbox, runs, webhook

DRAIN_SECONDS = 50  # a drain hands over before the next minute's beat starts another
LIBRARY_LOCK = "wecom:library-lock"
STRATEGY_PUSH_KICKED = "wecom:strategy-push-kicked"
PUSH_KICK_SECONDS = 30


def assignments_listener(added, removed) -> None:
    """tagging's assignment hook (``WecomConfig.ready``): outbox rows in the change's own
    transaction, a drain after it commits. No query while the integration is off."""
    if outbox.on_assignments_changed(added, removed):
        transaction.on_commit(kick_drain)


def webhook_listener(added, removed) -> None:
    """tagging's assignment hook for the CRM webhook: deliveries in the change's own
    transaction, a drain after it commits. No query while CRM_WEBHOOK_ENABLED is off."""
    if webhook.on_assignments_changed(added, removed):
        transaction.on_commit(kick_webhooks)


def rule_assignments_listener(tag_ids, customer_ids) -> None:
    """tagging's rule hook: outbox rows for the relationships whose rule-group tags a rule run
    changed, in the run's transaction; after it commits, the strategy push when an auto tag is
    not in WeCom yet (it drains the outbox when done), else a drain. No query while the
    integration is off or WECOM_STRATEGY_ID unset."""
    from wecom.services import strategy

    rows, push = strategy.on_rule_assignments(tag_ids, customer_ids)
    if push:
        transaction.on_commit(kick_strategy_push)
    elif rows:
        transaction.on_commit(kick_drain)


def kick_strategy_push() -> None:
    # One push a few seconds is plenty: the drain asks again for every relationship it holds
    # back, and a push already queued creates every tag still missing.
    if cache.add(STRATEGY_PUSH_KICKED, 1, timeout=PUSH_KICK_SECONDS):
        push_strategy_tags.delay()


@shared_task(name="wecom.push_strategy_tags", bind=True, ignore_result=True, max_retries=20)
def push_strategy_tags(self) -> dict | None:
    """Create in the 规则组 the auto tags WeCom does not have yet (and the rest of the strategy
    push: renames, deletions), queue their relationships, then drain: what a rule run wrote of
    a new auto tag reaches WeCom without waiting for the next library sync."""
    from wecom.services import strategy

    if not is_enabled() or not strategy.enabled():
        return None
    # The library sync runs the same push: one at a time, or a tag would be created twice.
    if not cache.add(LIBRARY_LOCK, 1, timeout=600):
        raise self.retry(countdown=15)
    try:
        counts = strategy.sync_strategy_tags(get_wecom())
    except WecomError:
        raise self.retry(countdown=60) from None
    finally:
        cache.delete(LIBRARY_LOCK)
        cache.delete(STRATEGY_PUSH_KICKED)
    kick_drain()
    return counts


def kick_webhooks() -> None:
    drain_webhooks.delay()


@shared_task(name="wecom.drain_webhooks", ignore_result=True)
def drain_webhooks() -> dict | None:
    """Send due CRM webhook deliveries (also every minute from beat, as a safety net). Nothing
    while CRM_WEBHOOK_ENABLED is off: deliveries already queued wait until it is on again."""
    if not settings.CRM_WEBHOOK_ENABLED:
        return None
    counts = webhook.drain(deadline=time.monotonic() + DRAIN_SECONDS)
    due = webhook.next_due_in()
    if due is not None and due < 60:
        drain_webhooks.apply_async(countdown=max(due, 1))
    return counts


def taxonomy_listener() -> None:
    """tagging's taxonomy hook: push the library after the change commits."""
    from wecom.services.library import taxonomy_sync_wanted

    if taxonomy_sync_wanted():
        transaction.on_commit(sync_library.delay)


def deletion_listener(tag_ids, group_ids, actor, source) -> None:
    """tagging's deletion hook: the changes still held for deleted tags or groups are cancelled
    in the deletion's transaction (audited); rows that waited behind them go after it commits.
    No query while the integration is off."""
    if is_enabled() and delays.cancel_for_deletion(tag_ids, group_ids, actor, source):
        transaction.on_commit(kick_drain)


def kick_drain() -> None:
    drain_outbox.delay()


@shared_task(name="wecom.drain_outbox", ignore_result=True)
def drain_outbox() -> dict | None:
    if not is_enabled():
        return None
    counts = outbox.drain(get_wecom(), deadline=time.monotonic() + DRAIN_SECONDS)
    if counts.get("tags_gone"):
        sync_library.delay()  # WeCom deleted tags TagDesk still links
    if counts.get("waiting_for_push"):
        kick_strategy_push()  # rows wait for auto tags WeCom does not have yet
    due = outbox.next_due_in()
    if due is not None and due < 60:
        drain_outbox.apply_async(countdown=max(due, 1))
    return counts


@shared_task(name="wecom.sync_library", bind=True, ignore_result=True, max_retries=20)
def sync_library(self) -> dict | None:
    if not is_enabled():
        return None
    # One library merge at a time for the corp; a second request waits for the first.
    if not cache.add(LIBRARY_LOCK, 1, timeout=600):
        raise self.retry(countdown=15)
    try:
        result = runs.run("library", lambda wecom: {"library": _library(wecom)})
    finally:
        cache.delete(LIBRARY_LOCK)
    if not result["ok"]:  # WeCom unreachable or busy: the run row says why; try again later
        raise self.retry(countdown=60)
    return result


def _library(wecom):
    from wecom.services.library import sync_library as merge

    return merge(wecom)


@shared_task(name="wecom.process_callback", ignore_result=True)
def process_callback(event_id: int, again: bool = False) -> str | None:
    event = WecomCallbackEvent.objects.filter(pk=event_id).first()
    if event is None or not is_enabled():
        return None
    try:
        wecom = get_wecom()
    except WecomError:
        return None
    status = callbacks.process(event, wecom, again=again)
    kick_drain()  # a contact event may have queued outbox rows
    return status


@shared_task(name="wecom.nightly_sync", ignore_result=True)
def nightly_sync() -> dict | None:
    """Library, contacts and chats, then the drift report (stored on the run row)."""
    if not is_enabled():
        return None
    return runs.full_sync(library=True, contacts=True, chats=True, check=True, kind="nightly")


@shared_task(name="wecom.run_sync", ignore_result=True)
def run_sync(check: bool = False, repair: bool = False) -> dict | None:
    """The admin's "sync now" / "check drift" buttons."""
    if not is_enabled():
        return None
    parts = not check and not repair
    return runs.full_sync(
        library=parts, contacts=parts, chats=parts, check=check, repair=repair, kind="admin"
    )


@shared_task(name="wecom.send_mass_message", ignore_result=True)
def send_mass_message(message_id: int) -> str | None:
    from wecom.models import WecomMassMessage
    from wecom.services import mass

    message = WecomMassMessage.objects.filter(pk=message_id).first()
    if message is None or not is_enabled():
        return None
    return mass.send(message, get_wecom()).status
