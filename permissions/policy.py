"""Who may do what to which tag group, tag and customer (docs/permissions.md). THE policy: the
admin, the API, import, export and segments call these functions; nobody else reads guardian's
tables.

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
- Changing a customer (tagging it, editing it, importing into it, recording its events) needs
  more than seeing it: ``editable_customers`` is the scope without view-only shares. A share
  at ``ShareLevel.VIEW`` is read-only, one at ``EDIT`` lets the grantee change them too, and
  ``view_all_customers`` is read-only beyond the holder's own scope; tag admins change all.
  ``require_customers(user, ids, level=Level.EDIT)`` is the check every write door makes.
- Tags shown on a customer (``customer_tags``): the groups the user may view, and of personal
  tags only the user's own, in every door (admin customer page, filters, segments, export, API).
  Tag admins see other people's personal tags in the taxonomy admin only (``visible_tags``).

Model-level permissions never grant object access (guardian's ``accept_global_perms`` is not
used): only the two named powers above are global.

Every ``visible_*`` function returns a lazy queryset that runs as ONE SQL statement whatever the
number of groups, departments or grants; batch checks are one query. The two global powers are
read from Django's permission cache on the user object (``user.has_perm``: loaded once per user
object, i.e. once per request, and already loaded by the admin's own permission checks), so the
statements stay small and indexable: no "OR the user is a tag admin" evaluated row by row.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import IntEnum
from typing import Any, NamedTuple

from django.contrib.auth.models import Permission
from django.db.models import (
    BooleanField,
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
    CODENAME_LEVELS,
    LEVEL_CODENAMES,
    CustomerShare,
    Department,
    DepartmentGrant,
    DepartmentMembership,
    EmployeeGrant,
    GrantLevel,
    ShareLevel,
)
from tagging.errors import NotFound, PermissionDenied
from tagging.models import Tag, TagGroup, TagKind, TagStatus

__all__ = [
    "CreateDecision",
    "assignable_departments",
    "assignable_owners",
    "require_colleague",
    "require_placement",
    "Denied",
    "Level",
    "NotVisible",
    "can_create_tag",
    "can_manage_group",
    "customer_groups",
    "customer_scope",
    "CustomerScope",
    "customer_tags",
    "editable_customers",
    "global_powers",
    "group_levels",
    "is_tag_admin",
    "load_permissions",
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
    """Cumulative levels on a tag group (docs/permissions.md#levels)."""

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


def _user_department_auth_groups(user: Any) -> QuerySet[Department, Any]:
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


def _granted_q(user: Any, level: Level, field: str = "pk") -> Q:
    """The group id at ``field`` is among those the user holds a grant of at least ``level`` on.
    Two uncorrelated subqueries, which PostgreSQL hashes once per statement."""
    codenames = _codenames_at_least(level)
    by_department = DepartmentGrant.objects.filter(
        permission__codename__in=codenames, group__in=_user_department_auth_groups(user)
    ).values("content_object_id")
    by_employee = EmployeeGrant.objects.filter(
        permission__codename__in=codenames, user=user.pk
    ).values("content_object_id")
    return Q(**{f"{field}__in": by_department}) | Q(**{f"{field}__in": by_employee})


def _group_q(user: Any, level: Level) -> Q:
    """Condition on TagGroup rows: the user holds at least ``level`` on the group."""
    own = Q(kind=TagKind.PERSONAL, owner=user.pk)
    shared = ~Q(kind=TagKind.PERSONAL)
    if is_tag_admin(user):
        # Every shared group up to CREATE; other people's personal groups at VIEW only.
        return Q() if level <= Level.VIEW else own | shared
    return own | (shared & _granted_q(user, level))


def _level_case(user: Any, prefix: str = "") -> Case:
    """SQL CASE giving the user's Level on the group of each row: TagGroup rows (``prefix``
    "") or rows reaching their group through ``prefix`` (e.g. "group__" for Tag)."""
    personal = Q(**{f"{prefix}kind": TagKind.PERSONAL})
    own = personal & Q(**{f"{prefix}owner": user.pk})
    if is_tag_admin(user):
        whens = [
            When(own, then=Value(Level.CREATE)),
            When(personal, then=Value(Level.VIEW)),
        ]
        default = Level.CREATE
    else:
        field = f"{prefix}id" if prefix else "pk"
        whens = [
            When(own, then=Value(Level.CREATE)),
            When(personal, then=Value(Level.NONE)),
            *(
                When(_granted_q(user, level, field), then=Value(level))
                for level in (Level.CREATE, Level.EDIT, Level.VIEW)
            ),
        ]
        default = Level.NONE
    return Case(*whens, default=Value(default), output_field=IntegerField())


def _level(level: Any) -> Level:
    try:
        return Level(int(level))
    except (TypeError, ValueError):
        raise ValueError(f"Unknown permission level {level!r}") from None


# --- global powers ------------------------------------------------------------------------------


def is_tag_admin(user: Any) -> bool:
    """Tag admins manage groups, grants, approvals and rules. Uses Django's per-user permission
    cache (loaded once per user object)."""
    return _active_user(user) and (user.is_superuser or user.has_perm(TAG_ADMIN_PERMISSION))


def may_erase_customers(user: Any) -> bool:
    """Erasing customers (PIPL right to deletion) is for tag admins only, within their customer
    scope (checked by the erasure service with :func:`require_customers`)."""
    return is_tag_admin(user)


def global_powers(user: Any) -> tuple[bool, bool]:
    """(is tag admin, sees all customers): everything about ``user`` that the policy decides in
    Python rather than in SQL. A cache of policy-built SQL must key on it (and on the user)."""
    return is_tag_admin(user), sees_all_customers(user)


def load_permissions(user: Any) -> None:
    """Fill Django's per-user permission caches (``ModelBackend``'s ``_user_perm_cache``,
    ``_group_perm_cache`` and ``_perm_cache``) in ONE query instead of the two ``has_perm``
    would run, so that :func:`global_powers` costs no further query. For the API's token
    authentication, which loads the user afresh on every request. Superusers are left alone:
    ``has_perm`` answers them without a query, and their "all permissions" is every row."""
    if not _active_user(user) or user.is_superuser or hasattr(user, "_perm_cache"):
        return
    fields = ("source", "content_type__app_label", "codename")
    # No ORDER BY (Permission's Meta has one): SQLite refuses it inside a UNION's parts.
    direct = Permission.objects.filter(user=user.pk).annotate(source=Value("user")).order_by()
    via_groups = (
        Permission.objects.filter(group__user=user.pk).annotate(source=Value("group")).order_by()
    )
    rows = direct.values_list(*fields).union(via_groups.values_list(*fields), all=True)
    found: dict[str, set[str]] = {"user": set(), "group": set()}
    for source, app_label, codename in rows:
        found[source].add(f"{app_label}.{codename}")
    user._user_perm_cache = found["user"]
    user._group_perm_cache = found["group"]
    user._perm_cache = found["user"] | found["group"]


def sees_all_customers(user: Any) -> bool:
    return _active_user(user) and (
        user.is_superuser
        or user.has_perm(TAG_ADMIN_PERMISSION)
        or user.has_perm(SEE_ALL_PERMISSION)
    )


# --- groups and tags ----------------------------------------------------------------------------


def visible_groups(
    user: Any, level: Level = Level.VIEW, *, queryset: QuerySet[TagGroup] | None = None
) -> QuerySet[TagGroup]:
    """Tag groups on which ``user`` holds at least ``level``: shared groups by grant, the user's
    own personal groups (any level); tag admins every shared group (up to CREATE) and others'
    personal groups at VIEW only. ``queryset`` (default: all groups) is the one
    narrowed, e.g. ``visible_groups(user, queryset=TagGroup.objects.shared())``. One query."""
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
    queryset: QuerySet[Tag] | None = None,
) -> QuerySet[Tag]:
    """Tags of ``visible_groups(user, level)``; only active ones unless ``include_inactive``
    (pending and archived tags are for management screens, never for pickers). One query."""
    level = _level(level)
    base = Tag.objects.all() if queryset is None else queryset
    if not _active_user(user):
        return base.none()
    groups = TagGroup.objects.filter(_group_q(user, max(level, Level.VIEW))).values("pk")
    tags = base.filter(group_id__in=groups)
    if not include_inactive:
        tags = tags.filter(status=TagStatus.ACTIVE)
    return tags


def _someone_elses_personal(group: TagGroup, user: Any) -> bool:
    return group.kind == TagKind.PERSONAL and group.owner_id != user.pk


def customer_tags(
    user: Any, include_inactive: bool = True, *, queryset: QuerySet[Tag] | None = None
) -> QuerySet[Tag]:
    """The tags ``user`` sees *on customers* (docs/permissions.md#tags-shown-on-a-customer): tags of groups they may view,
    and of personal tags only their own. THE rule for every door that shows, filters, counts or
    exports customers by tag (admin customer page and filters, segments, export, API): a tag
    admin may view other people's personal groups in the taxonomy admin (``visible_tags``) but
    never sees them on a customer. Archived and pending tags are included by default (a
    customer still shows an archived tag it holds). One query."""
    tags = visible_tags(user, include_inactive=include_inactive, queryset=queryset)
    if not _active_user(user):
        return tags
    return tags.exclude(_someone_elses_personal_q(user, "group__"))


def customer_groups(user: Any) -> QuerySet[TagGroup]:
    """The groups of :func:`customer_tags`: groups the user may view, of personal groups only
    their own (per-group figures about customers, e.g. analytics coverage). One query."""
    groups = visible_groups(user)
    if not _active_user(user):
        return groups
    return groups.exclude(_someone_elses_personal_q(user))


def _someone_elses_personal_q(user: Any, prefix: str = "") -> Q:
    return Q(**{f"{prefix}kind": TagKind.PERSONAL}) & ~Q(**{f"{prefix}owner": user.pk})


def group_levels(user: Any, group_ids: Iterable[int] | None = None) -> dict[int, Level]:
    """{group id: Level} for the groups the user can view (absent = invisible). One query: the
    user's grant rows and own personal groups (a UNION), folded to the highest level here."""
    if not _active_user(user):
        return {}
    ids = None
    if group_ids is not None:
        ids = _int_ids(group_ids)
        if not ids:
            return {}
    if ids is not None:
        ids = _storable(ids)
        if not ids:
            return {}
    groups = TagGroup.objects.all() if ids is None else TagGroup.objects.filter(pk__in=ids)
    if is_tag_admin(user):
        return {
            pk: Level.CREATE if kind != TagKind.PERSONAL or owner_id == user.pk else Level.VIEW
            for pk, kind, owner_id in groups.order_by().values_list("pk", "kind", "owner_id")
        }
    shared = ~Q(content_object__kind=TagKind.PERSONAL)
    by_department = DepartmentGrant.objects.filter(
        shared, group__in=_user_department_auth_groups(user)
    )
    by_employee = EmployeeGrant.objects.filter(shared, user=user.pk)
    own = groups.filter(kind=TagKind.PERSONAL, owner=user.pk).annotate(
        codename=Value(LEVEL_CODENAMES[GrantLevel.CREATE], output_field=CharField())
    )
    if ids is not None:
        by_department = by_department.filter(content_object__in=ids)
        by_employee = by_employee.filter(content_object__in=ids)
    rows = (
        by_department.order_by()
        .values_list("content_object_id", "permission__codename")
        .union(
            by_employee.order_by().values_list("content_object_id", "permission__codename"),
            own.order_by().values_list("pk", "codename"),
            all=True,
        )
    )
    levels: dict[int, Level] = {}
    for pk, codename in rows:
        level = Level(CODENAME_LEVELS.get(codename, Level.NONE))
        if level > levels.get(pk, Level.NONE):
            levels[pk] = level
    return levels


def require_tags(
    user: Any, tags_or_ids: Iterable[Any], level: Level, *, on_customers: bool = False
) -> list[Tag]:
    """Load the tags (with their group) in the order given, checking the user holds ``level`` on
    each tag's group. One query. Raises NotVisible for unknown or invisible tags (the message
    gives only the ids the caller sent) and Denied for visible tags below ``level``.
    ``on_customers``: the tags are used to find customers (filters), so only tags of
    :func:`customer_tags` count as visible."""
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
        .filter(pk__in=_storable(wanted))
        .annotate(user_level=_level_case(user, "group__"))
    }
    missing = [
        pk
        for pk in wanted
        if pk not in rows
        or rows[pk].user_level == Level.NONE
        or (on_customers and _someone_elses_personal(rows[pk].group, user))
    ]
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
    if is_tag_admin(user):
        return CreateDecision(True, False)
    codenames = _codenames_at_least(Level.CREATE)
    free_by_department = DepartmentGrant.objects.filter(
        content_object=group.pk,
        permission__codename__in=codenames,
        needs_approval=False,
        group__in=_user_department_auth_groups(user),
    )
    free_by_employee = EmployeeGrant.objects.filter(
        content_object=group.pk,
        permission__codename__in=codenames,
        needs_approval=False,
        user=user.pk,
    )
    row = (
        TagGroup.objects.filter(pk=group.pk)
        .annotate(
            free=Exists(free_by_department) | Exists(free_by_employee),
            granted=Case(
                When(_granted_q(user, Level.CREATE), then=Value(True)),
                default=Value(False),
            ),
        )
        .values_list("free", "granted")
        .first()
    )
    if row is None:
        return CreateDecision(False, False)
    free, granted = row
    if free:
        return CreateDecision(True, False)
    return CreateDecision(bool(granted), bool(granted))


def can_explain_rule(user: Any, group_ids: Iterable[int]) -> bool:
    """May ``user`` see why a rule matches a customer they may view? Tag admins always; others
    when they may view every group the rule touches (its own tag's and those of the tags it
    reads), so an explanation never reveals a tag the user cannot see. One query."""
    if is_tag_admin(user):
        return True
    wanted = set(group_ids)
    if not wanted:
        return False
    return visible_groups(user).filter(pk__in=wanted).count() == len(wanted)


def can_manage_group(user: Any, group: TagGroup) -> bool:
    """Rename, recolour, reorder, archive, merge within ``group`` (CREATE). Tag admins never
    manage someone else's personal group. One query at most."""
    if not _active_user(user) or group is None or group.pk is None:
        return False
    if group.kind == TagKind.PERSONAL:
        return bool(group.owner_id == user.pk)
    if is_tag_admin(user):
        return True
    return group_levels(user, [group.pk]).get(group.pk, Level.NONE) >= Level.CREATE


# --- customers ----------------------------------------------------------------------------------


def _outer_path() -> ExpressionWrapper[OuterRef]:
    """The enclosing query's ``Department.path``, typed so it can be the left side of LIKE."""
    return ExpressionWrapper(OuterRef("path"), output_field=CharField())


def _scope_departments(user: Any, share_level: int = ShareLevel.VIEW) -> QuerySet[Department, Any]:
    """Ids of departments whose customers the user sees: the user's departments, departments
    shared with one of them or with an ancestor of one (at ``share_level`` or above), and all
    their sub-departments."""
    memberships = DepartmentMembership.objects.filter(user=user.pk)
    # Departments shared with a department the user belongs to (or one above it).
    shared = CustomerShare.objects.filter(
        group__in=_user_department_auth_groups(user), level__gte=share_level
    )
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


def visible_customers(
    user: Any, *, queryset: QuerySet[Customer] | None = None
) -> QuerySet[Customer]:
    """The user's customer scope (docs/permissions.md#customer-scope), narrowing ``queryset``
    (default: all customers).

    One query. Whether the user sees all customers is read from Django's permission cache on the
    user object (``sees_all_customers``; loaded once per request, by the admin already), so that
    the statement for everyone else is a plain indexable filter and holders of the power get no
    filter at all: on a million customers an "OR the user is a tag admin" inside the statement
    makes PostgreSQL check every row."""
    customers = Customer.objects.all() if queryset is None else queryset
    if not _active_user(user):
        return customers.none()
    if sees_all_customers(user):
        return customers
    scope = customer_scope(user)
    # IN (uncorrelated subquery), not EXISTS: PostgreSQL hashes it once; a correlated EXISTS
    # under OR is costed per row, which on a million rows also wakes the JIT compiler.
    return customers.filter(Q(department__in=scope.departments) | Q(pk__in=scope.followed))


class CustomerScope(NamedTuple):
    """The parts of a user's customer scope: customers of ``departments`` (ids, sub-departments
    and shares resolved) and the customers ``followed`` (ids) by ``employee`` (the user's id, or
    None). Both querysets are lazy one-query id lists."""

    departments: QuerySet[Department, Any]
    followed: QuerySet[Follower, Any]
    employee: int | None


def customer_scope(user: Any) -> CustomerScope:
    """The two parts :func:`visible_customers` is made of, for a user who does not see all
    customers (check :func:`sees_all_customers` first). The segment index evaluates the scope
    from these (per-department bitmaps, follower ids: docs/segments.md#scope-on-the-index), so
    it is the same scope by construction. Inactive and anonymous users get an empty scope."""
    if not _active_user(user):
        return CustomerScope(
            Department.objects.none().values("pk"),
            Follower.objects.none().values("customer_id"),
            None,
        )
    return CustomerScope(
        _scope_departments(user),
        Follower.objects.filter(employee=user.pk).values("customer_id"),
        user.pk,
    )


def assignable_departments(user: Any) -> QuerySet[Department]:
    """Departments the user may put a customer in (admin form, API, import): every department
    for tag admins; otherwise the user's own departments and their sub-departments. Departments
    merely shared with the user are not among them (a share lets one look at or tag customers,
    not move them), nor is every department for holders of "see all customers" (read-only
    beyond their own scope, as in :func:`editable_customers`). One query."""
    if not _active_user(user):
        return Department.objects.none()
    if is_tag_admin(user):
        return Department.objects.all()
    memberships = DepartmentMembership.objects.filter(user=user.pk)
    return Department.objects.filter(
        Exists(
            memberships.annotate(scope_path=_outer_path()).filter(
                scope_path__startswith=F("department__path")
            )
        )
    )


def assignable_owners(user: Any) -> QuerySet[Any]:
    """Employees the user may make a customer's owner or follower: every active employee for
    tag admins; otherwise the user and the active members of :func:`assignable_departments`.
    One query."""
    from django.contrib.auth import get_user_model

    employees = get_user_model().objects.filter(is_active=True)
    if not _active_user(user):
        return employees.none()
    if is_tag_admin(user):
        return employees
    members = DepartmentMembership.objects.filter(
        department__in=assignable_departments(user)
    ).values("user_id")
    return employees.filter(Q(pk=user.pk) | Q(pk__in=members))


def require_placement(user: Any, *, department: Any = None, owner: Any = None) -> None:
    """Raise :class:`Denied` unless the user may give a customer this department and owner
    (either may be None: not changed). Unknown ids are refused with the same words as ids out of
    scope, so the answer says nothing about what exists. One query per value given."""
    department_id = getattr(department, "pk", department)
    owner_id = getattr(owner, "pk", owner)
    if department_id is not None:
        ids = _int_ids([department_id])
        if not ids or not assignable_departments(user).filter(pk__in=_storable(ids)).exists():
            raise Denied(
                _("You may not put customers in department %(id)s.") % {"id": department_id},
                details={"department": department_id},
            )
    if owner_id is not None:
        ids = _int_ids([owner_id])
        if not ids or not assignable_owners(user).filter(pk__in=_storable(ids)).exists():
            raise Denied(
                _("You may not make employee %(id)s the owner of customers.") % {"id": owner_id},
                details={"owner": owner_id},
            )


def require_colleague(user: Any, employee: Any) -> None:
    """Raise :class:`Denied` unless the employee is among :func:`assignable_owners` (whom the user
    may make a follower or owner of a customer). Unknown ids read the same. One query."""
    employee_id = getattr(employee, "pk", employee)
    ids = _int_ids([employee_id])
    if not ids or not assignable_owners(user).filter(pk__in=_storable(ids)).exists():
        raise Denied(
            _("Employee %(id)s is not in your departments.") % {"id": employee_id},
            details={"employee": employee_id},
        )


def editable_customers(
    user: Any, *, queryset: QuerySet[Customer] | None = None
) -> QuerySet[Customer]:
    """The customers ``user`` may change (tag, edit, import into, record events of), narrowing
    ``queryset``: ``visible_customers`` without view-only shares. Tag admins change all; the
    "see all customers" power is read-only beyond the holder's own scope. One query."""
    customers = Customer.objects.all() if queryset is None else queryset
    if not _active_user(user):
        return customers.none()
    if is_tag_admin(user):
        return customers
    return customers.filter(_editable_q(user))


def _editable_q(user: Any) -> Q:
    """The condition on a customer row of :func:`editable_customers` (for an active user who is
    not a tag admin): uncorrelated IN subqueries that PostgreSQL hashes once."""
    followed = Follower.objects.filter(employee=user.pk).values("customer_id")
    return Q(department__in=_scope_departments(user, ShareLevel.EDIT)) | Q(pk__in=followed)


def require_customers(
    user: Any, customer_ids: Iterable[Any], level: Level = Level.VIEW
) -> list[int]:
    """The ids, de-duplicated in order, after checking every one is in the user's scope (at
    ``level`` EDIT or above: in ``editable_customers``). One query. Raises NotVisible naming the
    missing ids (which the caller sent), then Denied naming the customers the user may only
    view."""
    level = _level(level)
    ids = _int_ids(getattr(c, "pk", c) for c in customer_ids)
    if ids is None:
        raise NotVisible(_("Customer ids must be whole numbers."), details={"customers": []})
    ids = list(dict.fromkeys(ids))
    if not ids:
        return []
    rows = visible_customers(user).filter(pk__in=_storable(ids))
    if level >= Level.EDIT and not is_tag_admin(user):
        # The condition on the row itself, not EXISTS over a second scan of the customers: that
        # self-join was costed at millions, and PostgreSQL's JIT then spent ~0.65 s compiling a
        # 500-customer check that runs in 30 ms (EXPLAIN ANALYZE of the API's batch call).
        editable = ExpressionWrapper(_editable_q(user), output_field=BooleanField())
        found = dict(rows.annotate(editable=editable).values_list("pk", "editable"))
    else:  # viewing, or a tag admin (who may change every customer they see)
        found = dict.fromkeys(rows.values_list("pk", flat=True), True)
    missing = [pk for pk in ids if pk not in found]
    if missing:
        raise NotVisible(
            ngettext(
                "Customer %(ids)s does not exist.", "Customers %(ids)s do not exist.", len(missing)
            )
            % {"ids": ", ".join(map(str, missing[:20]))},
            details={"customers": missing},
        )
    read_only = [pk for pk in ids if not found[pk]]
    if read_only:
        raise Denied(
            ngettext(
                "You may only view customer %(ids)s.",
                "You may only view customers %(ids)s.",
                len(read_only),
            )
            % {"ids": ", ".join(map(str, read_only[:20]))},
            details={"customers": read_only},
        )
    return ids


_MAX_ID = 2**63 - 1


def _storable(ids: list[int]) -> list[int]:
    """The ids a row could have (1..2**63-1); others cannot exist, and some databases refuse
    to compare with them, so they are reported missing without asking."""
    return [pk for pk in ids if 0 < pk <= _MAX_ID]


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
