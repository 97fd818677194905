"""Helpers shared by the tagging services: id lists, audit rows, locking, kind/status checks."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from customers.models import Customer
from tagging import hooks
from tagging.errors import (
    NotFound,
    RuleTagNotAssignable,
    TagNotAssignable,
)
from tagging.models import (
    AssignmentSource,
    AuditEntry,
    Tag,
    TagKind,
    TagStatus,
)


@dataclass
class AssignResult:
    added: list[tuple[int, int]] = field(default_factory=list)  # (customer_id, tag_id)
    replaced: list[tuple[int, int]] = field(default_factory=list)  # removed by exclusivity
    unchanged: int = 0  # pairs the customers already had


@dataclass
class UnassignResult:
    removed: list[tuple[int, int]] = field(default_factory=list)
    absent: int = 0  # pairs that were not there


# --- helpers ----------------------------------------------------------------------------------


def _ids(objects: Iterable[Any] | QuerySet[Any]) -> list[int]:
    if isinstance(objects, QuerySet):
        return list(objects.values_list("pk", flat=True))
    seen: dict[int, None] = {}
    for obj in objects:
        seen[int(getattr(obj, "pk", obj))] = None
    return list(seen)


def _actor_id(actor: Any) -> int | None:
    return getattr(actor, "pk", None)


def _audit(action: str, *, actor: Any, source: str, reason: str = "", **fields: Any) -> AuditEntry:
    entry = AuditEntry.objects.create(
        action=action, actor_id=_actor_id(actor), source=source, reason=reason[:255], **fields
    )
    if action.startswith(("tag.", "group.")):
        # Every taxonomy change is audited through here: the one place to tell listeners.
        hooks.taxonomy_changed()
    return entry


def _assignment_audits(
    pairs: Iterable[tuple[int, int]],
    action: str,
    *,
    tags: dict[int, Tag],
    actor: Any,
    source: str,
    rule_id: int | None = None,
    reason: str = "",
    now: datetime | None = None,
    after: dict[str, Any] | None = None,
) -> list[AuditEntry]:
    now = now or timezone.now()
    actor_id = _actor_id(actor)
    return [
        AuditEntry(
            created_at=now,
            actor_id=actor_id,
            action=action,
            source=source,
            customer_id=customer_id,
            tag_id=tag_id,
            group_id=tags[tag_id].group_id,
            rule_id=rule_id,
            object_repr=str(tags[tag_id])[:255],
            reason=reason[:255],
            after=after,
        )
        for customer_id, tag_id in pairs
    ]


def _lock_customers(customer_ids: Sequence[int]) -> set[int]:
    """Lock the customers' rows (ordered, to avoid deadlocks); return the ids that exist."""
    found = set(
        Customer.objects.select_for_update()
        .filter(pk__in=customer_ids)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    missing = [cid for cid in customer_ids if cid not in found]
    if missing:
        raise NotFound(
            ngettext(
                "Customer %(ids)s does not exist.", "Customers %(ids)s do not exist.", len(missing)
            )
            % {"ids": ", ".join(map(str, missing[:20]))},
            details={"customers": missing},
        )
    return found


def _check_tags_usable(
    tags: Sequence[Tag], *, actor: Any, source: str, rule: Any, adding: bool
) -> None:
    """Kinds, ownership and status, the same for adding and removing (status only for adding)."""
    for tag in tags:
        kind = tag.group.kind
        if kind == TagKind.AUTO:
            if source != AssignmentSource.RULE or rule is None:
                raise RuleTagNotAssignable(
                    _("“%(tag)s” is an auto tag: only its rule adds or removes it.") % {"tag": tag},
                    details={"tag": tag.pk},
                )
            if rule.tag_id != tag.pk:
                raise RuleTagNotAssignable(
                    _("Rule “%(rule)s” does not own the auto tag “%(tag)s”.")
                    % {"rule": rule, "tag": tag},
                    details={"tag": tag.pk},
                )
        elif source == AssignmentSource.RULE:
            raise TagNotAssignable(
                _("Rules may only apply auto tags; “%(tag)s” is not one.") % {"tag": tag},
                details={"tag": tag.pk},
            )
        if kind == TagKind.PERSONAL and tag.group.owner_id != _actor_id(actor):
            # Say nothing about whose tag it is: personal tags are private.
            raise TagNotAssignable(
                _("Tag %(id)s does not exist.") % {"id": tag.pk},
                code="unknown_tag",
                details={"tag": tag.pk},
            )
        if adding and tag.status != TagStatus.ACTIVE:
            message = (
                _("“%(tag)s” is waiting for approval and cannot be used yet.")
                if tag.status == TagStatus.PENDING
                else _("“%(tag)s” is archived and cannot be added to customers.")
            )
            raise TagNotAssignable(message % {"tag": tag}, details={"tag": tag.pk})


def check_rule_tag(tag: Tag, *, rule: Any, adding: bool) -> None:
    """Raise unless ``rule`` may add (``adding``) or remove its auto ``tag``: the checks of
    :func:`assign_tags`, for the set-based rule writer in ``rules.services``."""
    _check_tags_usable([tag], actor=None, source=AssignmentSource.RULE, rule=rule, adding=adding)


def _load_tags(tags: Iterable[Any]) -> list[Tag]:
    wanted = _ids(tags)
    loaded = {t.pk: t for t in Tag.objects.select_related("group").filter(pk__in=wanted)}
    missing = [tid for tid in wanted if tid not in loaded]
    if missing:
        raise TagNotAssignable(
            ngettext("Tag %(ids)s does not exist.", "Tags %(ids)s do not exist.", len(missing))
            % {"ids": ", ".join(map(str, missing))},
            code="unknown_tag",
            details={"tags": missing},
        )
    return [loaded[tid] for tid in wanted]
