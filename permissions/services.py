"""Changing who may do what (docs/permissions.md): grants on tag groups, permission templates,
customer sharing, and the two policy-checked taxonomy verbs entry points use (proposing a tag,
reviewing a pending one).

Every function is atomic and writes ``tagging.AuditEntry`` (PERMISSION_GRANTED / REVOKED for
grants and shares; the tagging services audit tags). Grant writes are set-based: a matrix or a
template over many groups is a constant number of statements. Callers (admin, API) check that
the actor is a tag admin with ``policy.is_tag_admin`` before calling the grant functions;
``propose_tag`` and ``review_tag`` check the policy themselves because their outcome depends on
it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.utils.translation import gettext as _

from permissions import policy
from permissions.apps import create_level_permissions
from permissions.models import (
    LEVEL_CODENAMES,
    CustomerShare,
    Department,
    DepartmentGrant,
    DepartmentMembership,
    EmployeeGrant,
    GrantLevel,
    PermissionTemplate,
    ShareLevel,
    User,
)
from tagging import services as tagging_services
from tagging.errors import TaggingError
from tagging.models import (
    AssignmentSource,
    AuditAction,
    AuditEntry,
    Tag,
    TagGroup,
    TagKind,
    TagStatus,
)

__all__ = [
    "GrantSpec",
    "apply_template",
    "delete_department",
    "remove_membership",
    "save_department",
    "save_membership",
    "grant",
    "propose_tag",
    "review_tag",
    "revoke",
    "set_group_grants",
    "share_customers",
    "unshare_customers",
]


@dataclass(frozen=True)
class GrantSpec:
    """One wanted grant: exactly one of ``department`` / ``user``; ``level`` NONE means revoke."""

    level: policy.Level
    department: Department | None = None
    user: User | None = None
    needs_approval: bool = False

    @property
    def key(self) -> tuple[str, int]:
        if self.department is not None and self.user is None:
            return ("department", self.department.pk)
        if self.user is not None and self.department is None:
            return ("user", self.user.pk)
        raise TaggingError(_("A grant is for one department or one employee."))


# --- helpers ------------------------------------------------------------------------------------


def _level_permissions() -> dict[int, Permission]:
    """{level: Permission} for the level codenames on TagGroup."""
    perms = Permission.objects.filter(
        content_type__app_label="tagging",
        content_type__model="taggroup",
        codename__in=LEVEL_CODENAMES.values(),
    )
    found = {p.codename: p for p in perms}
    if len(found) < len(LEVEL_CODENAMES):
        create_level_permissions()
        return _level_permissions()
    return {level: found[codename] for level, codename in LEVEL_CODENAMES.items()}


def _auth_group_id(department: Department) -> int:
    """The department's auth group (grants and shares hang on it; ``Department.save`` always
    makes one)."""
    if department.auth_group_id is None:
        raise TaggingError(_("Department “%(d)s” has no auth group.") % {"d": department})
    return department.auth_group_id


def _check_level(level: Any) -> policy.Level:
    try:
        return policy.Level(int(level))
    except (TypeError, ValueError):
        raise TaggingError(
            _("Unknown permission level “%(level)s”.") % {"level": level}, code="invalid_level"
        ) from None


def _check_groups(groups: Iterable[TagGroup]) -> list[TagGroup]:
    groups = list(dict.fromkeys(groups))
    for group in groups:
        if group.kind == TagKind.PERSONAL:
            raise TaggingError(
                _("“%(group)s” is a personal group; only its owner uses it.") % {"group": group},
                code="personal_group",
            )
    return groups


def _snapshot(
    spec_key: tuple[str, int], label: str, level: int, needs_approval: bool
) -> dict[str, Any]:
    kind, pk = spec_key
    return {
        kind: pk,
        "principal": label,
        "level": GrantLevel(level).name.lower(),
        "needs_approval": needs_approval,
    }


def _existing(group_ids: list[int]) -> dict[tuple[int, str, int], Any]:
    """{(group id, "department"|"user", principal id): grant row} in two queries."""
    rows: dict[tuple[int, str, int], Any] = {}
    for grant_row in DepartmentGrant.objects.filter(content_object_id__in=group_ids).select_related(
        "permission", "group__department"
    ):
        department = grant_row.group.department
        rows[(grant_row.content_object_id, "department", department.pk)] = grant_row
    for employee_row in EmployeeGrant.objects.filter(
        content_object_id__in=group_ids
    ).select_related("permission", "user"):
        rows[(employee_row.content_object_id, "user", employee_row.user_id)] = employee_row
    return rows


def _write(
    groups: list[TagGroup],
    specs: list[GrantSpec],
    *,
    actor: Any,
    replace: bool,
    reason: str = "",
) -> dict[str, int]:
    """Make ``specs`` true on every group (set-based). With ``replace``, grants on those groups
    for principals not in ``specs`` are revoked. Returns counts of granted/changed/revoked."""
    perms = _level_permissions()
    by_key: dict[tuple[str, int], GrantSpec] = {}
    for given in specs:
        by_key[given.key] = given
        if given.level and given.department is not None:
            _auth_group_id(given.department)
    group_ids = [g.pk for g in groups]
    existing = _existing(group_ids)
    create_dept: list[DepartmentGrant] = []
    create_user: list[EmployeeGrant] = []
    audits: list[AuditEntry] = []
    update_dept: list[DepartmentGrant] = []
    update_user: list[EmployeeGrant] = []
    delete_dept: list[int] = []
    delete_user: list[int] = []
    counts = {"granted": 0, "changed": 0, "revoked": 0}

    def audit(
        group: TagGroup,
        action: str,
        key: tuple[str, int],
        label: str,
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        audits.append(
            AuditEntry(
                actor_id=getattr(actor, "pk", None),
                action=action,
                source=AssignmentSource.MANUAL,
                group_id=group.pk,
                object_repr=f"{group.name} → {label}"[:255],
                before=before,
                after=after,
                reason=reason[:255],
            )
        )

    for group in groups:
        wanted_keys = set(by_key)
        if replace:
            for gid, kind, pk in existing:
                if gid == group.pk and (kind, pk) not in wanted_keys:
                    wanted_keys.add((kind, pk))
        for key in wanted_keys:
            spec = by_key.get(key)
            level = _check_level(spec.level) if spec else policy.Level.NONE
            needs_approval = bool(spec.needs_approval) if spec else False
            row = existing.get((group.pk, *key))
            if row is not None:
                label = str(row.group.department if key[0] == "department" else row.user)
                before = _snapshot(key, label, row.level, row.needs_approval)
            else:
                # Without a row the key came from ``specs``, so ``spec`` is set.
                principal = spec and (spec.department if key[0] == "department" else spec.user)
                label = str(principal)
            if level == policy.Level.NONE or spec is None:  # no spec: a revocation (level NONE)
                if row is not None:
                    (delete_dept if key[0] == "department" else delete_user).append(row.pk)
                    audit(group, AuditAction.PERMISSION_REVOKED, key, label, before, None)
                    counts["revoked"] += 1
                continue
            after = _snapshot(key, label, level, needs_approval)
            if row is None:
                if spec.department is not None:
                    create_dept.append(
                        DepartmentGrant(
                            group_id=_auth_group_id(spec.department),
                            content_object=group,
                            permission=perms[level],
                            needs_approval=needs_approval,
                            created_by_id=getattr(actor, "pk", None),
                        )
                    )
                elif spec.user is not None:
                    create_user.append(
                        EmployeeGrant(
                            user_id=spec.user.pk,
                            content_object=group,
                            permission=perms[level],
                            needs_approval=needs_approval,
                            created_by_id=getattr(actor, "pk", None),
                        )
                    )
                audit(group, AuditAction.PERMISSION_GRANTED, key, label, None, after)
                counts["granted"] += 1
            elif before != after:
                row.permission = perms[level]
                row.needs_approval = needs_approval
                (update_dept if key[0] == "department" else update_user).append(row)
                audit(group, AuditAction.PERMISSION_GRANTED, key, label, before, after)
                counts["changed"] += 1
    DepartmentGrant.objects.filter(pk__in=delete_dept).delete()
    EmployeeGrant.objects.filter(pk__in=delete_user).delete()
    DepartmentGrant.objects.bulk_create(create_dept)
    EmployeeGrant.objects.bulk_create(create_user)
    DepartmentGrant.objects.bulk_update(update_dept, ["permission", "needs_approval"])
    EmployeeGrant.objects.bulk_update(update_user, ["permission", "needs_approval"])
    AuditEntry.objects.bulk_create(audits)
    return counts


# --- grants -------------------------------------------------------------------------------------


@transaction.atomic
def grant(
    group: TagGroup,
    *,
    actor: Any,
    level: policy.Level,
    department: Department | None = None,
    user: User | None = None,
    needs_approval: bool = False,
) -> dict[str, int]:
    """Give a department (and its sub-departments) or one employee ``level`` on a shared tag
    group, replacing the level they held; ``Level.NONE`` revokes. Audited when it changes."""
    spec = GrantSpec(_check_level(level), department, user, needs_approval)
    spec.key  # noqa: B018 - validates the principal
    return _write(_check_groups([group]), [spec], actor=actor, replace=False)


@transaction.atomic
def revoke(
    group: TagGroup,
    *,
    actor: Any,
    department: Department | None = None,
    user: User | None = None,
) -> bool:
    """Remove the grant of a department or an employee on ``group``. True if one existed."""
    spec = GrantSpec(policy.Level.NONE, department, user)
    spec.key  # noqa: B018 - validates the principal
    return _write([group], [spec], actor=actor, replace=False)["revoked"] > 0


@transaction.atomic
def set_group_grants(
    group: TagGroup,
    department_levels: Mapping[int, tuple[policy.Level, bool]],
    *,
    actor: Any,
) -> dict[str, int]:
    """The permission matrix: ``{department id: (level, needs_approval)}`` becomes the group's
    department grants (departments absent or at NONE lose theirs). Employee grants stay."""
    group = _check_groups([group])[0]
    departments = Department.objects.in_bulk(list(department_levels))
    unknown = [pk for pk in department_levels if pk not in departments]
    if unknown:
        raise TaggingError(
            _("Department %(ids)s does not exist.") % {"ids": ", ".join(map(str, unknown))},
            code="not_found",
        )
    specs = [
        GrantSpec(_check_level(level), departments[pk], None, bool(approval))
        for pk, (level, approval) in department_levels.items()
    ]
    held = DepartmentGrant.objects.filter(content_object=group).values_list(
        "group__department", flat=True
    )
    for pk in held:
        if pk not in department_levels:
            specs.append(GrantSpec(policy.Level.NONE, Department(pk=pk), None))
    return _write([group], specs, actor=actor, replace=False)


@transaction.atomic
def apply_template(
    template: PermissionTemplate,
    groups: Iterable[TagGroup],
    *,
    actor: Any,
    replace: bool = False,
) -> dict[str, int]:
    """Apply every line of ``template`` to each of ``groups`` at once. With ``replace`` the
    groups keep no grant outside the template. Personal groups are refused."""
    groups = _check_groups(groups)
    if not groups:
        raise TaggingError(_("Choose at least one tag group."))
    entries = list(template.entries.select_related("department", "user"))
    if not entries and not replace:
        raise TaggingError(
            _("The template “%(name)s” has no grants.") % {"name": template.name},
            code="empty_template",
        )
    specs = [
        GrantSpec(_check_level(e.level), e.department, e.user, e.needs_approval) for e in entries
    ]
    return _write(
        groups,
        specs,
        actor=actor,
        replace=replace,
        reason=_("template “%(name)s”") % {"name": template.name},
    )


# --- customer sharing ---------------------------------------------------------------------------


def _share_audit(
    action: str,
    share_from: Department,
    share_to: Department,
    actor: Any,
    *,
    level: int = ShareLevel.VIEW,
    before_level: int | None = None,
) -> None:
    def snapshot(share_level: int) -> dict[str, Any]:
        return {
            "customers_of": share_from.pk,
            "shared_with": share_to.pk,
            "principal": str(share_to),
            "level": ShareLevel(share_level).name.lower(),
        }

    granted = action == AuditAction.PERMISSION_GRANTED
    AuditEntry.objects.create(
        actor_id=getattr(actor, "pk", None),
        action=action,
        source=AssignmentSource.MANUAL,
        object_repr=_("customers of %(from)s → %(to)s") % {"from": share_from, "to": share_to},
        before=snapshot(before_level if before_level is not None else level)
        if not granted or before_level is not None
        else None,
        after=snapshot(level) if granted else None,
    )


@transaction.atomic
def share_customers(
    department: Department,
    *,
    with_department: Department,
    actor: Any,
    level: int = ShareLevel.VIEW,
) -> bool:
    """``with_department`` (and its sub-departments) may view the customers of ``department``
    (and its sub-departments); at ``ShareLevel.EDIT`` also tag and change them (view shares are
    read-only, ``permissions.policy``). Sharing again at another level changes the level
    (audited with before and after). True if the share is new."""
    if department.pk == with_department.pk:
        raise TaggingError(_("A department already sees its own customers."))
    level = ShareLevel(int(level))
    permission = Permission.objects.get(
        content_type__app_label="permissions", codename="view_customers"
    )
    share, created = CustomerShare.objects.select_for_update().get_or_create(
        group_id=_auth_group_id(with_department),
        content_object=department,
        permission=permission,
        defaults={"created_by_id": getattr(actor, "pk", None), "level": level},
    )
    if created:
        _share_audit(
            AuditAction.PERMISSION_GRANTED, department, with_department, actor, level=level
        )
    elif share.level != level:
        before_level = share.level
        CustomerShare.objects.filter(pk=share.pk).update(level=level)
        _share_audit(
            AuditAction.PERMISSION_GRANTED,
            department,
            with_department,
            actor,
            level=level,
            before_level=before_level,
        )
    return created


@transaction.atomic
def unshare_customers(department: Department, *, with_department: Department, actor: Any) -> bool:
    shares = CustomerShare.objects.filter(
        group_id=_auth_group_id(with_department), content_object=department
    )
    level = shares.values_list("level", flat=True).first()
    deleted, _rows = shares.delete()
    if deleted:
        _share_audit(
            AuditAction.PERMISSION_REVOKED,
            department,
            with_department,
            actor,
            level=ShareLevel.VIEW if level is None else level,
        )
    return bool(deleted)


# --- departments --------------------------------------------------------------------------------

_DEPARTMENT_FIELDS = ("name", "parent_id", "sort_order")


def _department_snapshot(department: Department) -> dict[str, Any]:
    return {
        "name": department.name,
        "parent": department.parent_id,
        "parent_name": department.parent.name if department.parent is not None else None,
        "sort_order": department.sort_order,
    }


def _department_audit(
    action: str, department: Department, actor: Any, before: Any, after: Any
) -> None:
    AuditEntry.objects.create(
        actor_id=getattr(actor, "pk", None),
        action=action,
        source=AssignmentSource.MANUAL,
        object_repr=str(department)[:255],
        before=before,
        after=after,
    )


@transaction.atomic
def save_department(department: Department, *, actor: Any) -> Department:
    """Create or change a department (name, parent, order). Who sees which customers follows
    the department tree, so every change is audited with before and after; an unchanged save
    writes nothing to the log. Callers check that ``actor`` may edit departments."""
    before = None
    if department.pk is not None:
        old = Department.objects.select_related("parent").filter(pk=department.pk).first()
        if old is not None:
            before = _department_snapshot(old)
    department.clean()  # no cycles in the tree
    department.save()
    department = Department.objects.select_related("parent").get(pk=department.pk)
    after = _department_snapshot(department)
    if before is None:
        _department_audit(AuditAction.DEPARTMENT_CREATED, department, actor, None, after)
    elif before != after:
        _department_audit(AuditAction.DEPARTMENT_UPDATED, department, actor, before, after)
    return department


def _member_snapshot(membership: DepartmentMembership) -> dict[str, Any]:
    return {
        "department": membership.department_id,
        "department_name": str(membership.department),
        "employee": membership.user_id,
        "employee_name": str(membership.user),
        "leader": membership.is_leader,
    }


def _member_audit(
    action: str,
    membership: DepartmentMembership,
    actor: Any,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    AuditEntry.objects.create(
        actor_id=getattr(actor, "pk", None),
        action=action,
        source=AssignmentSource.MANUAL,
        object_repr=f"{membership.user} · {membership.department}"[:255],
        before=before,
        after=after,
    )


@transaction.atomic
def save_membership(membership: DepartmentMembership, *, actor: Any) -> DepartmentMembership:
    """Put an employee in a department or change their role there (leader), audited: a
    membership decides which customers and grants the employee gets."""
    before = None
    if membership.pk is not None:
        old = (
            DepartmentMembership.objects.select_related("user", "department")
            .filter(pk=membership.pk)
            .first()
        )
        before = _member_snapshot(old) if old is not None else None
    membership.save()
    after = _member_snapshot(membership)
    if before is None:
        _member_audit(AuditAction.MEMBER_ADDED, membership, actor, None, after)
    elif before != after:
        _member_audit(AuditAction.MEMBER_UPDATED, membership, actor, before, after)
    return membership


@transaction.atomic
def remove_membership(membership: DepartmentMembership, *, actor: Any) -> None:
    """Take an employee out of a department, audited."""
    before = _member_snapshot(membership)
    membership.delete()
    _member_audit(AuditAction.MEMBER_REMOVED, membership, actor, before, None)


@transaction.atomic
def delete_department(department: Department, *, actor: Any) -> None:
    """Delete a department without sub-departments: its grants are revoked and its customer
    shares removed (each audited), its members leave it, its customers keep no department, and
    its auth group goes too (so no guardian row outlives it)."""
    if department.children.exists():
        raise TaggingError(
            _("“%(d)s” has sub-departments; move or delete them first.") % {"d": department},
            code="has_children",
        )
    for grant_row in DepartmentGrant.objects.filter(
        group_id=_auth_group_id(department)
    ).select_related("content_object"):
        revoke(grant_row.content_object, actor=actor, department=department)
    for share in CustomerShare.objects.filter(content_object=department).select_related(
        "group__department"
    ):
        unshare_customers(department, with_department=share.group.department, actor=actor)
    for share in CustomerShare.objects.filter(group_id=_auth_group_id(department)).select_related(
        "content_object"
    ):
        unshare_customers(share.content_object, with_department=department, actor=actor)
    auth_group_id = department.auth_group_id
    for membership in department.memberships.select_related("user", "department"):
        remove_membership(membership, actor=actor)
    before = _department_snapshot(department)
    department.delete()
    _department_audit(AuditAction.DEPARTMENT_DELETED, department, actor, before, None)
    if auth_group_id:
        Group.objects.filter(pk=auth_group_id).delete()


# --- tags through the policy --------------------------------------------------------------------


def propose_tag(group: TagGroup, name: str, *, actor: Any, **fields: Any) -> Tag:
    """Create a tag as ``actor`` from an entry point: NotVisible if they cannot see the group,
    Denied without CREATE; the tag is ``pending`` when their grant needs approval."""
    if group.pk not in policy.group_levels(actor, [group.pk]):
        raise policy.NotVisible(_("Tag group %(id)s does not exist.") % {"id": group.pk})
    decision = policy.can_create_tag(actor, group)
    if not decision.allowed:
        raise policy.Denied(_("You may not create tags in “%(group)s”.") % {"group": group.name})
    status = TagStatus.PENDING if decision.needs_approval else TagStatus.ACTIVE
    return tagging_services.create_tag(group, name, actor=actor, status=status, **fields)


def review_tag(tag: Tag, *, actor: Any, approve: bool, reason: str = "") -> Tag:
    """Approve a pending tag, or reject it with a reason its creator sees. Tag admins only."""
    if not policy.is_tag_admin(actor):
        raise policy.Denied(_("Only tag admins approve or reject tags."))
    policy.require_tags(actor, [tag.pk], policy.Level.CREATE)
    if approve:
        return tagging_services.approve_tag(tag, actor=actor)
    return tagging_services.reject_tag(tag, actor=actor, reason=reason)
