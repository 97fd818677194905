"""The base viewset of every `/api/v1/` resource: querysets come from the policy."""

from __future__ import annotations

from typing import Any

from rest_framework.viewsets import GenericViewSet


class ScopedViewSet(GenericViewSet):
    """Querysets come from the policy, never from ``Model.objects`` directly: subclasses define
    ``scoped_queryset(user)``. An object outside it is a 404, whoever owns it."""

    lookup_value_regex = "[0-9]+"
    throttle_scope: str | None = None  # set per action for ScopedThrottle

    def scoped_queryset(self, user):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation has no user
            return self.queryset
        return self.scoped_queryset(self.request.user)

    def validated(self, serializer_class, data=None) -> dict[str, Any]:
        serializer = serializer_class(
            data=self.request.data if data is None else data, context=self.get_serializer_context()
        )
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data
