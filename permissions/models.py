"""Employees, departments and department membership.

Departments form a tree. Each keeps a materialised ``path`` ("/1/4/9/") so "this department and
everything below it" is one indexed prefix query, and an auth ``Group`` that object permissions
(django-guardian) are granted to.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractUser, Group, Permission
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Value
from django.db.models.functions import Concat, Substr
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from guardian.models import GroupObjectPermissionBase, UserObjectPermissionBase

from tagging.models import Tag


class User(AbstractUser):
    """An employee. ``display_name`` holds the full Chinese name (张伟) shown everywhere."""

    display_name = models.CharField(_("display name"), max_length=64, blank=True)
    wecom_userid = models.CharField(
        _("WeCom userid"), max_length=64, blank=True, null=True, unique=True
    )
    departments = models.ManyToManyField(
        "permissions.Department",
        through="permissions.DepartmentMembership",
        related_name="members",
        blank=True,
        verbose_name=_("departments"),
    )

    class Meta(AbstractUser.Meta):
        # django-stubs types AbstractUser.Meta's names as str; Django takes lazy text there.
        verbose_name = _("employee")  # type: ignore[assignment]
        verbose_name_plural = _("employees")  # type: ignore[assignment]
        swappable = "AUTH_USER_MODEL"
        # Model-level powers checked by permissions.policy (superusers hold them implicitly).
        permissions = [
            ("manage_tags", _("Is a tag admin (groups, grants, approvals, rules)")),
            ("view_all_customers", _("Sees all customers")),
        ]

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username

    def save(self, *args, **kwargs) -> None:
        # A new password or a deactivation ends every device's API session (set_password marks
        # ``_password``; a rehash on login does not, so it keeps them).
        # (``_password`` is set by AbstractBaseUser.set_password; the stubs do not declare it.)
        changed = getattr(self, "_password", None) is not None
        revoke = self.pk is not None and (changed or not self.is_active)
        super().save(*args, **kwargs)
        if revoke:
            DeviceToken.objects.filter(user=self).delete()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class DeviceTokenQuerySet(models.QuerySet["DeviceToken"]):
    def issue(self, user, name: str) -> tuple[DeviceToken, str]:
        """A new token for one device of ``user``; returns it with its key, which is shown once
        and never stored (only its SHA-256). Logging in again with the same device name replaces
        that device's token; beyond TAGDESK_MAX_TOKENS_PER_USER the least recently used go."""
        key = secrets.token_hex(20)  # 160 bits, 40 characters like the tokens clients know
        now = timezone.now()
        name = (name or "").strip()[:64] or str(_("API client"))
        with transaction.atomic():
            self.filter(user=user, name=name).delete()
            keep = settings.TAGDESK_MAX_TOKENS_PER_USER - 1
            stale = self.filter(user=user).order_by(
                models.F("last_used_at").desc(nulls_last=True), "-created_at"
            )[keep:]
            self.filter(pk__in=list(stale.values_list("pk", flat=True))).delete()
            token = self.create(
                user=user,
                name=name,
                digest=_digest(key),
                prefix=key[:8],
                last_used_at=now,  # the login itself is the first use
                expires_at=now + DeviceToken.lifetime(),
            )
        return token, key

    def for_key(self, key: str) -> DeviceToken | None:
        return self.select_related("user").filter(digest=_digest(key)).first()


class DeviceToken(models.Model):
    """One API token per device (app login), with a name and a sliding expiry.

    Only the SHA-256 of the key is stored (as django-rest-knox does): a copy of the database
    gives no usable token. Each use within the lifetime pushes the expiry out again
    (TAGDESK_TOKEN_TTL_DAYS). A password change or deactivation deletes every token of the user.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="device_tokens",
        verbose_name=_("employee"),
    )
    name = models.CharField(_("device"), max_length=64)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(_("token starts with"), max_length=8, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    expires_at = models.DateTimeField(_("expires"), db_index=True)

    objects = DeviceTokenQuerySet.as_manager()

    # Sliding expiry writes at most once a minute per token, not on every request.
    REFRESH_INTERVAL = dt.timedelta(seconds=60)

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["user", "-created_at"]
        indexes = [models.Index(fields=["user", "name"], name="devicetoken_user_name")]

    def __str__(self) -> str:
        return f"{self.user} · {self.name} · {self.prefix}…"

    @staticmethod
    def lifetime() -> dt.timedelta:
        return dt.timedelta(days=settings.TAGDESK_TOKEN_TTL_DAYS)

    def is_expired(self, now: dt.datetime | None = None) -> bool:
        return (now or timezone.now()) >= self.expires_at

    def touch(self, now: dt.datetime) -> None:
        """Slide the expiry after a use (conditional: an expired or revoked token stays so)."""
        if self.last_used_at is not None and now - self.last_used_at < self.REFRESH_INTERVAL:
            return
        expires = now + self.lifetime()
        DeviceToken.objects.filter(pk=self.pk, expires_at__gt=now).update(
            last_used_at=now, expires_at=expires
        )
        self.last_used_at, self.expires_at = now, expires


class Department(models.Model):
    name = models.CharField(_("name"), max_length=64)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent department"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    path = models.CharField(_("path"), max_length=255, editable=False, db_index=True, default="")
    sort_order = models.PositiveIntegerField(_("order"), default=0)
    auth_group = models.OneToOneField(
        Group, on_delete=models.PROTECT, editable=False, related_name="department", null=True
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("department")
        verbose_name_plural = _("departments")
        ordering = ["path"]
        # Object permission (guardian, CustomerShare rows): another department sees its customers.
        permissions = [("view_customers", _("Can view the department's customers"))]
        constraints = [
            models.UniqueConstraint(
                fields=["parent", "name"], name="department_unique_name_in_parent"
            ),
            models.UniqueConstraint(
                fields=["name"],
                condition=models.Q(parent__isnull=True),
                name="department_unique_root_name",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        with transaction.atomic():
            if self.auth_group_id is None:
                self.auth_group = Group.objects.create(name=f"department:{self.name}:{id(self)}")
            old_path = self.path
            super().save(*args, **kwargs)
            parent_path = self.parent.path if self.parent is not None else "/"
            new_path = f"{parent_path}{self.pk}/"
            group_name = f"department:{self.pk}"
            auth_group = self.auth_group  # created above when missing
            if auth_group is not None and auth_group.name != group_name:
                Group.objects.filter(pk=auth_group.pk).update(name=group_name)
            if new_path != old_path:
                Department.objects.filter(pk=self.pk).update(path=new_path)
                self.path = new_path
                if old_path:
                    # Re-root the subtree in one statement.
                    Department.objects.filter(path__startswith=old_path).exclude(pk=self.pk).update(
                        path=Concat(Value(new_path), Substr("path", len(old_path) + 1))
                    )

    def clean(self) -> None:
        if self.pk and self.parent_id:
            ancestor = self.parent
            while ancestor is not None:
                if ancestor.pk == self.pk:
                    raise ValidationError(
                        {"parent": _("A department cannot be placed under itself.")}
                    )
                ancestor = ancestor.parent

    def descendants(self, include_self: bool = True) -> models.QuerySet[Department]:
        qs = Department.objects.filter(path__startswith=self.path)
        return qs if include_self else qs.exclude(pk=self.pk)


class DepartmentMembership(models.Model):
    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    department = models.ForeignKey(Department, on_delete=models.CASCADE, related_name="memberships")
    is_leader = models.BooleanField(_("leader"), default=False)
    joined_at = models.DateTimeField(_("joined"), auto_now_add=True)

    class Meta:
        verbose_name = _("department membership")
        verbose_name_plural = _("department memberships")
        constraints = [
            models.UniqueConstraint(fields=["user", "department"], name="membership_unique"),
        ]
        indexes = [models.Index(fields=["department", "user"], name="membership_dept_user")]

    def __str__(self) -> str:
        return f"{self.user} @ {self.department}"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        # Membership of the department's auth group is what guardian grants follow.
        if self.department.auth_group_id:
            self.user.groups.add(self.department.auth_group_id)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        if self.department.auth_group_id:
            self.user.groups.remove(self.department.auth_group_id)
        return super().delete(*args, **kwargs)


# --- Grants (django-guardian object permissions with direct foreign keys) ---------------------
#
# A grant gives a department (through its auth group) or one employee a level on a tag group.
# Each grant is ONE guardian row whose permission is the level's codename (see GrantLevel); levels
# are cumulative, so ``permissions.policy`` reads "level >= edit" as "codename in (edit, create)".
# Nobody but ``permissions.services`` writes these rows and nobody but ``permissions.policy``
# reads them. A department grant also covers the department's sub-departments.


class GrantLevel(models.IntegerChoices):
    """The levels of docs/permissions.md#levels, cumulative. ``permissions.policy.Level`` is the
    same enum."""

    VIEW = 1, _("view")
    EDIT = 2, _("edit")
    CREATE = 3, _("create")

    @property
    def codename(self) -> str:
        return LEVEL_CODENAMES[self]

    @classmethod
    def from_codename(cls, codename: str) -> GrantLevel:
        return CODENAME_LEVELS[codename]


# Permission rows on tagging.TagGroup's content type (created by permissions.apps on migrate).
LEVEL_CODENAMES = {
    GrantLevel.VIEW: "level_view",
    GrantLevel.EDIT: "level_edit",
    GrantLevel.CREATE: "level_create",
}
CODENAME_LEVELS = {codename: level for level, codename in LEVEL_CODENAMES.items()}
LEVEL_PERMISSION_NAMES = {
    GrantLevel.VIEW: _("Can see the group, its tags and who carries them"),
    GrantLevel.EDIT: _("Can add and remove the group's tags on customers"),
    GrantLevel.CREATE: _("Can create, rename, reorder, archive and merge the group's tags"),
}


class GrantFields(models.Model):
    """What every grant row carries besides guardian's (principal, permission, object)."""

    needs_approval = models.BooleanField(
        _("needs approval"),
        default=False,
        help_text=_("Tags created under this grant stay pending until a tag admin approves them."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        verbose_name=_("granted by"),
    )
    created_at = models.DateTimeField(_("granted"), auto_now_add=True)

    # The foreign key comes from guardian's base class, listed first by every concrete grant.
    permission: Permission

    class Meta:
        abstract = True

    @property
    def level(self) -> GrantLevel:
        return GrantLevel.from_codename(self.permission.codename)


class DepartmentGrant(GroupObjectPermissionBase, GrantFields):
    """A department's level on a tag group (guardian row for the department's auth group)."""

    content_object = models.ForeignKey(
        "tagging.TagGroup",
        on_delete=models.CASCADE,
        related_name="department_grants",
        verbose_name=_("tag group"),
    )

    class Meta(GroupObjectPermissionBase.Meta):
        verbose_name = _("department grant")
        verbose_name_plural = _("department grants")
        constraints = [
            models.UniqueConstraint(
                fields=["group", "content_object"], name="department_grant_one_level"
            ),
        ]
        indexes = [models.Index(fields=["content_object", "group"], name="department_grant_obj")]

    def __str__(self) -> str:
        return f"{self.group} · {self.content_object} · {self.level.label}"


class EmployeeGrant(UserObjectPermissionBase, GrantFields):
    """One employee's level on a tag group (guardian row for the user)."""

    content_object = models.ForeignKey(
        "tagging.TagGroup",
        on_delete=models.CASCADE,
        related_name="employee_grants",
        verbose_name=_("tag group"),
    )

    class Meta(UserObjectPermissionBase.Meta):
        verbose_name = _("employee grant")
        verbose_name_plural = _("employee grants")
        constraints = [
            models.UniqueConstraint(
                fields=["user", "content_object"], name="employee_grant_one_level"
            ),
        ]
        indexes = [models.Index(fields=["content_object", "user"], name="employee_grant_obj")]

    def __str__(self) -> str:
        return f"{self.user} · {self.content_object} · {self.level.label}"


class ShareLevel(models.IntegerChoices):
    """What a customer share lets the grantee do (``permissions.policy``): ``view`` is read-only
    (see the customers and their tags, filter and export them); ``edit`` also tags them, edits
    them, imports into them and records their events."""

    VIEW = 1, _("view")
    EDIT = 2, _("edit")


class CustomerShare(GroupObjectPermissionBase):
    """Cross-department sharing: the grantee department (``group``, its auth group) may view (or,
    at ``level`` edit, also change) the customers of ``content_object`` (and of its
    sub-departments). Guardian row with permission ``permissions.view_customers`` on Department.
    Covers the grantee's sub-departments too."""

    content_object = models.ForeignKey(
        Department,
        on_delete=models.CASCADE,
        related_name="customer_shares",
        verbose_name=_("department whose customers are shared"),
    )
    level = models.PositiveSmallIntegerField(
        _("level"),
        choices=ShareLevel.choices,
        default=ShareLevel.VIEW,
        help_text=_("View is read-only; edit also lets the department tag and change them."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        verbose_name=_("shared by"),
    )
    created_at = models.DateTimeField(pgettext_lazy("time", "shared"), auto_now_add=True)

    class Meta(GroupObjectPermissionBase.Meta):
        verbose_name = _("customer share")
        verbose_name_plural = _("customer shares")

    def __str__(self) -> str:
        return f"{self.content_object} → {self.group} ({self.get_level_display()})"


# --- Permission templates -------------------------------------------------------------------


class PermissionTemplate(models.Model):
    """A named set of grants applied to many tag groups at once (permissions.services)."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)

    class Meta:
        verbose_name = _("permission template")
        verbose_name_plural = _("permission templates")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class PermissionTemplateEntry(models.Model):
    """One line of a template: a department or an employee, a level, needs_approval."""

    template = models.ForeignKey(
        PermissionTemplate, on_delete=models.CASCADE, related_name="entries"
    )
    department = models.ForeignKey(
        Department,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("department"),
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("employee"),
    )
    level = models.PositiveSmallIntegerField(_("level"), choices=GrantLevel.choices)
    needs_approval = models.BooleanField(_("needs approval"), default=False)

    class Meta:
        verbose_name = _("template grant")
        verbose_name_plural = _("template grants")
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(department__isnull=False, user__isnull=True)
                    | models.Q(department__isnull=True, user__isnull=False)
                ),
                name="template_entry_one_principal",
                violation_error_message=_("Choose a department or an employee, not both."),
            ),
            models.UniqueConstraint(
                fields=["template", "department"],
                condition=models.Q(department__isnull=False),
                name="template_entry_unique_department",
                violation_error_message=_("This template already has a line for the department."),
            ),
            models.UniqueConstraint(
                fields=["template", "user"],
                condition=models.Q(user__isnull=False),
                name="template_entry_unique_user",
                violation_error_message=_("This template already has a line for the employee."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.department or self.user}: {self.get_level_display()}"


class TagProposal(Tag):
    """The approval queue's view of tags (admin only): pending proposals and rejected ones."""

    class Meta:
        proxy = True
        verbose_name = _("tag proposal")
        verbose_name_plural = _("approval queue")
