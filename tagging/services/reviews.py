"""Personal-tag hygiene (seed 000 §3.3): personal tags nobody has given a customer for
``TAGDESK_PERSONAL_TAG_STALE_DAYS`` days are listed, monthly, for their owner, who keeps or
archives each. Every step is atomic and audited."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, Max, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from tagging.errors import NotFound, TaggingError
from tagging.models import (
    AssignmentSource,
    AuditAction,
    AuditEntry,
    PersonalTagReview,
    Tag,
    TagKind,
    TagStatus,
)
from tagging.services.taxonomy import archive_tag


@transaction.atomic
def list_stale_personal_tags(now: dt.datetime | None = None) -> int:
    """Open a review for every active personal tag created before the cut-off that no customer
    has been given since (its newest assignment is older, or it has none), unless it already has
    an open review or its owner kept it after the cut-off. One audit entry per tag listed.
    Set-based: one query to find them, two inserts. Returns how many were listed."""
    now = now or timezone.now()
    cutoff = now - dt.timedelta(days=settings.TAGDESK_PERSONAL_TAG_STALE_DAYS)
    reviews = PersonalTagReview.objects.filter(tag=OuterRef("pk"))
    stale = (
        Tag.objects.filter(
            group__kind=TagKind.PERSONAL,
            status=TagStatus.ACTIVE,
            created_at__lt=cutoff,
            group__owner__isnull=False,
        )
        .exclude(Exists(reviews.filter(status=PersonalTagReview.Status.OPEN)))
        .exclude(
            Exists(reviews.filter(status=PersonalTagReview.Status.KEPT, decided_at__gte=cutoff))
        )
        .annotate(last_used=Max("assignments__created_at"), carried=Count("assignments"))
        .filter(Q(last_used__isnull=True) | Q(last_used__lt=cutoff))
        .select_related("group")
    )
    rows = list(stale)
    if not rows:
        return 0
    PersonalTagReview.objects.bulk_create(
        [
            PersonalTagReview(
                tag=tag,
                owner_id=cast(int, tag.group.owner_id),  # personal groups have an owner
                last_used_at=tag.last_used,
                customers=tag.carried,
                listed_at=now,
            )
            for tag in rows
        ]
    )
    AuditEntry.objects.bulk_create(
        [
            AuditEntry(
                created_at=now,
                action=AuditAction.TAG_REVIEW_LISTED,
                source=AssignmentSource.SYSTEM,
                tag=tag,
                group_id=tag.group_id,
                object_repr=str(tag)[:255],
                reason=_("not given to a customer for %(days)d days")
                % {"days": settings.TAGDESK_PERSONAL_TAG_STALE_DAYS},
            )
            for tag in rows
        ]
    )
    return len(rows)


def _open_review(review: PersonalTagReview, actor: Any) -> PersonalTagReview:
    locked = (
        PersonalTagReview.objects.select_for_update()
        .select_related("tag__group")
        .filter(pk=review.pk)
        .first()
    )
    # Only the owner decides about a personal tag (docs/permissions.md#personal-tags: only its owner uses it).
    if locked is None or locked.owner_id != getattr(actor, "pk", None):
        raise NotFound(_("This review does not exist."))
    if locked.status != PersonalTagReview.Status.OPEN:
        raise TaggingError(_("“%(tag)s” has been reviewed already.") % {"tag": locked.tag})
    return locked


@transaction.atomic
def keep_personal_tag(review: PersonalTagReview, *, actor: Any) -> PersonalTagReview:
    """The owner keeps the tag: it is not listed again for another stale period. Audited."""
    review = _open_review(review, actor)
    review.status = PersonalTagReview.Status.KEPT
    review.decided_at = timezone.now()
    review.save(update_fields=["status", "decided_at"])
    AuditEntry.objects.create(
        action=AuditAction.TAG_KEPT,
        actor_id=actor.pk,
        source=AssignmentSource.MANUAL,
        tag=review.tag,
        group_id=review.tag.group_id,
        object_repr=str(review.tag)[:255],
    )
    return review


@transaction.atomic
def archive_personal_tag(review: PersonalTagReview, *, actor: Any) -> PersonalTagReview:
    """The owner archives the tag (``archive_tag``: history and assignments stay). Audited."""
    review = _open_review(review, actor)
    if review.tag.status == TagStatus.ACTIVE:
        archive_tag(review.tag, actor=actor, reason=_("archived after review (unused)"))
    review.status = PersonalTagReview.Status.ARCHIVED
    review.decided_at = timezone.now()
    review.save(update_fields=["status", "decided_at"])
    return review
