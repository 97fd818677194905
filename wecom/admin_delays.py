"""The review page of held WeCom changes (docs/wecom.md#sync-delay--同步延迟).

Lists the outbox rows of groups with a sync delay that are still waiting: customer, follower,
tags added and removed, who made the change, when it is due; filtered by group. Whoever may edit
a group sees and reviews its changes (``wecom.services.delays``, which checks the policy again):
*Cancel* keeps them from WeCom for good (TagDesk keeps the assignment), *Send now* ends the hold.
Tag admins also see the held changes of a group deleted without them being cancelled (filter
"(deleted group)").
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.db import transaction
from django.http import HttpRequest
from django.utils.translation import gettext_lazy, ngettext

from config.params import is_id
from permissions import policy
from tagging.admin_base import ReadOnlyAdminMixin, StaffAdmin
from wecom.models import WecomHeldChange
from wecom.services import delays


class HeldChangeList(ChangeList):
    """Describes the page's rows in a fixed number of queries (tag names, followers, who)."""

    def get_results(self, request) -> None:
        super().get_results(request)
        reviews = delays.describe(list(self.result_list))
        for row in self.result_list:
            row.review = reviews.get(row.pk)


DELETED = "deleted"
DELETED_GROUP = gettext_lazy("(deleted group)")


class HeldGroupFilter(admin.SimpleListFilter):
    title = gettext_lazy("tag group")
    parameter_name = "group"

    def lookups(self, request, model_admin):
        choices = list(
            delays.reviewable_groups(request.user)
            .filter(wecom_rule__delay_minutes__gt=0)
            .order_by("sort_order", "name")
            .values_list("pk", "name")
        )
        if policy.is_tag_admin(request.user):
            choices.append((DELETED, DELETED_GROUP))
        return choices

    def queryset(self, request, queryset):
        value = self.value()
        if value is None:
            return queryset
        if value == DELETED:
            return queryset.filter(held_group__isnull=True)
        if not is_id(value):
            return queryset.none()
        return queryset.filter(held_group_id=int(value))


@admin.register(WecomHeldChange)
class WecomHeldChangeAdmin(ReadOnlyAdminMixin, StaffAdmin):
    list_display = [
        "customer",
        "follower",
        "tags_added",
        "tags_removed",
        "who",
        "created_at",
        "due",
        "group",
    ]
    list_display_links = None
    list_filter = [HeldGroupFilter]
    list_select_related = ["customer", "held_group"]
    search_fields = ["=userid", "=external_userid", "customer__name"]
    ordering = ["next_attempt_at", "id"]
    actions = ["cancel", "send_now"]
    list_per_page = 100
    show_full_result_count = False

    def _reviews_any(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(
            user.is_active
            and user.is_staff
            and (policy.is_tag_admin(user) or delays.reviewable_groups(user).exists())
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._reviews_any(request)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._reviews_any(request)

    def get_queryset(self, request):
        return delays.held_changes(request.user).select_related("customer", "held_group")

    def get_changelist(self, request, **kwargs):
        return HeldChangeList

    def get_actions(self, request):
        # Django's actions want the change permission, which this read-only page never grants.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions if self._reviews_any(request) else {}

    @admin.display(description=gettext_lazy("follower"))
    def follower(self, obj) -> str:
        review = getattr(obj, "review", None)
        return review.follower if review else obj.userid

    @admin.display(description=gettext_lazy("tags added"))
    def tags_added(self, obj) -> str:
        review = getattr(obj, "review", None)
        return "、".join(review.tags_added) if review and review.tags_added else "—"

    @admin.display(description=gettext_lazy("tags removed"))
    def tags_removed(self, obj) -> str:
        review = getattr(obj, "review", None)
        return "、".join(review.tags_removed) if review and review.tags_removed else "—"

    @admin.display(description=gettext_lazy("due to be sent"), ordering="next_attempt_at")
    def due(self, obj):
        # The row's own hold, or later when an earlier held change of its relationship ends.
        return obj.next_attempt_at

    @admin.display(description=gettext_lazy("tag group"), ordering="held_group__name")
    def group(self, obj) -> str:
        # A group deleted while its changes were held (tag admins only see those).
        return obj.held_group.name if obj.held_group_id else str(DELETED_GROUP)

    @admin.display(description=gettext_lazy("changed by"))
    def who(self, obj) -> str:
        review = getattr(obj, "review", None)
        return review.who if review else "—"

    @admin.action(description=gettext_lazy("Cancel: never send these changes to WeCom"))
    def cancel(self, request, queryset):
        self._review(request, queryset, delays.cancel_held, "cancel")

    @admin.action(description=gettext_lazy("Send these changes to WeCom now"))
    def send_now(self, request, queryset):
        self._review(request, queryset, delays.send_held_now, "send")

    def _review(self, request, queryset, service, what: str) -> None:
        from wecom.tasks import kick_drain

        try:
            count = service(queryset.values_list("pk", flat=True), actor=request.user)
        except policy.Denied as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return
        if count:
            transaction.on_commit(kick_drain)  # rows behind these may go now
        if what == "cancel":
            message = ngettext(
                "%(count)d change cancelled; it will not be sent to WeCom.",
                "%(count)d changes cancelled; they will not be sent to WeCom.",
                count,
            )
        else:
            message = ngettext(
                "%(count)d change released; it is being sent to WeCom.",
                "%(count)d changes released; they are being sent to WeCom.",
                count,
            )
        self.message_user(request, message % {"count": count}, messages.SUCCESS)
