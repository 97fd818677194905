"""The "Retry the selected dead letters" action shared by the WeCom outbox and the CRM webhook
deliveries: the same refusal (tag admins only), the same message, the drain kicked after commit."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib import admin, messages
from django.db import transaction
from django.utils.translation import gettext_lazy, ngettext

from permissions import policy


class DeadLetterRetryMixin:
    """For a ModelAdmin of a queue (with ``actions = ["retry"]``): set ``dead_status`` and
    define ``retry_dead(ids)`` (the service; returns how many rows were queued again) and
    ``kick()`` (schedules the drain)."""

    dead_status: str

    def retry_dead(self, ids: Iterable[int]) -> int:
        raise NotImplementedError

    def kick(self) -> None:
        raise NotImplementedError

    def get_actions(self, request):
        actions = super().get_actions(request)
        return actions if policy.is_tag_admin(request.user) else {}

    @admin.action(description=gettext_lazy("Retry the selected dead letters"))
    def retry(self, request, queryset):
        count = self.retry_dead(
            queryset.filter(status=self.dead_status).values_list("pk", flat=True)
        )
        if count:
            transaction.on_commit(self.kick)
        self.message_user(
            request,
            ngettext(
                "%(count)d dead letter queued again.", "%(count)d dead letters queued again.", count
            )
            % {"count": count},
            messages.SUCCESS,
        )
