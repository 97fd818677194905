"""WeCom callbacks (issue 10 §5): verify and record fast, apply in a task.

:func:`receive` checks the signature, decrypts and records the event (a WeCom retry of the same
message is recognised by its hash and recorded once); the view answers at once and a task runs
:func:`process`, which applies the event through the sync services.
"""

from __future__ import annotations

import hashlib
import logging
from xml.parsers.expat import ExpatError

import xmltodict
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from wechatpy.enterprise.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException

from wecom.client import Wecom
from wecom.models import CallbackStatus, WecomCallbackEvent
from wecom.services import chats, contacts, library

logger = logging.getLogger("wecom")


class CallbackRefused(Exception):
    """Signature or decryption failed (HTTP 403) or the body is not a WeCom envelope (400)."""

    def __init__(self, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.status = status


def _crypto() -> WeChatCrypto:
    return WeChatCrypto(
        settings.WECOM_CALLBACK_TOKEN, settings.WECOM_CALLBACK_AES_KEY, settings.WECOM_CORP_ID
    )


def verify_url(signature: str, timestamp: str, nonce: str, echostr: str) -> str:
    """The GET WeCom sends when the callback URL is saved: answer the decrypted echostr."""
    try:
        return _crypto().check_signature(signature, timestamp, nonce, echostr)
    except InvalidSignatureException as exc:
        raise CallbackRefused(_("Invalid signature.")) from exc
    except Exception as exc:  # wechatpy raises several types for undecryptable input
        raise CallbackRefused(_("The message could not be decrypted.")) from exc


def _parse(xml: str | bytes) -> dict:
    try:
        parsed = xmltodict.parse(xml, disable_entities=True)
    except (ExpatError, ValueError) as exc:
        raise CallbackRefused(_("Malformed XML."), status=400) from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("xml"), dict):
        raise CallbackRefused(_("Malformed XML."), status=400)
    return parsed["xml"]


def receive(body: bytes, signature: str, timestamp: str, nonce: str) -> WecomCallbackEvent | None:
    """Record the event; returns it, or None for a duplicate. Raises CallbackRefused."""
    envelope = _parse(body)
    if not isinstance(envelope.get("Encrypt"), str):
        raise CallbackRefused(_("Malformed XML."), status=400)
    try:
        plain = _crypto().decrypt_message(envelope, signature, timestamp, nonce)
    except InvalidSignatureException as exc:
        raise CallbackRefused(_("Invalid signature.")) from exc
    except Exception as exc:
        raise CallbackRefused(_("The message could not be decrypted.")) from exc
    plain = plain.decode() if isinstance(plain, bytes) else plain
    message = _parse(plain)
    fields = {k: v if isinstance(v, str) else "" for k, v in message.items()}
    try:
        with transaction.atomic():
            return WecomCallbackEvent.objects.create(
                dedupe_key=hashlib.sha256(plain.encode()).hexdigest(),
                event=fields.get("Event", "")[:64],
                change_type=fields.get("ChangeType", "")[:64],
                payload=fields,
            )
    except IntegrityError:
        return None


def process(event: WecomCallbackEvent, wecom: Wecom, *, again: bool = False) -> str:
    """Apply one recorded event; returns the final status. Claimed with a conditional UPDATE
    (received → processing) so that two workers never apply the same event; ``again`` (the
    admin's action) also takes failed events and ones left processing by a dead worker."""
    claimable = [CallbackStatus.RECEIVED]
    if again:
        claimable += [CallbackStatus.FAILED, CallbackStatus.PROCESSING]
    claimed = WecomCallbackEvent.objects.filter(pk=event.pk, status__in=claimable).update(
        status=CallbackStatus.PROCESSING, processed_at=timezone.now()
    )
    if not claimed:
        return WecomCallbackEvent.objects.get(pk=event.pk).status
    p = event.payload
    status: str = CallbackStatus.DONE
    error = ""
    try:
        if event.event == "change_external_tag":
            library.sync_library(wecom)
        elif event.event == "change_external_contact":
            status, error = _contact_event(event.change_type, p, wecom)
        elif event.event == "change_external_chat":
            if event.change_type == "dismiss":
                chats.dismiss_chat(p.get("ChatId", ""))
            elif p.get("ChatId"):
                chats.apply_chat(wecom.chat(p["ChatId"]))
            else:
                status, error = CallbackStatus.IGNORED, _("No ChatId in the event.")
        else:
            status = CallbackStatus.IGNORED
            error = _("Unknown event “%(event)s”.") % {"event": event.event}
    except Exception as exc:
        logger.exception("wecom callback %s failed", event.pk)
        status, error = CallbackStatus.FAILED, str(exc)[:255]
    WecomCallbackEvent.objects.filter(pk=event.pk).update(
        status=status, error=error[:255], processed_at=timezone.now()
    )
    return status


def _contact_event(change_type: str, p: dict, wecom: Wecom) -> tuple[str, str]:
    userid, ext = p.get("UserID", ""), p.get("ExternalUserID", "")
    if not ext:
        return CallbackStatus.IGNORED, _("No ExternalUserID in the event.")
    if change_type in {
        "add_external_contact",
        "edit_external_contact",
        "add_half_external_contact",
    }:
        contacts.apply_contact(wecom.contact(ext))
    elif change_type in {"del_external_contact", "del_follow_user"}:
        contacts.remove_relation(userid, ext)
    else:
        return CallbackStatus.IGNORED, _("Unknown change type “%(type)s”.") % {"type": change_type}
    return CallbackStatus.DONE, ""
