"""Who may do what to which tag group, tag and customer (SPEC §5). THE policy: the admin, the
API, import, export and segments call these functions; nobody else reads guardian's tables.

Sources of truth
- Grants: ``permissions.DepartmentGrant`` / ``EmployeeGrant``, guardian object-permission rows
  with a direct foreign key to the tag group, one row per (principal, group) holding the
  highest level. Levels are cumulative (create ⊃ edit ⊃ view).
- A grant to a department covers its sub-departments (a grant to 销售部 reaches 销售部/华东).
  Department trees are read through ``Department.path`` prefixes, never through
  ``auth_user_groups``, so grants follow ``DepartmentMembership`` exactly.
- Grants are per group: a grant on a parent group does not reach its sub-groups.
- Tag admins (``permissions.manage_tags``, or superuser): every shared group at CREATE, other
  people's personal groups at VIEW. Personal groups: their owner at CREATE, nobody else.
- Customer scope: customers of the user's departments and their sub-departments, customers the
  user follows, customers of departments shared with one of the user's departments (or an
  ancestor of one) through ``CustomerShare`` (and their sub-departments). Tag admins and holders
  of ``permissions.view_all_customers`` see all. Seeing a group never widens customer scope.

Model-level permissions never grant object access (guardian's ``accept_global_perms`` is not
used): only the two named powers above are global.

Every ``visible_*`` function returns a lazy queryset that runs as ONE SQL statement whatever the
number of groups, departments or grants; the user's global powers are resolved inside that
statement, so nothing is cached between calls. Batch checks are one query.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any, NamedTuple

from django.contrib.auth.models import Permission
from django.db.models import (
    Case,
    CharField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from customers.models import Customer, Follower
from permissions.models import (
    LEVEL_CODENAMES,
    CustomerShare,
    Department,
    DepartmentGrant,
    DepartmentMembership,
    EmployeeGrant,
    GrantLevel,
)
from tagging.errors import NotFound, PermissionDenied
from tagging.models import Tag, TagGroup, TagKind, TagStatus

__all__ = [
    "CreateDecision",
    "Denied",
    "Level",
    "NotVisible",
    "can_create_tag",
    "can_manage_group",
    "group_levels",
    "is_tag_admin",
    "require_customers",
    "require_tags",
    "sees_all_customers",
    "visible_customers",
    "visible_groups",
    "visible_tags",
]

TAG_ADMIN_PERMISSION = "permissions.manage_tags"
SEE_ALL_PERMISSION = "permissions.view_all_customers"


class Level(IntEnum):
    """Cumulative levels on a tag group (SPEC §5)."""

    NONE = 0
    VIEW = GrantLevel.VIEW.value
    EDIT = GrantLevel.EDIT.value
    CREATE = GrantLevel.CREATE.value


class NotVisible(NotFound):
    """The object does not exist for this user (HTTP 404). The message never names a group the
    user cannot view."""


class Denied(PermissionDenied):
    """The user sees the object but lacks the level for this action (HTTP 403)."""


class CreateDecision(NamedTuple):
    allowed: bool
    needs_approval: bool


# --- building blocks (SQL expressions) ----------------------------------------------------------


def _active_user(user: Any) -> bool:
    return bool(user is not None and getattr(user, "is_authenticated", False) and user.is_active)


def _holds_permission(user: Any, perm: str) -> Exists:
    """EXISTS: the user holds the model-level permission directly or through an auth group."""
    app_label, codename = perm.split(".", 1)
    return Exists(
        Permission.objects.filter(codename=codename, content_type__app_label=app_label).filter(
            Q(user=user.pk) | Q(group__user=user.pk)
        )
    )


def _tag_admin_q(user: Any) -> Q | Exists:
    return (
        Q(pk__isnull=False) if user.is_superuser else _holds_permission(user, TAG_ADMIN_PERMISSION)
    )


def _sees_all_q(user: Any) -> Q | Exists:
    if user.is_superuser:
        return Q(pk__isnull=False)
    return _holds_permission(user, TAG_ADMIN_PERMISSION) | _holds_permission(
        user, SEE_ALL_PERMISSION
    )


def _user_department_auth_groups(user: Any) -> QuerySet:
    """Auth groups of the user's departments and of all their ancestors (grants to a department
    reach its sub-departments)."""
    return Department.objects.filter(
        Exists(
            DepartmentMembership.objects.filter(user=user.pk)
            .annotate(ancestor_path=OuterRef("path"))
            .filter(department__path__startswith=F("ancestor_path"))
        )
    ).values("auth_group_id")


def _codenames_at_least(level: Level) -> list[str]:
    return [codename for lvl, codename in LEVEL_CODENAMES.items() if lvl >= level]


def _granted_q(user: Any, level: Level, group_ref: str = "pk") -> Q:
    """The user holds a grant of at least ``level`` on the group at ``group_ref``."""
    codenames = _codenames_at_least(level)
    by_department = DepartmentGrant.objects.filter(
        content_object=OuterRef(group_ref),
        permission__codename__in=codenames,
        group__in=_user_department_auth_groups(user),
    )
    by_employee = EmployeeGrant.objects.filter(
        content_object=OuterRef(group_ref), permission__codename__in=codenames, user=user.pk
    )
    return Q(Exists(by_department)) | Q(Exists(by_employee))


def _group_q(user: Any, level: Level, prefix: str = "") -> Q:
    """Condition on TagGroup rows (reached through ``prefix``, e.g. "group__") for ``level``."""
    ref = f"{prefix}pk" if prefix else "pk"
    shared = ~Q(**{f"{prefix}kind": TagKind.PERSONAL})
    own = Q(**{f"{prefix}kind": TagKind.PERSONAL, f"{prefix}owner": user.pk})
    admin = _tag_admin_q(user)
    condition = own | (shared & (Q(admin) | _granted_q(user, level, ref)))
    if level <= Level.VIEW:
        condition |= Q(**{f"{prefix}kind": TagKind.PERSONAL}) & Q(admin)
    return condition


def _level_case(user: Any) -> Case:
    """SQL CASE giving the user's Level on the TagGroup row of the query."""
    admin = _tag_admin_q(user)
    shared = ~Q(kind=TagKind.PERSONAL)
    return Case(
        When(Q(kind=TagKind.PERSONAL, owner=user.pk), then=Value(Level.CREATE)),
        When(Q(kind=TagKind.PERSONAL) & Q(admin), then=Value(Level.VIEW)),
        When(Q(kind=TagKind.PERSONAL), then=Value(Level.NONE)),
        When(shared & Q(admin), then=Value(Level.CREATE)),
        When(_granted_q(user, Level.CREATE), then=Value(Level.CREATE)),
        When(_granted_q(user, Level.EDIT), then=Value(Level.EDIT)),
        When(_granted_q(user, Level.VIEW), then=Value(Level.VIEW)),
        default=Value(Level.NONE),
        output_field=IntegerField(),
    )


def _level(level: Any) -> Level:
    try:
        return Level(int(level))
    except (TypeError, ValueError):
        raise ValueError(f"Unknown permission level {level!r}") from None


# --- global powers ------------------------------------------------------------------------------


def is_tag_admin(user: Any) -> bool:
    """Tag admins manage groups, grants, approvals and rules. Uses Django's per-user permission
    cache (one query per request at most)."""
    return _active_user(user) and (user.is_superuser or user.has_perm(TAG_ADMIN_PERMISSION))


def sees_all_customers(user: Any) -> bool:
    return _active_user(user) and (
        user.is_superuser
        or user.has_perm(TAG_ADMIN_PERMISSION)
        or user.has_perm(SEE_ALL_PERMISSION)
    )


# --- groups and tags ----------------------------------------------------------------------------


def visible_groups(
    user: Any, level: Level = Level.VIEW, *, queryset: QuerySet | None = None
) -> QuerySet[TagGroup]:
    """Tag groups on which ``user`` holds at least ``level``: shared groups by grant, the user's
    own personal groups (any level); tag admins every shared group (up to CREATE) and others'
    personal groups at VIEW only. ``queryset`` (default: all groups) is the one
    narrowed, as ``TagGroup.objects.visible_to`` does. One query."""
    level = max(_level(level), Level.VIEW)
    groups = TagGroup.objects.all() if queryset is None else queryset
    if not _active_user(user):
        return groups.none()
    return groups.filter(_group_q(user, level))


def visible_tags(
    user: Any,
    level: Level = Level.VIEW,
    include_inactive: bool = False,
    *,
    queryset: QuerySet | None = None,
) -> QuerySet[Tag]:
    """Tags of ``visible_groups(user, level)``; only active ones unless ``include_inactive``
    (pending and archived tags are for management screens, never for pickers). One query."""
    level = _level(level)
    base = Tag.objects.all() if queryset is None else queryset
    if not _active_user(user):
        return base.none()
    tags = base.filter(_group_q(user, max(level, Level.VIEW), prefix="group__"))
    if not include_inactive:
        tags = tags.filter(status=TagStatus.ACTIVE)
    return tags


def group_levels(user: Any, group_ids: Iterable[int] | None = None) -> dict[int, Level]:
    """{group id: Level} for the groups the user can view (absent = invisible). One query."""
    if not _active_user(user):
        return {}
    groups = TagGroup.objects.all()
    if group_ids is not None:
        ids = _int_ids(group_ids)
        if ids is None:
            return {}
        groups = groups.filter(pk__in=ids)
    rows = (
        groups.annotate(user_level=_level_case(user))
        .filter(user_level__gt=Level.NONE)
        .values_list("pk", "user_level")
    )
    return {pk: Level(level) for pk, level in rows}


def require_tags(user: Any, tags_or_ids: Iterable[Any], level: Level) -> list[Tag]:
    """Load the tags (with their group) in the order given, checking the user holds ``level`` on
    each tag's group. One query. Raises NotVisible for unknown or invisible tags (the message
    gives only the ids the caller sent) and Denied for visible tags below ``level``."""
    level = _level(level)
    wanted = _int_ids(getattr(t, "pk", t) for t in tags_or_ids)
    if wanted is None:
        raise NotVisible(_("Tag ids must be whole numbers."), details={"tags": []})
    wanted = list(dict.fromkeys(wanted))
    if not wanted:
        return []
    if not _active_user(user):
        raise NotVisible(_tags_missing_message(wanted), details={"tags": wanted})
    rows = {
        tag.pk: tag
        for tag in Tag.objects.select_related("group")
        .filter(pk__in=wanted)
        .annotate(user_level=_level_case_for_tag(user))
    }
    missing = [pk for pk in wanted if pk not in rows or rows[pk].user_level == Level.NONE]
    if missing:
        raise NotVisible(_tags_missing_message(missing), details={"tags": missing})
    below = [rows[pk] for pk in wanted if rows[pk].user_level < level]
    if below:
        raise Denied(
            ngettext(
                "You may not %(action)s tags of the group “%(groups)s”.",
                "You may not %(action)s tags of the groups “%(groups)s”.",
                len({t.group_id for t in below}),
            )
            % {
                "action": _ACTION_WORDS[level](),
                "groups": "”, “".join(dict.fromkeys(t.group.name for t in below)),
            },
            details={"tags": [t.pk for t in below]},
        )
    return [rows[pk] for pk in wanted]


_ACTION_WORDS = {
    Level.NONE: lambda: _("see"),
    Level.VIEW: lambda: _("see"),
    Level.EDIT: lambda: _("add or remove"),
    Level.CREATE: lambda: _("manage"),
}


def _level_case_for_tag(user: Any) -> Case:
    """``_level_case`` for Tag rows (through the ``group`` relation)."""
    admin = _tag_admin_q(user)
    personal = Q(group__kind=TagKind.PERSONAL)
    return Case(
        When(personal & Q(group__owner=user.pk), then=Value(Level.CREATE)),
        When(personal & Q(admin), then=Value(Level.VIEW)),
        When(personal, then=Value(Level.NONE)),
        When(Q(admin), then=Value(Level.CREATE)),
        When(_granted_q(user, Level.CREATE, "group_id"), then=Value(Level.CREATE)),
        When(_granted_q(user, Level.EDIT, "group_id"), then=Value(Level.EDIT)),
        When(_granted_q(user, Level.VIEW, "group_id"), then=Value(Level.VIEW)),
        default=Value(Level.NONE),
        output_field=IntegerField(),
    )


def _tags_missing_message(ids: list[int]) -> str:
    shown = ", ".join(map(str, ids[:20]))
    return ngettext("Tag %(ids)s does not exist.", "Tags %(ids)s do not exist.", len(ids)) % {
        "ids": shown
    }


def can_create_tag(user: Any, group: TagGroup) -> CreateDecision:
    """May ``user`` create a tag in ``group``, and does it start pending? Tag admins and owners
    of personal groups create active tags; others need a CREATE grant, and the tag is pending
    when every CREATE grant that applies to them carries ``needs_approval``. One query at most."""
    if not _active_user(user) or group is None or group.pk is None:
        return CreateDecision(False, False)
    if group.kind == TagKind.PERSONAL:
        return CreateDecision(group.owner_id == user.pk, False)
    if group.kind == TagKind.AUTO and not is_tag_admin(user):
        # Auto tags exist for rules, which tag admins write.
        return CreateDecision(False, False)
    if user.is_superuser:
        return CreateDecision(True, False)
    codenames = _codenames_at_least(Level.CREATE)
    row = (
        TagGroup.objects.filter(pk=group.pk)
        .annotate(
            admin=_holds_permission(user, TAG_ADMIN_PERMISSION),
            free=Exists(
                DepartmentGrant.objects.filter(
                    content_object=OuterRef("pk"),
                    permission__codename__in=codenames,
                    needs_approval=False,
                    group__in=_user_department_auth_groups(user),
                )
            )
            | Exists(
                EmployeeGrant.objects.filter(
                    content_object=OuterRef("pk"),
                    permission__codename__in=codenames,
                    needs_approval=False,
                    user=user.pk,
                )
            ),
            granted=Case(
                When(_granted_q(user, Level.CREATE), then=Value(True)),
                default=Value(False),
            ),
        )
        .values_list("admin", "free", "granted")
        .first()
    )
    if row is None:
        return CreateDecision(False, False)
    admin, free, granted = row
    if admin or free:
        return CreateDecision(True, False)
    return CreateDecision(bool(granted), bool(granted))


def can_manage_group(user: Any, group: TagGroup) -> bool:
    """Rename, recolour, reorder, archive, merge within ``group`` (CREATE). Tag admins never
    manage someone else's personal group. One query at most."""
    if not _active_user(user) or group is None or group.pk is None:
        return False
    if group.kind == TagKind.PERSONAL:
        return group.owner_id == user.pk
    if user.is_superuser:
        return True
    return group_levels(user, [group.pk]).get(group.pk, Level.NONE) >= Level.CREATE


# --- customers ----------------------------------------------------------------------------------


def _outer_path() -> ExpressionWrapper:
    """The enclosing query's ``Department.path``, typed so it can be the left side of LIKE."""
    return ExpressionWrapper(OuterRef("path"), output_field=CharField())


def _scope_departments(user: Any) -> QuerySet:
    """Ids of departments whose customers the user sees: the user's departments, departments
    shared with one of them or with an ancestor of one, and all their sub-departments."""
    memberships = DepartmentMembership.objects.filter(user=user.pk)
    # Departments shared with a department the user belongs to (or one above it).
    shared = CustomerShare.objects.filter(group__in=_user_department_auth_groups(user))
    return Department.objects.filter(
        Exists(
            memberships.annotate(scope_path=_outer_path()).filter(
                scope_path__startswith=F("department__path")
            )
        )
        | Exists(
            shared.annotate(scope_path=_outer_path()).filter(
                scope_path__startswith=F("content_object__path")
            )
        )
    ).values("pk")


def visible_customers(user: Any, *, queryset: QuerySet | None = None) -> QuerySet[Customer]:
    """The user's customer scope (SPEC §5), narrowing ``queryset`` (default: all customers).
    One query."""
    customers = Customer.objects.all() if queryset is None else queryset
    if not _active_user(user):
        return customers.none()
    if user.is_superuser:
        return customers
    in_scope = Q(department__in=_scope_departments(user)) | Q(
        Exists(Follower.objects.filter(customer=OuterRef("pk"), employee=user.pk))
    )
    return customers.filter(Q(_sees_all_q(user)) | in_scope)


def require_customers(user: Any, customer_ids: Iterable[Any]) -> list[int]:
    """The ids, de-duplicated in order, after checking every one is in the user's scope. One
    query. Raises NotVisible naming the missing ids (which the caller sent)."""
    ids = _int_ids(getattr(c, "pk", c) for c in customer_ids)
    if ids is None:
        raise NotVisible(_("Customer ids must be whole numbers."), details={"customers": []})
    ids = list(dict.fromkeys(ids))
    if not ids:
        return []
    found = set(visible_customers(user).filter(pk__in=ids).values_list("pk", flat=True))
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise NotVisible(
            ngettext(
                "Customer %(ids)s does not exist.", "Customers %(ids)s do not exist.", len(missing)
            )
            % {"ids": ", ".join(map(str, missing[:20]))},
            details={"customers": missing},
        )
    return ids


def _int_ids(values: Iterable[Any]) -> list[int] | None:
    """Whole-number ids, or None if any value is not one (bools and floats are refused)."""
    ids: list[int] = []
    for value in values:
        if isinstance(value, (bool, float)):
            return None
        try:
            ids.append(int(value))
        except (TypeError, ValueError):
            return None
    return ids
