"""Admin: the approval queue of proposed tags (docs/permissions.md#approvals): tag admins approve,
or reject with a reason the proposer sees. Registered by importing it from ``permissions.admin``."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db.models import Exists, OuterRef, Q
from django.template.response import TemplateResponse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from permissions import policy, services
from permissions.models import (
    GrantLevel,
    TagProposal,
)
from tagging.admin_base import ReadOnlyAdminMixin
from tagging.audit_view import HIDDEN_GROUP
from tagging.errors import TaggingError
from tagging.models import TagStatus

LEVEL_CHOICES = [(policy.Level.NONE.value, gettext_lazy("none")), *GrantLevel.choices]

_DEFAULT_PERMISSION_WORDS = {
    "add": gettext_lazy("Can add %(model)s"),
    "change": gettext_lazy("Can change %(model)s"),
    "delete": gettext_lazy("Can delete %(model)s"),
    "view": gettext_lazy("Can view %(model)s"),
}


class RejectForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason (the proposer sees it)"),
        max_length=255,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


class ProposalStatusFilter(admin.SimpleListFilter):
    title = gettext_lazy("status")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("pending", _("pending approval")), ("rejected", _("rejected"))]

    def queryset(self, request, queryset):
        if self.value() == "pending":
            return queryset.filter(status=TagStatus.PENDING)
        if self.value() == "rejected":
            return queryset.exclude(status=TagStatus.PENDING)
        return queryset


@admin.register(TagProposal)
class TagProposalAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Tag admins: every pending tag of a group they may manage, to approve or reject.
    Everyone else: their own proposals, pending or rejected with the reviewer's reason."""

    list_display = ["name", "group_name", "created_by", "created_at", "status", "review_note"]
    list_filter = [ProposalStatusFilter]
    search_fields = ["name"]
    actions = ["approve", "reject"]
    list_select_related = ["group", "created_by"]
    fields = ("name", "group_name", "description", "status", "created_by", "review_note")
    readonly_fields = fields

    def has_module_permission(self, request):
        return bool(request.user.is_active and request.user.is_staff)

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def has_review_permission(self, request):
        return policy.is_tag_admin(request.user)

    def get_queryset(self, request):
        qs = super().get_queryset(request).select_related("group")
        rejected = Q(status=TagStatus.ARCHIVED, merged_into__isnull=True) & ~Q(review_note="")
        if policy.is_tag_admin(request.user):
            return qs.filter(
                Q(status=TagStatus.PENDING)
                & Q(group__in=policy.visible_groups(request.user, policy.Level.CREATE))
            )
        # A proposer who lost access to the group still sees their proposal and its review,
        # never the group's name.
        return qs.filter(
            Q(status=TagStatus.PENDING) | rejected, created_by=request.user.pk
        ).annotate(
            td_group_visible=Exists(
                policy.visible_groups(request.user).filter(pk=OuterRef("group_id"))
            )
        )

    @admin.display(description=gettext_lazy("group"), ordering="group__name")
    def group_name(self, obj):
        if getattr(obj, "td_group_visible", True):
            return obj.group.name
        return str(HIDDEN_GROUP)

    @admin.action(description=gettext_lazy("Approve selected tags"), permissions=["review"])
    def approve(self, request, queryset):
        done = 0
        for tag in queryset.filter(status=TagStatus.PENDING):
            try:
                services.review_tag(tag, actor=request.user, approve=True)
            except TaggingError as exc:
                self.message_user(request, str(exc), messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(
                request, _("%(count)d tag(s) approved.") % {"count": done}, messages.SUCCESS
            )

    @admin.action(description=gettext_lazy("Reject selected tags…"), permissions=["review"])
    def reject(self, request, queryset):
        pending = queryset.filter(status=TagStatus.PENDING)
        form = RejectForm(request.POST if "reason" in request.POST else None)
        if form.is_bound and form.is_valid():
            done = 0
            for tag in pending:
                try:
                    services.review_tag(
                        tag, actor=request.user, approve=False, reason=form.cleaned_data["reason"]
                    )
                except TaggingError as exc:
                    self.message_user(request, str(exc), messages.ERROR)
                else:
                    done += 1
            self.message_user(
                request, _("%(count)d tag(s) rejected.") % {"count": done}, messages.SUCCESS
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Reject tags"),
            "tags": pending,
            "form": form,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/permissions/reject_tags.html", context)
