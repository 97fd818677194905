"""Admin for people and permissions: employees, departments (tree, members), grants, customer
shares, permission templates, the per-group permission matrix and the approval queue.

Entry points only: every change goes through ``permissions.services`` (audited); who may do what
comes from ``permissions.policy``. Grants, shares, templates and the matrix are for tag admins;
the approval queue shows tag admins every pending tag and shows everyone else their own
proposals with the reviewer's reason.
"""

from __future__ import annotations

from django import forms
from django.apps import apps
from django.contrib import admin, messages
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config.admin_widgets import SafeAutocompleteMixin
from config.params import is_id
from permissions import policy, services
from permissions.models import (
    LEVEL_CODENAMES,
    CustomerShare,
    Department,
    DepartmentGrant,
    DepartmentMembership,
    EmployeeGrant,
    GrantLevel,
    PermissionTemplate,
    PermissionTemplateEntry,
    User,
)
from tagging.errors import TaggingError
from tagging.models import TagGroup, TagKind

LEVEL_CHOICES = [(policy.Level.NONE.value, gettext_lazy("none")), *GrantLevel.choices]

_DEFAULT_PERMISSION_WORDS = {
    "add": gettext_lazy("Can add %(model)s"),
    "change": gettext_lazy("Can change %(model)s"),
    "delete": gettext_lazy("Can delete %(model)s"),
    "view": gettext_lazy("Can view %(model)s"),
}


def permission_label(permission: Permission) -> str:
    """A permission in the reader's language. Django stores permission names in English
    ("Can add tag group"); the four default ones are rebuilt from the model's translated name,
    TagDesk's own (``Meta.permissions``) are msgids of its catalogue."""
    model = permission.content_type.model_class()
    # A library model without a verbose_name has an untranslated generated one: look it up.
    where = _(str(model._meta.verbose_name)) if model is not None else permission.content_type.model
    action, _sep, model_name = permission.codename.partition("_")
    if model is not None and action in _DEFAULT_PERMISSION_WORDS:
        if model_name == model._meta.model_name:
            name = _DEFAULT_PERMISSION_WORDS[action] % {"model": where}
        else:
            name = _(permission.name)
    else:
        name = _(permission.name)
    try:
        app = apps.get_app_config(permission.content_type.app_label).verbose_name
    except LookupError:
        app = permission.content_type.app_label
    return f"{app} | {where} | {name}"


class PermissionChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj):
        return permission_label(obj)


class TranslatedPermissionsMixin:
    """Permission pickers (employees, auth groups) list permissions in the reader's language."""

    def formfield_for_manytomany(self, db_field, request=None, **kwargs):
        if db_field.related_model is Permission:
            kwargs["form_class"] = PermissionChoiceField
            kwargs.setdefault("queryset", Permission.objects.select_related("content_type"))
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class GrantLevelFilter(admin.SimpleListFilter):
    """Grants by level (view / edit / create), not by Django's whole permission list."""

    title = gettext_lazy("level")
    parameter_name = "level"

    def lookups(self, request, model_admin):
        return GrantLevel.choices

    def queryset(self, request, queryset):
        try:
            level = GrantLevel(int(self.value())) if self.value() else None
        except ValueError:
            return queryset.none()
        if level is None:
            return queryset
        return queryset.filter(permission__codename=LEVEL_CODENAMES[level])


class TagAdminOnlyMixin:
    """Visible and usable by tag admins only (policy.is_tag_admin), whatever model perms say."""

    def has_module_permission(self, request):
        return policy.is_tag_admin(request.user)

    def has_view_permission(self, request, obj=None):
        return policy.is_tag_admin(request.user)

    def has_add_permission(self, request):
        return policy.is_tag_admin(request.user)

    def has_change_permission(self, request, obj=None):
        return policy.is_tag_admin(request.user)

    def has_delete_permission(self, request, obj=None):
        return policy.is_tag_admin(request.user)


# --- employees and departments ------------------------------------------------------------------


class MembershipFormsetMixin:
    """Membership inlines save through the audited services (who belongs where decides which
    customers and grants an employee gets)."""

    def save_formset(self, request, form, formset, change):
        if formset.model is not DepartmentMembership:
            return super().save_formset(request, form, formset, change)
        for membership in formset.save(commit=False):
            services.save_membership(membership, actor=request.user)
        for membership in formset.deleted_objects:
            services.remove_membership(membership, actor=request.user)
        return None


class MembershipInline(SafeAutocompleteMixin, admin.TabularInline):
    model = DepartmentMembership
    extra = 0
    autocomplete_fields = ["user"]
    fields = ["user", "is_leader", "joined_at"]
    readonly_fields = ["joined_at"]
    verbose_name = gettext_lazy("member")
    verbose_name_plural = gettext_lazy("members")


class UserMembershipInline(MembershipInline):
    autocomplete_fields = ["department"]
    fields = ["department", "is_leader", "joined_at"]
    verbose_name = gettext_lazy("department")
    verbose_name_plural = gettext_lazy("departments")


@admin.register(User)
class EmployeeAdmin(MembershipFormsetMixin, TranslatedPermissionsMixin, DjangoUserAdmin):
    list_display = ["username", "display_name", "department_list", "is_staff", "is_active"]
    list_filter = ["is_staff", "is_superuser", "is_active", "departments"]
    search_fields = ["username", "display_name", "first_name", "last_name", "email", "wecom_userid"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (gettext_lazy("Personal info"), {"fields": ("display_name", "wecom_userid", "email")}),
        (
            gettext_lazy("Permissions"),
            {
                "fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions"),
                "description": gettext_lazy(
                    "“Is a tag admin” and “Sees all customers” are under user permissions "
                    "(People and permissions | employee)."
                ),
            },
        ),
        (gettext_lazy("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("username", "display_name", "password1", "password2"),
            },
        ),
    )
    inlines = [UserMembershipInline]

    def has_view_permission(self, request, obj=None):
        # Tag admins pick employees for grants and templates.
        return super().has_view_permission(request, obj) or policy.is_tag_admin(request.user)

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("departments")

    @admin.display(description=gettext_lazy("departments"))
    def department_list(self, obj):
        return "、".join(d.name for d in obj.departments.all())


if admin.site.is_registered(Group):
    admin.site.unregister(Group)


@admin.register(Group)
class AuthGroupAdmin(TranslatedPermissionsMixin, DjangoGroupAdmin):
    """Django's auth groups (each department has one), with translated permission names."""


@admin.register(Department)
class DepartmentAdmin(SafeAutocompleteMixin, MembershipFormsetMixin, admin.ModelAdmin):
    list_display = ["tree_name", "member_count", "parent"]
    search_fields = ["name"]
    autocomplete_fields = ["parent"]
    fields = ["name", "parent", "sort_order"]
    inlines = [MembershipInline]

    def has_view_permission(self, request, obj=None):
        # Tag admins pick departments for grants, shares and templates.
        return super().has_view_permission(request, obj) or policy.is_tag_admin(request.user)

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(n_members=Count("memberships"))

    def save_model(self, request, obj, form, change):
        saved = services.save_department(obj, actor=request.user)
        obj.pk, obj.path, obj.auth_group_id = saved.pk, saved.path, saved.auth_group_id

    def delete_model(self, request, obj):
        try:
            services.delete_department(obj, actor=request.user)
        except TaggingError as exc:
            raise PermissionDenied(str(exc)) from exc

    def delete_queryset(self, request, queryset):
        # Leaves first, so a selected parent goes after its selected children.
        for obj in sorted(queryset, key=lambda d: -d.path.count("/")):
            self.delete_model(request, obj)

    @admin.display(description=gettext_lazy("name"), ordering="path")
    def tree_name(self, obj):
        depth = max(obj.path.count("/") - 2, 0)
        return format_html("{}{}", "\u3000" * depth + ("└ " if depth else ""), obj.name)

    @admin.display(description=gettext_lazy("members"), ordering="n_members")
    def member_count(self, obj):
        return obj.n_members


# --- grants -------------------------------------------------------------------------------------


def _shared_groups():
    return TagGroup.objects.exclude(kind=TagKind.PERSONAL)


class GrantForm(forms.ModelForm):
    level = forms.TypedChoiceField(
        label=gettext_lazy("level"), choices=GrantLevel.choices, coerce=int
    )

    class Meta:
        fields = ["content_object", "needs_approval"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "content_object" in self.fields:
            self.fields["content_object"].queryset = _shared_groups()
        if self.instance.pk:
            self.fields["level"].initial = int(self.instance.level)


class DepartmentGrantForm(GrantForm):
    department = forms.ModelChoiceField(
        label=gettext_lazy("department"), queryset=Department.objects.all()
    )

    class Meta(GrantForm.Meta):
        model = DepartmentGrant

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields.pop("department", None)


class EmployeeGrantForm(GrantForm):
    employee = forms.ModelChoiceField(
        label=gettext_lazy("employee"), queryset=User.objects.filter(is_active=True)
    )

    class Meta(GrantForm.Meta):
        model = EmployeeGrant

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields.pop("employee", None)


class GrantAdminBase(TagAdminOnlyMixin, admin.ModelAdmin):
    """Add and change go through services.grant; delete through services.revoke."""

    principal_field = ""
    list_filter = [GrantLevelFilter, "needs_approval"]
    date_hierarchy = None

    def get_fields(self, request, obj=None):
        return ["content_object", self.principal_field, "level", "needs_approval"]

    def get_readonly_fields(self, request, obj=None):
        return ["content_object", self.principal_field] if obj else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        kwargs["fields"] = ["needs_approval"] if obj else ["content_object", "needs_approval"]
        return super().get_form(request, obj, change, **kwargs)

    @admin.display(description=gettext_lazy("level"), ordering="permission__codename")
    def level_label(self, obj):
        return obj.level.label

    def _principal(self, form, obj):
        raise NotImplementedError

    def save_model(self, request, obj, form, change):
        principal = self._principal(form, obj)
        group = obj.content_object if change else form.cleaned_data["content_object"]
        try:
            services.grant(
                group,
                actor=request.user,
                level=form.cleaned_data["level"],
                needs_approval=form.cleaned_data["needs_approval"],
                **principal,
            )
        except TaggingError as exc:
            raise PermissionDenied(str(exc)) from exc
        saved = self.model.objects.get(content_object=group, **self._lookup(principal))
        for field in self.model._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))

    def _lookup(self, principal):
        raise NotImplementedError

    def delete_model(self, request, obj):
        services.revoke(obj.content_object, actor=request.user, **self._principal(None, obj))

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("content_object"):
            self.delete_model(request, obj)


@admin.register(DepartmentGrant)
class DepartmentGrantAdmin(GrantAdminBase):
    form = DepartmentGrantForm
    principal_field = "department"
    list_display = ["content_object", "department", "level_label", "needs_approval", "created_at"]
    search_fields = ["content_object__name", "group__department__name"]
    list_select_related = ["content_object", "group__department", "permission"]

    @admin.display(description=gettext_lazy("department"), ordering="group__department__path")
    def department(self, obj):
        return obj.group.department

    def _principal(self, form, obj):
        if form is not None and "department" in form.cleaned_data and not obj.pk:
            return {"department": form.cleaned_data["department"]}
        return {"department": obj.group.department}

    def _lookup(self, principal):
        return {"group_id": principal["department"].auth_group_id}

    def get_urls(self):
        return [
            path(
                "matrix/<int:group_id>/",
                self.admin_site.admin_view(self.matrix_view),
                name="permissions_group_matrix",
            ),
            *super().get_urls(),
        ]

    def matrix_view(self, request, group_id: int):
        """Departments x level for one tag group; tag admins edit it."""
        group = TagGroup.objects.filter(pk=group_id).first()
        if group is None or group.pk not in policy.group_levels(request.user, [group_id]):
            raise Http404(_("Tag group %(id)s does not exist.") % {"id": group_id})
        if not policy.is_tag_admin(request.user):
            raise PermissionDenied(_("Only tag admins manage permissions."))
        if group.kind == TagKind.PERSONAL:
            raise Http404(_("Personal tag groups have no grants."))
        departments = list(Department.objects.order_by("path"))
        held = {
            g.group.department.pk: g
            for g in DepartmentGrant.objects.filter(content_object=group).select_related(
                "group__department", "permission"
            )
        }
        errors: list[str] = []
        if request.method == "POST":
            wanted, errors = _parse_matrix(request.POST, departments)
            if not errors:
                try:
                    counts = services.set_group_grants(group, wanted, actor=request.user)
                except TaggingError as exc:
                    errors.append(str(exc))
                else:
                    self.message_user(
                        request,
                        _(
                            "Permissions saved: %(granted)d granted, %(changed)d changed, %(revoked)d revoked."
                        )
                        % counts,
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(request.path)
        rows = []
        for dept in departments:
            grant_row = held.get(dept.pk)
            rows.append(
                {
                    "department": dept,
                    "indent": "\u3000" * max(dept.path.count("/") - 2, 0),
                    "level": int(grant_row.level) if grant_row else 0,
                    "needs_approval": bool(grant_row and grant_row.needs_approval),
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Permissions for “%(group)s”") % {"group": group.name},
            "group": group,
            "rows": rows,
            "levels": LEVEL_CHOICES,
            "errors": errors,
            "employee_grants": EmployeeGrant.objects.filter(content_object=group).select_related(
                "user", "permission"
            ),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/permissions/group_matrix.html", context)


def _parse_matrix(data, departments):
    """{department id: (level, needs_approval)} from the matrix form, plus error messages."""
    wanted, errors = {}, []
    valid = {str(v) for v, _label in LEVEL_CHOICES}
    for dept in departments:
        raw = data.get(f"level_{dept.pk}", "0")
        if raw not in valid:
            errors.append(
                _("“%(value)s” is not a level (department %(dept)s).")
                % {"value": raw[:20], "dept": dept.name}
            )
            continue
        level = int(raw)
        approval = data.get(f"approval_{dept.pk}") == "on"
        if approval and level != policy.Level.CREATE:
            errors.append(
                _("Only a create grant can need approval (department %(dept)s).")
                % {"dept": dept.name}
            )
            continue
        wanted[dept.pk] = (policy.Level(level), approval)
    return wanted, errors


@admin.register(EmployeeGrant)
class EmployeeGrantAdmin(GrantAdminBase):
    form = EmployeeGrantForm
    principal_field = "employee"
    list_display = ["content_object", "user", "level_label", "needs_approval", "created_at"]
    search_fields = ["content_object__name", "user__username", "user__display_name"]
    list_select_related = ["content_object", "user", "permission"]

    @admin.display(description=gettext_lazy("employee"))
    def employee(self, obj):
        return obj.user

    def _principal(self, form, obj):
        if form is not None and "employee" in form.cleaned_data and not obj.pk:
            return {"user": form.cleaned_data["employee"]}
        return {"user": obj.user}

    def _lookup(self, principal):
        return {"user": principal["user"]}


# --- customer sharing ---------------------------------------------------------------------------


class CustomerShareForm(forms.ModelForm):
    shared_with = forms.ModelChoiceField(
        label=gettext_lazy("shared with department"), queryset=Department.objects.all()
    )

    class Meta:
        model = CustomerShare
        fields = ["content_object", "level"]

    def clean(self):
        data = super().clean()
        if data.get("content_object") and data.get("content_object") == data.get("shared_with"):
            raise forms.ValidationError(_("A department already sees its own customers."))
        return data


class CustomerShareLevelForm(forms.ModelForm):
    """Changing a share: only its level."""

    class Meta:
        model = CustomerShare
        fields = ["level"]


@admin.register(CustomerShare)
class CustomerShareAdmin(TagAdminOnlyMixin, admin.ModelAdmin):
    form = CustomerShareForm
    list_display = ["content_object", "shared_with", "level", "created_at"]
    list_filter = ["level"]
    list_select_related = ["content_object", "group__department"]
    search_fields = ["content_object__name", "group__department__name"]
    fields = ["content_object", "shared_with", "level"]

    def get_readonly_fields(self, request, obj=None):
        # The departments of a share are its identity; only its level changes.
        return ["content_object", "shared_with"] if obj is not None else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:
            kwargs["form"] = CustomerShareLevelForm
        return super().get_form(request, obj, change=change, **kwargs)

    @admin.display(description=gettext_lazy("shared with"))
    def shared_with(self, obj):
        return obj.group.department

    def save_model(self, request, obj, form, change):
        if change:
            department, with_department = obj.content_object, obj.group.department
        else:
            department = form.cleaned_data["content_object"]
            with_department = form.cleaned_data["shared_with"]
        services.share_customers(
            department,
            with_department=with_department,
            actor=request.user,
            level=form.cleaned_data["level"],
        )
        saved = CustomerShare.objects.get(
            content_object=department, group_id=with_department.auth_group_id
        )
        for field in CustomerShare._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))

    def delete_model(self, request, obj):
        services.unshare_customers(
            obj.content_object, with_department=obj.group.department, actor=request.user
        )

    def delete_queryset(self, request, queryset):
        for obj in queryset.select_related("content_object", "group__department"):
            self.delete_model(request, obj)


# --- permission templates -----------------------------------------------------------------------


class TemplateEntryInline(SafeAutocompleteMixin, TagAdminOnlyMixin, admin.TabularInline):
    """Lines of a template: tag admins add, change and delete them (the policy decides, not
    Django's model permissions, which a tag admin by ``manage_tags`` does not hold)."""

    model = PermissionTemplateEntry
    extra = 1
    autocomplete_fields = ["department", "user"]
    fields = ["department", "user", "level", "needs_approval"]

    def has_add_permission(self, request, obj=None):
        return policy.is_tag_admin(request.user)


class ApplyTemplateForm(forms.Form):
    groups = forms.ModelMultipleChoiceField(
        label=gettext_lazy("tag groups"),
        queryset=TagGroup.objects.none(),
        widget=forms.CheckboxSelectMultiple,
    )
    replace = forms.BooleanField(
        label=gettext_lazy("Replace"),
        required=False,
        help_text=gettext_lazy("Revoke grants on these groups that the template does not list."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["groups"].queryset = _shared_groups()


@admin.register(PermissionTemplate)
class PermissionTemplateAdmin(TagAdminOnlyMixin, admin.ModelAdmin):
    list_display = ["name", "description", "entry_count", "apply_link"]
    search_fields = ["name"]
    inlines = [TemplateEntryInline]

    def get_queryset(self, request):
        from django.db.models import Count

        return super().get_queryset(request).annotate(n_entries=Count("entries"))

    @admin.display(description=gettext_lazy("grants"), ordering="n_entries")
    def entry_count(self, obj):
        return obj.n_entries

    @admin.display(description="")
    def apply_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:permissions_template_apply", args=[obj.pk]),
            _("Apply to groups…"),
        )

    def get_urls(self):
        return [
            path(
                "<int:template_id>/apply/",
                self.admin_site.admin_view(self.apply_view),
                name="permissions_template_apply",
            ),
            *super().get_urls(),
        ]

    def apply_view(self, request, template_id: int):
        if not policy.is_tag_admin(request.user):
            raise PermissionDenied(_("Only tag admins manage permissions."))
        template = get_object_or_404(PermissionTemplate, pk=template_id)
        initial_ids = [v for v in request.GET.get("groups", "").split(",") if is_id(v)]
        form = ApplyTemplateForm(
            request.POST or None, initial={"groups": initial_ids} if initial_ids else None
        )
        if request.method == "POST" and form.is_valid():
            try:
                counts = services.apply_template(
                    template,
                    form.cleaned_data["groups"],
                    actor=request.user,
                    replace=form.cleaned_data["replace"],
                )
            except TaggingError as exc:
                form.add_error(None, str(exc))
            else:
                self.message_user(
                    request,
                    _(
                        "Template applied: %(granted)d granted, %(changed)d changed, %(revoked)d revoked."
                    )
                    % counts,
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:permissions_permissiontemplate_changelist")
                )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Apply “%(name)s”") % {"name": template.name},
            "template_obj": template,
            "entries": template.entries.select_related("department", "user"),
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/permissions/apply_template.html", context)


# Registered from their own modules (approval queue, device tokens).
from permissions import admin_approvals, admin_tokens  # noqa: E402,F401
