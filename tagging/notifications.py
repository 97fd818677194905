"""What the admin index tells an employee: their proposed tags approved or rejected lately, with
the reviewer's reason, and how many still wait (docs/permissions.md#approvals; read from the audit log's
``tag.approved`` / ``tag.rejected`` entries on tags the user created), and how many of their
personal tags wait for review (``tagging.services.reviews``). Three queries."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils import timezone

from tagging.models import AuditAction, AuditEntry, PersonalTagReview, Tag, TagStatus

RECENT_DAYS = 30
MAX_SHOWN = 10


@dataclass(frozen=True)
class Decision:
    tag_id: int | None
    label: str
    approved: bool
    reason: str
    reviewer: str
    when: dt.datetime


def proposal_decisions(user: Any, *, days: int = RECENT_DAYS, limit: int = MAX_SHOWN) -> dict:
    """{"decisions": [Decision, newest first], "pending": count} for ``user``'s proposals."""
    if user is None or not getattr(user, "is_authenticated", False):
        return {"decisions": [], "pending": 0}
    since = timezone.now() - dt.timedelta(days=days)
    mine = Tag.objects.filter(created_by=user.pk)
    entries = (
        AuditEntry.objects.filter(
            action__in=[AuditAction.TAG_APPROVED, AuditAction.TAG_REJECTED],
            created_at__gte=since,
            tag_id__in=mine.values("pk"),
        )
        .exclude(actor=user.pk)  # a tag admin approving their own proposal needs no notice
        .select_related("actor")
        .order_by("-created_at", "-pk")[:limit]
    )
    decisions = [
        Decision(
            tag_id=entry.tag_id,
            label=entry.object_repr,
            approved=entry.action == AuditAction.TAG_APPROVED,
            reason=entry.reason,
            reviewer=str(entry.actor) if entry.actor_id and entry.actor else "",
            when=entry.created_at,
        )
        for entry in entries
    ]
    return {"decisions": decisions, "pending": mine.filter(status=TagStatus.PENDING).count()}


def open_reviews(user: Any) -> int:
    """How many of the user's personal tags wait on the review list."""
    if user is None or not getattr(user, "is_authenticated", False):
        return 0
    return PersonalTagReview.objects.filter(
        owner=user.pk, status=PersonalTagReview.Status.OPEN
    ).count()
