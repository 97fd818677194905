"""DRF permission classes; each asks ``permissions.policy``, never guardian directly."""

from rest_framework.permissions import BasePermission

from permissions import policy


class IsTagAdmin(BasePermission):
    message = "Only tag administrators may use this endpoint."

    def has_permission(self, request, view) -> bool:
        return bool(request.user and request.user.is_authenticated) and policy.is_tag_admin(
            request.user
        )
