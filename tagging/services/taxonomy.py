"""Tag groups and tags: create, rename, move, reorder, approve, archive, restore, delete, merge.

Names follow tagging.names; limits come from settings; every change is audited."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Max
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from tagging import hooks
from tagging.errors import (
    ExclusiveConflict,
    InvalidTagName,
    LimitExceeded,
    NotFound,
    RuleTagNotAssignable,
    TaggingError,
    TagNotAssignable,
)
from tagging.models import (
    DEFAULT_COLOURS,
    AssignmentSource,
    AuditAction,
    AuditEntry,
    Tag,
    TagAssignment,
    TagGroup,
    TagKind,
    TagStatus,
)
from tagging.names import InvalidName, fold_name, validate_name
from tagging.services.common import (
    _actor_id,
    _assignment_audits,
    _audit,
    _load_tags,
)

# --- taxonomy ----------------------------------------------------------------------------------


def _valid_name(raw: object) -> str:
    try:
        return validate_name(raw)
    except InvalidName as exc:
        raise InvalidTagName(str(exc), code=exc.code) from exc


def _group_snapshot(group: TagGroup) -> dict[str, Any]:
    return {
        "name": group.name,
        "colour": group.colour,
        "parent": group.parent_id,
        "kind": group.kind,
        "exclusive": group.exclusive,
        "sort_order": group.sort_order,
        "description": group.description,
    }


def _tag_snapshot(tag: Tag) -> dict[str, Any]:
    return {
        "name": tag.name,
        "group": tag.group_id,
        "colour": tag.colour,
        "status": tag.status,
        "sort_order": tag.sort_order,
        "description": tag.description,
    }


def _check_group_name_free(
    name: str, *, owner_id: int | None, exclude_pk: int | None = None
) -> None:
    clash = TagGroup.objects.filter(name_key=fold_name(name), owner_id=owner_id)
    if exclude_pk:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise InvalidTagName(
            _("A tag group named “%(name)s” already exists.") % {"name": name},
            code="duplicate_name",
        )


@transaction.atomic
def create_group(
    *,
    name: str,
    actor: Any,
    kind: str = TagKind.CORPORATE,
    colour: str | None = None,
    parent: TagGroup | None = None,
    exclusive: bool = False,
    owner: Any = None,
    sort_order: int | None = None,
    description: str = "",
    source: str = AssignmentSource.MANUAL,
) -> TagGroup:
    """Create a tag group. Personal groups belong to ``owner``; the others count against
    ``TAGDESK_MAX_GROUPS``. Names are unique company-wide (per owner for personal groups)."""
    name = _valid_name(name)
    if kind not in TagKind.values:
        raise TaggingError(_("Unknown tag kind “%(kind)s”.") % {"kind": kind})
    owner_id = _actor_id(owner) if kind == TagKind.PERSONAL else None
    if kind == TagKind.PERSONAL and owner_id is None:
        raise TaggingError(_("A personal tag group needs an owner."))
    if parent is not None and (parent.kind != kind or parent.owner_id != owner_id):
        raise TaggingError(_("A sub-group must have the same kind and owner as its parent."))
    scope = TagGroup.objects.filter(owner_id=owner_id)
    existing = scope.count()
    if existing >= settings.TAGDESK_MAX_GROUPS:
        raise LimitExceeded(
            _("The limit of %(limit)d tag groups is reached.")
            % {"limit": settings.TAGDESK_MAX_GROUPS}
        )
    _check_group_name_free(name, owner_id=owner_id)
    if sort_order is None:
        sort_order = (scope.aggregate(m=Max("sort_order"))["m"] or 0) + 1
    if colour is None:
        colour = DEFAULT_COLOURS[existing % len(DEFAULT_COLOURS)]
    group = TagGroup(
        name=name,
        kind=kind,
        colour=colour,
        parent=parent,
        exclusive=exclusive,
        owner_id=owner_id,
        sort_order=sort_order,
        description=description,
        created_by_id=_actor_id(actor),
    )
    group.full_clean(exclude=["name_key"])
    group.save()
    _audit(
        AuditAction.GROUP_CREATED,
        actor=actor,
        source=source,
        group=group,
        object_repr=group.name,
        after=_group_snapshot(group),
    )
    return group


_Edited = TypeVar("_Edited", TagGroup, Tag)


def _save_changes(
    obj: _Edited,
    changes: dict[str, Any],
    *,
    before: dict[str, Any],
    snapshot: Callable[[_Edited], dict[str, Any]],
    action: str,
    actor: Any,
    source: str,
    audit_fields: Callable[[_Edited], dict[str, Any]],
) -> None:
    """Apply validated ``changes`` to a group or tag, save it, and audit before/after when
    anything changed (``audit_fields`` names the audited objects after the change)."""
    for key, value in changes.items():
        setattr(obj, key, value)
    obj.full_clean(exclude=["name_key"], validate_constraints=False)
    obj.save()
    after = snapshot(obj)
    if after != before:
        _audit(action, actor=actor, source=source, before=before, after=after, **audit_fields(obj))


_GROUP_FIELDS = {"name", "colour", "parent", "exclusive", "sort_order", "description"}


@transaction.atomic
def update_group(
    group: TagGroup, *, actor: Any, source: str = AssignmentSource.MANUAL, **changes: Any
) -> TagGroup:
    """Rename, recolour, move, reorder or (un)set exclusivity. Turning exclusivity on is refused
    while some customer holds two tags of the group."""
    unknown = set(changes) - _GROUP_FIELDS
    if unknown:
        raise TaggingError(
            _("Cannot change %(fields)s of a tag group.") % {"fields": ", ".join(sorted(unknown))}
        )
    group = TagGroup.objects.select_for_update().get(pk=group.pk)
    before = _group_snapshot(group)
    if "name" in changes:
        changes["name"] = _valid_name(changes["name"])
        _check_group_name_free(changes["name"], owner_id=group.owner_id, exclude_pk=group.pk)
    parent = changes.get("parent")
    if parent is not None:
        if parent.kind != group.kind or parent.owner_id != group.owner_id:
            raise TaggingError(_("A sub-group must have the same kind and owner as its parent."))
        node: TagGroup | None = parent
        while node is not None:
            if node.pk == group.pk:
                raise TaggingError(_("A group cannot be placed under itself."))
            node = node.parent
    if changes.get("exclusive") and not group.exclusive:
        doubled = (
            TagAssignment.objects.filter(tag__group=group)
            .values("customer_id")
            .annotate(n=Count("pk"))
            .filter(n__gt=1)
            .count()
        )
        if doubled:
            raise ExclusiveConflict(
                ngettext(
                    "%(count)d customer holds several tags of this group; resolve that first.",
                    "%(count)d customers hold several tags of this group; resolve that first.",
                    doubled,
                )
                % {"count": doubled}
            )
    _save_changes(
        group,
        changes,
        before=before,
        snapshot=_group_snapshot,
        action=AuditAction.GROUP_UPDATED,
        actor=actor,
        source=source,
        audit_fields=lambda g: {"group": g, "object_repr": g.name},
    )
    return group


@transaction.atomic
def delete_group(group: TagGroup, *, actor: Any, source: str = AssignmentSource.MANUAL) -> None:
    """Delete an empty group (no tags, no sub-groups); a group with tags is archived tag by tag."""
    if group.tags.exists() or group.children.exists():
        raise TaggingError(
            _("“%(group)s” still has tags or sub-groups; move or delete them first.")
            % {"group": group}
        )
    _audit(
        AuditAction.GROUP_DELETED,
        actor=actor,
        source=source,
        group=group,
        object_repr=group.name,
        before=_group_snapshot(group),
    )
    hooks.taxonomy_deleting(group_ids=[group.pk], actor=actor, source=source)
    group.delete()


@transaction.atomic
def reorder_groups(ordered_ids: Sequence[int], *, actor: Any) -> None:
    """Drag-sort: ``ordered_ids`` in their new order get sort_order 1..n."""
    _reorder(TagGroup, ordered_ids)
    _audit(
        AuditAction.GROUP_UPDATED,
        actor=actor,
        source=AssignmentSource.MANUAL,
        object_repr=_("group order"),
        after={"order": list(ordered_ids)},
    )


@transaction.atomic
def reorder_tags(group: TagGroup, ordered_ids: Sequence[int], *, actor: Any) -> None:
    if Tag.objects.filter(pk__in=ordered_ids).exclude(group=group).exists():
        raise TaggingError(_("Only tags of “%(group)s” can be reordered here.") % {"group": group})
    _reorder(Tag, ordered_ids)
    _audit(
        AuditAction.GROUP_UPDATED,
        actor=actor,
        source=AssignmentSource.MANUAL,
        group=group,
        object_repr=group.name,
        after={"tag_order": list(ordered_ids)},
    )


def _reorder(model: type[TagGroup] | type[Tag], ordered_ids: Sequence[int]) -> None:
    from django.db.models import Case, IntegerField, Value, When

    ids = [int(i) for i in ordered_ids]
    if not ids:
        return
    model.objects.filter(pk__in=ids).update(
        sort_order=Case(
            *[When(pk=pk, then=Value(i)) for i, pk in enumerate(ids, 1)],
            output_field=IntegerField(),
        )
    )


def _check_room_for_a_tag(group: TagGroup) -> None:
    """One more live (not archived) tag fits in ``group`` and in the company: tags per group, and
    shared (corporate and auto) tags in all. The caller holds the group's row lock."""
    live = Tag.objects.exclude(status=TagStatus.ARCHIVED)
    if (
        group.kind != TagKind.PERSONAL
        and live.exclude(group__kind=TagKind.PERSONAL).count() >= settings.TAGDESK_MAX_TAGS
    ):
        raise LimitExceeded(
            _("The limit of %(limit)d tags is reached.") % {"limit": settings.TAGDESK_MAX_TAGS}
        )
    if live.filter(group=group).count() >= settings.TAGDESK_MAX_TAGS_PER_GROUP:
        raise LimitExceeded(
            _("“%(group)s” already has %(limit)d tags, the most a group may hold.")
            % {"group": group.name, "limit": settings.TAGDESK_MAX_TAGS_PER_GROUP}
        )


def _check_tag_name_free(group: TagGroup, name: str, exclude_pk: int | None = None) -> None:
    clash = Tag.objects.filter(group=group, name_key=fold_name(name))
    if exclude_pk:
        clash = clash.exclude(pk=exclude_pk)
    existing = clash.first()
    if existing is not None:
        message = (
            _("“%(group)s” already has an archived tag “%(name)s”; restore it instead.")
            if existing.status == TagStatus.ARCHIVED
            else _("“%(group)s” already has a tag “%(name)s”.")
        )
        raise InvalidTagName(
            message % {"group": group.name, "name": existing.name}, code="duplicate_name"
        )


@transaction.atomic
def create_tag(
    group: TagGroup,
    name: str,
    *,
    actor: Any,
    colour: str = "",
    description: str = "",
    status: str = TagStatus.ACTIVE,
    sort_order: int | None = None,
    source: str = AssignmentSource.MANUAL,
) -> Tag:
    """Create a tag in ``group``: ``status`` is ``pending`` for proposals that need approval.
    Limits: tags per group and tags in all (archived tags do not count)."""
    name = _valid_name(name)
    if status not in (TagStatus.ACTIVE, TagStatus.PENDING):
        raise TaggingError(_("A new tag is active or pending."))
    group = TagGroup.objects.select_for_update().get(pk=group.pk)
    if group.kind == TagKind.PERSONAL and group.owner_id != _actor_id(actor):
        raise NotFound(_("Tag group %(id)s does not exist.") % {"id": group.pk})
    _check_room_for_a_tag(group)
    _check_tag_name_free(group, name)
    if sort_order is None:
        sort_order = (group.tags.aggregate(m=Max("sort_order"))["m"] or 0) + 1
    tag = Tag(
        group=group,
        name=name,
        colour=colour,
        description=description,
        status=status,
        sort_order=sort_order,
        created_by_id=_actor_id(actor),
    )
    tag.full_clean(exclude=["name_key"], validate_constraints=False)
    try:
        with transaction.atomic():
            tag.save()
    except IntegrityError as exc:  # a concurrent create of the same name
        raise InvalidTagName(
            _("“%(group)s” already has a tag “%(name)s”.") % {"group": group.name, "name": name},
            code="duplicate_name",
        ) from exc
    _audit(
        AuditAction.TAG_CREATED,
        actor=actor,
        source=source,
        tag=tag,
        group=group,
        object_repr=str(tag),
        after=_tag_snapshot(tag),
    )
    return tag


_TAG_FIELDS = {"name", "colour", "description", "sort_order", "group"}


@transaction.atomic
def update_tag(
    tag: Tag, *, actor: Any, source: str = AssignmentSource.MANUAL, **changes: Any
) -> Tag:
    """Rename, recolour, describe, reorder or move a tag to another group of the same kind."""
    unknown = set(changes) - _TAG_FIELDS
    if unknown:
        raise TaggingError(
            _("Cannot change %(fields)s of a tag.") % {"fields": ", ".join(sorted(unknown))}
        )
    tag = Tag.objects.select_for_update().select_related("group").get(pk=tag.pk)
    if tag.group.kind == TagKind.PERSONAL and tag.group.owner_id != _actor_id(actor):
        raise NotFound(_("Tag %(id)s does not exist.") % {"id": tag.pk})
    before = _tag_snapshot(tag)
    target_group = changes.get("group", tag.group)
    if target_group.pk != tag.group_id:
        if target_group.kind != tag.group.kind or target_group.owner_id != tag.group.owner_id:
            raise TaggingError(_("A tag can only move to a group of the same kind and owner."))
        if (
            target_group.exclusive
            and TagAssignment.objects.filter(
                tag__group=target_group, customer__assignments__tag=tag
            ).exists()
        ):
            raise ExclusiveConflict(
                _("Some customers already hold a tag of the exclusive group “%(group)s”.")
                % {"group": target_group.name}
            )
    if "name" in changes:
        changes["name"] = _valid_name(changes["name"])
    if "name" in changes or target_group.pk != tag.group_id:
        _check_tag_name_free(target_group, changes.get("name", tag.name), exclude_pk=tag.pk)
    _save_changes(
        tag,
        changes,
        before=before,
        snapshot=_tag_snapshot,
        action=AuditAction.TAG_UPDATED,
        actor=actor,
        source=source,
        audit_fields=lambda t: {"tag": t, "group": t.group, "object_repr": str(t)},
    )
    return tag


def _set_status(
    tag: Tag,
    status: str,
    action: str,
    *,
    actor: Any,
    allowed_from: set[str],
    reason: str = "",
    **extra: Any,
) -> Tag:
    tag = Tag.objects.select_for_update().select_related("group").get(pk=tag.pk)
    if tag.status not in allowed_from:
        raise TaggingError(
            _("“%(tag)s” is %(status)s; this change is not possible.")
            % {"tag": tag, "status": tag.get_status_display()}
        )
    before = _tag_snapshot(tag)
    tag.status = status
    for key, value in extra.items():
        setattr(tag, key, value)
    tag.save()
    _audit(
        action,
        actor=actor,
        source=AssignmentSource.MANUAL,
        tag=tag,
        group=tag.group,
        object_repr=str(tag),
        before=before,
        after=_tag_snapshot(tag),
        reason=reason,
    )
    return tag


@transaction.atomic
def approve_tag(tag: Tag, *, actor: Any) -> Tag:
    """A pending tag becomes active (tag admins; the policy checks who)."""
    return _set_status(
        tag,
        TagStatus.ACTIVE,
        AuditAction.TAG_APPROVED,
        actor=actor,
        allowed_from={TagStatus.PENDING},
        reviewed_by_id=_actor_id(actor),
    )


@transaction.atomic
def reject_tag(tag: Tag, *, actor: Any, reason: str) -> Tag:
    """A pending tag is archived with the reviewer's reason, which its creator sees."""
    reason = (reason or "").strip()
    if not reason:
        raise TaggingError(_("Give a reason so the proposer knows why."))
    return _set_status(
        tag,
        TagStatus.ARCHIVED,
        AuditAction.TAG_REJECTED,
        actor=actor,
        allowed_from={TagStatus.PENDING},
        reason=reason,
        reviewed_by_id=_actor_id(actor),
        review_note=reason[:255],
        archived_at=timezone.now(),
    )


@transaction.atomic
def archive_tag(tag: Tag, *, actor: Any, reason: str = "") -> Tag:
    """Archive: history and assignments stay; the tag leaves pickers and cannot be added."""
    return _set_status(
        tag,
        TagStatus.ARCHIVED,
        AuditAction.TAG_ARCHIVED,
        actor=actor,
        allowed_from={TagStatus.ACTIVE},
        reason=reason,
        archived_at=timezone.now(),
    )


@transaction.atomic
def restore_tag(tag: Tag, *, actor: Any) -> Tag:
    """Bring an archived tag back (not one that was merged away), if the limits leave room:
    archived tags do not count against them, so a restored one does again."""
    if tag.merged_into_id:
        raise TaggingError(
            _("“%(tag)s” was merged into another tag and cannot be restored.") % {"tag": tag}
        )
    if Tag.objects.filter(pk=tag.pk, status=TagStatus.ARCHIVED).exists():
        _check_room_for_a_tag(TagGroup.objects.select_for_update().get(pk=tag.group_id))
    return _set_status(
        tag,
        TagStatus.ACTIVE,
        AuditAction.TAG_RESTORED,
        actor=actor,
        allowed_from={TagStatus.ARCHIVED},
        archived_at=None,
    )


@transaction.atomic
def delete_tag(tag: Tag, *, actor: Any, confirm: bool = False) -> int:
    """Delete a tag. With assignments this needs ``confirm=True``; every removed assignment and
    the deletion itself are audited. Returns the number of assignments removed."""
    tag = Tag.objects.select_for_update().select_related("group").get(pk=tag.pk)
    if tag.group.kind == TagKind.AUTO and tag.rules.exists():
        raise TaggingError(
            _("“%(tag)s” is the target of a rule; delete the rule first.") % {"tag": tag}
        )
    rows = list(tag.assignments.values_list("customer_id", flat=True))
    if rows and not confirm:
        raise TaggingError(
            ngettext(
                "“%(tag)s” is on %(count)d customer; confirm to delete it anyway.",
                "“%(tag)s” is on %(count)d customers; confirm to delete it anyway.",
                len(rows),
            )
            % {"tag": tag, "count": len(rows)},
            code="confirmation_required",
            details={"assignments": len(rows)},
        )
    now = timezone.now()
    AuditEntry.objects.bulk_create(
        _assignment_audits(
            [(c, tag.pk) for c in rows],
            AuditAction.ASSIGNMENT_REMOVED,
            tags={tag.pk: tag},
            actor=actor,
            source=AssignmentSource.MANUAL,
            reason=_("tag deleted"),
            now=now,
        )
    )
    _audit(
        AuditAction.TAG_DELETED,
        actor=actor,
        source=AssignmentSource.MANUAL,
        tag=tag,
        group=tag.group,
        object_repr=str(tag),
        before={**_tag_snapshot(tag), "assignments": len(rows)},
    )
    Tag.objects.filter(merged_into=tag).update(merged_into=None)
    tag_id = tag.pk  # delete() clears it
    hooks.taxonomy_deleting(tag_ids=[tag_id], actor=actor, source=AssignmentSource.MANUAL)
    tag.delete()
    hooks.assignments_changed(removed=[(c, tag_id) for c in rows])
    return len(rows)


@transaction.atomic
def merge_tags(sources: Iterable[Tag], target: Tag, *, actor: Any) -> int:
    """Merge ``sources`` into ``target`` (docs/taxonomy.md#merge): every customer holding a source
    tag holds the target once, keeping the earliest assignment's author and time; source tags end
    archived with ``merged_into`` = target. Auto tags are not merged (their rules own them). Returns
    the number of assignments added to the target. Audited per assignment and per merged tag; the
    entries store the target as a reference (``after["merged_into"]``), not its name, which readers
    who may not view the target must never see (``tagging.audit_view`` renders "merged into …")."""
    target = Tag.objects.select_for_update().select_related("group").get(pk=target.pk)
    source_list = [t for t in _load_tags(sources) if t.pk != target.pk]
    if not source_list:
        raise TaggingError(_("Choose at least one tag other than the target to merge."))
    if target.status != TagStatus.ACTIVE:
        raise TagNotAssignable(_("The merge target “%(tag)s” must be active.") % {"tag": target})
    for tag in [target, *source_list]:
        if tag.group.kind == TagKind.AUTO:
            raise RuleTagNotAssignable(
                _("“%(tag)s” is an auto tag; change its rule instead of merging.") % {"tag": tag}
            )
        if tag.group.kind == TagKind.PERSONAL and tag.group.owner_id != _actor_id(actor):
            raise NotFound(_("Tag %(id)s does not exist.") % {"id": tag.pk})
        if tag.group.kind != target.group.kind or tag.group.owner_id != target.group.owner_id:
            raise TaggingError(_("Only tags of the same kind (and owner) can be merged."))
    source_ids = [t.pk for t in source_list]
    rows = (
        TagAssignment.objects.select_for_update()
        .filter(tag_id__in=source_ids)
        .order_by("customer_id", "created_at", "pk")
        .values_list("customer_id", "actor_id", "created_at", "expires_at")
    )
    first_by_customer: dict[int, tuple[Any, ...]] = {}
    for customer_id, actor_id, created_at, expires_at in rows:
        first_by_customer.setdefault(customer_id, (actor_id, created_at, expires_at))
    already = set(
        TagAssignment.objects.filter(tag=target, customer_id__in=first_by_customer).values_list(
            "customer_id", flat=True
        )
    )
    to_add = [c for c in first_by_customer if c not in already]
    if target.group.exclusive and to_add:
        clash = (
            TagAssignment.objects.filter(tag__group=target.group, customer_id__in=to_add)
            .exclude(tag_id__in=[target.pk, *source_ids])
            .values_list("customer_id", flat=True)
            .distinct()
            .count()
        )
        if clash:
            raise ExclusiveConflict(
                ngettext(
                    "%(count)d customer already holds another tag of the exclusive group “%(group)s”.",
                    "%(count)d customers already hold another tag of the exclusive group “%(group)s”.",
                    clash,
                )
                % {"count": clash, "group": target.group.name}
            )
    removed = list(
        TagAssignment.objects.filter(tag_id__in=source_ids).values_list(
            "pk", "customer_id", "tag_id"
        )
    )
    TagAssignment.objects.filter(pk__in=[pk for pk, _c, _t in removed]).delete()
    TagAssignment.objects.bulk_create(
        [
            TagAssignment(
                customer_id=c,
                tag=target,
                source=AssignmentSource.MERGE,
                actor_id=first_by_customer[c][0],
                created_at=first_by_customer[c][1],
                expires_at=first_by_customer[c][2],
            )
            for c in to_add
        ],
        batch_size=5000,
    )
    now = timezone.now()
    tags_by_id = {t.pk: t for t in [target, *source_list]}
    pointer = {"merged_into": target.pk}
    AuditEntry.objects.bulk_create(
        _assignment_audits(
            [(c, t) for _pk, c, t in removed],
            AuditAction.ASSIGNMENT_REMOVED,
            tags=tags_by_id,
            actor=actor,
            source=AssignmentSource.MERGE,
            now=now,
            after=pointer,
        )
        + _assignment_audits(
            [(c, target.pk) for c in to_add],
            AuditAction.ASSIGNMENT_ADDED,
            tags=tags_by_id,
            actor=actor,
            source=AssignmentSource.MERGE,
            now=now,
            after=pointer,
        ),
        batch_size=5000,
    )
    for tag in source_list:
        before = _tag_snapshot(tag)
        Tag.objects.filter(pk=tag.pk).update(
            status=TagStatus.ARCHIVED, merged_into=target, archived_at=now
        )
        tag.status = TagStatus.ARCHIVED
        _audit(
            AuditAction.TAG_MERGED,
            actor=actor,
            source=AssignmentSource.MERGE,
            tag=tag,
            group=tag.group,
            object_repr=str(tag),
            before=before,
            after={**_tag_snapshot(tag), **pointer},
        )
    # Saved segments and rules that named a merged tag name the target from now on (their
    # modules register in tagging.hooks; they run in this transaction).
    hooks.tags_merged(source_ids, target.pk)
    hooks.assignments_changed(
        added=[(c, target.pk) for c in to_add], removed=[(c, t) for _pk, c, t in removed]
    )
    return len(to_add)
