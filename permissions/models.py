"""Employees, departments and department membership.

Departments form a tree. Each keeps a materialised ``path`` ("/1/4/9/") so "this department and
everything below it" is one indexed prefix query, and an auth ``Group`` that object permissions
(django-guardian) are granted to.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, Group
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import Value
from django.db.models.functions import Concat, Substr
from django.utils.translation import gettext_lazy as _


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
        verbose_name = _("employee")
        verbose_name_plural = _("employees")
        swappable = "AUTH_USER_MODEL"

    def __str__(self) -> str:
        return self.display_name or self.get_full_name() or self.username


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
            parent_path = self.parent.path if self.parent_id else "/"
            new_path = f"{parent_path}{self.pk}/"
            group_name = f"department:{self.pk}"
            if self.auth_group.name != group_name:
                Group.objects.filter(pk=self.auth_group_id).update(name=group_name)
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

    def delete(self, *args, **kwargs):
        if self.department.auth_group_id:
            self.user.groups.remove(self.department.auth_group_id)
        return super().delete(*args, **kwargs)
