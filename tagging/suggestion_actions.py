"""Deciding tag suggestions (docs/suggestions.md): the verbs the admin pages and the API call.

Each is atomic and writes one audit entry (``suggestion.accepted`` / ``suggestion.dismissed``;
an accepted customer suggestion is the assignment's own ``assignment.added`` entry, written by
the one assignment service). Permission: combination suggestions are for tag admins
(``policy.is_tag_admin``); customer suggestions for whoever may edit the customer and the tag,
which the entry points check with the policy before calling (as for every tagging service).
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from permissions import policy
from tagging import segments
from tagging.errors import NotFound, PermissionDenied, TaggingError
from tagging.models import (
    AssignmentSource,
    AuditAction,
    AuditEntry,
    CombinationSuggestion,
    CustomerTagSuggestionDismissal,
    Segment,
    SuggestionStatus,
    Tag,
)
from tagging.services import AssignResult, assign_tags

SEGMENT_NAME_MAX = 100


def _require_admin(actor: Any) -> None:
    if not policy.is_tag_admin(actor):
        raise PermissionDenied(_("Only tag admins decide tag combination suggestions."))


def _open(suggestion: CombinationSuggestion | int) -> CombinationSuggestion:
    pk = suggestion.pk if isinstance(suggestion, CombinationSuggestion) else int(suggestion)
    locked = CombinationSuggestion.objects.select_for_update().filter(pk=pk).first()
    if locked is None:
        raise NotFound(_("This suggestion does not exist."))
    if locked.status != SuggestionStatus.NEW:
        raise TaggingError(
            _("This suggestion has been %(status)s already.")
            % {"status": locked.get_status_display()},
            code="already_decided",
        )
    return locked


def describe(suggestion: CombinationSuggestion, tags: dict[int, Tag] | None = None) -> str:
    """ "群组:标签 + 群组:标签" (ids of tags that no longer exist as #id)."""
    if tags is None:
        tags = Tag.objects.select_related("group").in_bulk(suggestion.tag_ids)
    return " + ".join(
        f"{tags[pk].group.name}:{tags[pk].name}" if pk in tags else f"#{pk}"
        for pk in suggestion.tag_ids
    )


def _audit(suggestion: CombinationSuggestion, action: str, actor: Any, **after: Any) -> None:
    AuditEntry.objects.create(
        action=action,
        actor_id=actor.pk,
        source=AssignmentSource.MANUAL,
        object_repr=describe(suggestion)[:255],
        after={
            "suggestion": suggestion.pk,
            "tags": suggestion.tag_ids,
            "support": suggestion.support,
            "lift": round(suggestion.lift, 3),
            **after,
        },
    )


def _free_name(owner: Any, name: str) -> str:
    taken = set(Segment.objects.filter(owner=owner).values_list("name", flat=True))
    name = name[:SEGMENT_NAME_MAX]
    if name not in taken:
        return name
    for n in range(2, 1000):
        suffix = f" ({n})"
        candidate = name[: SEGMENT_NAME_MAX - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
    raise TaggingError(_("Choose another segment name."))


@transaction.atomic
def accept_as_segment(
    suggestion: CombinationSuggestion | int, *, actor: Any, name: str = "", shared: bool = False
) -> Segment:
    """A tag admin turns a combination into a saved segment owned by them: the AND of its tags
    (validated for them like any segment). The suggestion becomes accepted and points at it.
    Audited. Raises TaggingError (nothing written) for a decided suggestion or a tag gone."""
    _require_admin(actor)
    locked = _open(suggestion)
    expression = segments.validate({"and": [{"tag": pk} for pk in locked.tag_ids]}, actor)
    segment_name = _free_name(actor, (name or "").strip() or describe(locked))
    try:
        with transaction.atomic():
            segment = Segment.objects.create(
                name=segment_name,
                description=_("From a tag combination suggestion (lift %(lift).1f)")
                % {"lift": locked.lift},
                expression=expression,
                owner=actor,
                shared=shared,
            )
    except IntegrityError:
        raise TaggingError(_("You already have a segment with this name.")) from None
    locked.status = SuggestionStatus.ACCEPTED
    locked.decided_by = actor
    locked.decided_at = timezone.now()
    locked.segment = segment
    locked.save(update_fields=["status", "decided_by", "decided_at", "segment"])
    _audit(locked, AuditAction.SUGGESTION_ACCEPTED, actor, segment=segment.pk)
    return segment


@transaction.atomic
def dismiss_combination(
    suggestion: CombinationSuggestion | int, *, actor: Any
) -> CombinationSuggestion:
    """A tag admin dismisses a combination: recomputing keeps it dismissed. Audited."""
    _require_admin(actor)
    locked = _open(suggestion)
    locked.status = SuggestionStatus.DISMISSED
    locked.decided_by = actor
    locked.decided_at = timezone.now()
    locked.save(update_fields=["status", "decided_by", "decided_at"])
    _audit(locked, AuditAction.SUGGESTION_DISMISSED, actor)
    return locked


# --- one customer ---------------------------------------------------------------------------

ACCEPT_REASON = "tag suggestion"


@transaction.atomic
def accept_customer_suggestion(
    customer_id: int, tag: Tag, *, actor: Any, source: str = AssignmentSource.MANUAL
) -> AssignResult:
    """Give the customer the suggested tag through ``assign_tags`` (its checks, its audit entry,
    reason "tag suggestion"). The caller has checked the user may edit the customer and tag."""
    return assign_tags([customer_id], [tag], actor=actor, source=source, reason=ACCEPT_REASON)


@transaction.atomic
def dismiss_customer_suggestion(customer_id: int, tag: Tag, *, actor: Any, source: str) -> bool:
    """Do not suggest ``tag`` for this customer again. Audited once; dismissing again changes
    nothing and returns False. The caller has checked the user may edit the customer and tag."""
    _row, created = CustomerTagSuggestionDismissal.objects.get_or_create(
        customer_id=customer_id, tag=tag, defaults={"dismissed_by": actor}
    )
    if created:
        AuditEntry.objects.create(
            action=AuditAction.SUGGESTION_DISMISSED,
            actor_id=actor.pk,
            source=source,
            customer_id=customer_id,
            tag=tag,
            group_id=tag.group_id,
            object_repr=str(tag)[:255],
        )
    return created
