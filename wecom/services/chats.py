"""Customer group chats (客户群) from WeCom, and tagging every customer of some chats."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.models import Customer
from permissions import policy
from tagging import services as tagging_services
from tagging.models import AssignmentSource
from tagging.services import AssignResult
from wecom.client import Wecom, WecomError
from wecom.models import GroupChat, GroupChatMember
from wecom.services.common import record_issue


def _when(seconds: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(int(seconds), tz=UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def sync_chats(wecom: Wecom) -> dict[str, int]:
    """Every chat WeCom lists (cursor pages) is fetched and stored; chats it no longer lists
    are marked dismissed. Returns counts."""
    stats: Counter[str] = Counter()
    ids = wecom.chat_ids()
    for chat_id in ids:
        try:
            apply_chat(wecom.chat(chat_id))
        except WecomError as exc:
            if exc.transient:
                raise
            record_issue("chat", chat_id, f"wecom_{exc.errcode}", str(exc))
            stats["chats_skipped"] += 1
            continue
        stats["chats"] += 1
    stats["chats_dismissed"] += (
        GroupChat.objects.exclude(chat_id__in=ids).filter(dismissed=False).update(dismissed=True)
    )
    return dict(stats)


@transaction.atomic
def apply_chat(data: dict) -> GroupChat:
    """Store one groupchat/get answer: the chat and its members (employees and customers
    matched by userid / external_userid)."""
    owner_userid = data.get("owner") or ""
    users = get_user_model().objects
    chat, _created = GroupChat.objects.update_or_create(
        chat_id=data["chat_id"],
        defaults={
            "name": (data.get("name") or "")[:128],
            "owner_userid": owner_userid[:64],
            "owner": users.filter(wecom_userid=owner_userid).first() if owner_userid else None,
            "notice": data.get("notice") or "",
            "created_at": _when(data.get("create_time")),
            "dismissed": False,
            "synced_at": timezone.now(),
        },
    )
    members = [m for m in data.get("member_list") or [] if m.get("userid")]
    ids = [m["userid"] for m in members]
    customers = dict(
        Customer.objects.filter(external_userid__in=ids).values_list("external_userid", "pk")
    )
    employees = dict(users.filter(wecom_userid__in=ids).values_list("wecom_userid", "pk"))
    chat.members.exclude(userid__in=ids).delete()
    for m in members:
        kind = (
            GroupChatMember.Kind.EXTERNAL if m.get("type") == 2 else GroupChatMember.Kind.EMPLOYEE
        )
        GroupChatMember.objects.update_or_create(
            chat=chat,
            userid=m["userid"][:64],
            defaults={
                "kind": kind,
                "name": (m.get("name") or m.get("group_nickname") or "")[:128],
                "join_time": _when(m.get("join_time")),
                "join_scene": int(m.get("join_scene") or 0),
                "customer_id": customers.get(m["userid"]) if kind == 2 else None,
                "employee_id": employees.get(m["userid"]) if kind == 1 else None,
            },
        )
    return chat


def dismiss_chat(chat_id: str) -> int:
    return GroupChat.objects.filter(chat_id=chat_id).update(dismissed=True)


def chat_customer_ids(chats) -> list[int]:
    return list(
        GroupChatMember.objects.filter(chat__in=chats, customer__isnull=False)
        .values_list("customer_id", flat=True)
        .distinct()
        .order_by("customer_id")
    )


@transaction.atomic
def tag_chat_customers(
    chats, tags, *, actor, replace_exclusive: bool = True, reason: str = ""
) -> tuple[AssignResult, int]:
    """Give ``tags`` to every customer of ``chats`` the actor may see (seed 远航: 为群聊的客户添加
    标签), through the one assignment service (audited, limits and kinds enforced). The actor
    needs edit on the tags' groups (``policy.require_tags`` raises otherwise). Returns the
    service's result and how many chat customers were outside the actor's scope."""
    tag_list = policy.require_tags(actor, tags, policy.Level.EDIT)
    ids = chat_customer_ids(chats)
    visible = list(policy.visible_customers(actor).filter(pk__in=ids).values_list("pk", flat=True))
    result = tagging_services.assign_tags(
        visible,
        tag_list,
        actor=actor,
        source=AssignmentSource.MANUAL,
        replace_exclusive=replace_exclusive,
        reason=reason or _("tagged through their group chat"),
    )
    return result, len(ids) - len(visible)
