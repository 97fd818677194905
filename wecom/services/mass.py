"""群发 to a saved segment (issue 10 §9).

:func:`create_mass_message` takes the segment's customers the actor may see, gives each one to
one of its followers (the oldest WeCom relationship, so nobody receives it twice), and records
one part per follower and at most ``MAX_PER_CALL`` customers (WeCom's limit per
add_msg_template). :func:`send` creates the parts in WeCom and keeps each msgid;
:func:`fetch_results` reads get_groupmsg_send_result for every part.
"""

from __future__ import annotations

from collections import Counter, defaultdict

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from tagging import segments
from tagging.errors import NotFound, TaggingError
from wecom.client import Wecom, WecomError
from wecom.models import (
    MassMessageStatus,
    WecomMassMessage,
    WecomMassMessagePart,
    WecomRelation,
)
from wecom.services.protection import ProtectedFieldError, guard

MAX_PER_CALL = 10000
SEND_STATUS = {0: "unsent", 1: "sent", 2: "not_friend", 3: "already_received"}


@transaction.atomic
def create_mass_message(
    segment, *, actor, text: str, link_title: str = "", link_url: str = ""
) -> WecomMassMessage:
    """Record the message and its parts (nothing is sent yet). Refuses a segment the actor
    may not use, an empty text, a link without both title and URL, and a segment with no
    customer reachable in WeCom."""
    if not segments.visible_segments(actor).filter(pk=segment.pk).exists():
        raise NotFound(_("Segment %(id)s does not exist.") % {"id": segment.pk})
    text = (text or "").strip()
    if not text:
        raise TaggingError(_("Write the message text."), code="empty_text")
    if bool(link_title) != bool(link_url):
        raise TaggingError(_("A link needs both a title and a URL."), code="invalid_link")
    ids = segments.customer_ids(segment.expression, actor)
    by_sender: dict[str, list[str]] = defaultdict(list)
    given: set[int] = set()
    for start in range(0, len(ids), 5000):
        rows = (
            WecomRelation.objects.filter(customer_id__in=ids[start : start + 5000])
            .order_by("customer_id", "id")
            .values_list("customer_id", "userid", "external_userid")
        )
        for customer_id, userid, ext in rows:
            if customer_id not in given:
                given.add(customer_id)
                by_sender[userid].append(ext)
    if not given:
        raise TaggingError(
            _("No customer of this segment that you may see has a WeCom follower."),
            code="no_recipients",
        )
    message = WecomMassMessage.objects.create(
        segment=segment,
        segment_name=segment.name,
        text=text,
        link_title=link_title,
        link_url=link_url,
        created_by=actor,
        customers=len(given),
    )
    WecomMassMessagePart.objects.bulk_create(
        [
            WecomMassMessagePart(
                message=message, sender=sender, external_userids=exts[i : i + MAX_PER_CALL]
            )
            for sender, exts in sorted(by_sender.items())
            for i in range(0, len(exts), MAX_PER_CALL)
        ]
    )
    return message


def send(message: WecomMassMessage, wecom: Wecom) -> WecomMassMessage:
    """Create every part not yet created in WeCom (a re-run skips the created ones)."""
    for part in message.parts.filter(msgid=""):
        template = {
            "chat_type": "single",
            "sender": part.sender,
            "external_userid": part.external_userids,
            "text": {"content": message.text},
        }
        if message.link_url:
            template["attachments"] = [
                {"msgtype": "link", "link": {"title": message.link_title, "url": message.link_url}}
            ]
        try:
            guard(template, external_userids=part.external_userids)
            answer = wecom.add_msg_template(template)
        except ProtectedFieldError as exc:
            part.errcode, part.error = None, str(exc)[:255]
            part.save(update_fields=["errcode", "error"])
            continue
        except WecomError as exc:
            part.errcode, part.error = exc.errcode, str(exc)[:255]
            part.save(update_fields=["errcode", "error"])
            continue
        part.msgid = answer.get("msgid", "")
        part.fail_list = answer.get("fail_list", [])
        part.errcode, part.error = None, ""
        part.save(update_fields=["msgid", "fail_list", "errcode", "error"])
    parts = list(message.parts.all())
    created = sum(1 for p in parts if p.msgid)
    message.status = (
        MassMessageStatus.SENT
        if created == len(parts)
        else MassMessageStatus.FAILED
        if created == 0
        else MassMessageStatus.PARTLY_FAILED
    )
    message.save(update_fields=["status"])
    return message


def fetch_results(message: WecomMassMessage, wecom: Wecom) -> dict[str, int]:
    """Per-customer delivery status counts of every created part (sent, unsent, …)."""
    counts: Counter[str] = Counter()
    for part in message.parts.exclude(msgid=""):
        for row in wecom.group_msg_send_result(part.msgid, part.sender):
            counts[SEND_STATUS.get(int(row.get("status") or 0), "unknown")] += 1
    message.results, message.results_at = dict(counts), timezone.now()
    message.save(update_fields=["results", "results_at"])
    return dict(counts)
