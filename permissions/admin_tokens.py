"""Admin: API device tokens (docs/api.md#authentication): each employee lists and revokes their
own, tag admins everyone's. Registered by importing it from ``permissions.admin``."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy, ngettext

from permissions import policy
from permissions.models import (
    DeviceToken,
    GrantLevel,
)

LEVEL_CHOICES = [(policy.Level.NONE.value, gettext_lazy("none")), *GrantLevel.choices]

_DEFAULT_PERMISSION_WORDS = {
    "add": gettext_lazy("Can add %(model)s"),
    "change": gettext_lazy("Can change %(model)s"),
    "delete": gettext_lazy("Can delete %(model)s"),
    "view": gettext_lazy("Can view %(model)s"),
}


@admin.register(DeviceToken)
class DeviceTokenAdmin(admin.ModelAdmin):
    """Every employee lists and revokes their own devices' tokens; tag admins everyone's.
    Tokens are issued only by logging in (the key is shown once, to the device)."""

    list_display = ["name", "user", "prefix_display", "created_at", "last_used_at", "expires_at"]
    list_filter = ["expires_at"]
    search_fields = ["name", "user__username", "user__display_name"]
    list_select_related = ["user"]
    readonly_fields = ("user", "name", "prefix_display", "created_at", "last_used_at", "expires_at")
    fields = readonly_fields
    actions = ["revoke_tokens"]

    @admin.display(description=gettext_lazy("token starts with"))
    def prefix_display(self, token: DeviceToken) -> str:
        return f"{token.prefix}…"

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        return queryset if policy.is_tag_admin(request.user) else queryset.filter(user=request.user)

    def _may(self, request, obj) -> bool:
        return request.user.is_staff and (
            obj is None or obj.user_id == request.user.pk or policy.is_tag_admin(request.user)
        )

    def has_module_permission(self, request):
        return request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._may(request, obj)

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # "revoke" says what deleting a token means
        return actions

    @admin.action(description=gettext_lazy("Revoke selected tokens"), permissions=["delete"])
    def revoke_tokens(self, request, queryset):
        count, _by_model = queryset.delete()
        self.message_user(
            request,
            ngettext(
                "%(count)d token revoked: that device must log in again.",
                "%(count)d tokens revoked: those devices must log in again.",
                count,
            )
            % {"count": count},
            messages.SUCCESS,
        )
