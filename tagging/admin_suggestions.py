"""Admin page of tag combination suggestions (docs/suggestions.md), for tag admins.

Lists the pairs and triples of the newest report with their counts; the actions accept one as a
saved segment or dismiss it (``tagging.suggestion_actions``, audited), and "Recompute now"
queues a report (``tagging.tasks.queue_suggestion_report``). Views only adapt: check the
policy, call one service per suggestion, report the outcome.
"""

from __future__ import annotations

import contextvars

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from permissions import policy
from tagging import suggestion_actions, suggestions
from tagging.admin_base import ReadOnlyAdminMixin
from tagging.errors import TaggingError
from tagging.models import CombinationSuggestion, SuggestionReport, Tag, TagKind
from tagging.tasks import queue_suggestion_report

# The tags named on the page being rendered, loaded once per request (list_display callables
# get only the object).
_page_tags: contextvars.ContextVar[dict[int, Tag]] = contextvars.ContextVar("suggestion_tags")


@admin.register(CombinationSuggestion)
class CombinationSuggestionAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    change_list_template = "admin/tagging/combinationsuggestion/change_list.html"
    list_display = [
        "combination",
        "size",
        "support",
        "share",
        "confidence_percent",
        "lift_value",
        "status",
        "decided_by",
        "decided_at",
        "segment_link",
    ]
    list_filter = ["status", "size"]
    list_select_related = ["decided_by", "segment"]
    actions = ["accept_as_segment", "dismiss"]
    list_display_links = None

    def has_module_permission(self, request):
        return (
            request.user.is_active and request.user.is_staff and policy.is_tag_admin(request.user)
        )

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def get_urls(self):
        return [
            path(
                "recompute/",
                self.admin_site.admin_view(self.recompute_view),
                name="tagging_combinationsuggestion_recompute",
            ),
            *super().get_urls(),
        ]

    def get_actions(self, request):
        # Actions are changes, though the model admin is read-only for Django's forms.
        actions = super().get_actions(request)
        return actions if self.has_module_permission(request) else {}

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        shared = Tag.objects.exclude(group__kind=TagKind.PERSONAL).select_related("group")
        token = _page_tags.set(shared.in_bulk())
        try:
            response = super().changelist_view(
                request,
                {
                    **(extra_context or {}),
                    "report": suggestions.latest_report(),
                    "pending": SuggestionReport.objects.filter(
                        status__in=[SuggestionReport.Status.QUEUED, SuggestionReport.Status.RUNNING]
                    ).first(),
                    "last_failed": SuggestionReport.objects.filter(
                        status=SuggestionReport.Status.FAILED
                    ).first(),
                },
            )
            if hasattr(response, "render"):
                response.render()
            return response
        finally:
            _page_tags.reset(token)

    @admin.display(description=gettext_lazy("tags"))
    def combination(self, obj):
        return suggestion_actions.describe(obj, _page_tags.get({}))

    @admin.display(description=gettext_lazy("share of customers"), ordering="support_ratio")
    def share(self, obj):
        return f"{obj.support_ratio:.2%}"

    @admin.display(description=gettext_lazy("confidence"), ordering="confidence")
    def confidence_percent(self, obj):
        return f"{obj.confidence:.0%}"

    @admin.display(description=gettext_lazy("lift"), ordering="lift")
    def lift_value(self, obj):
        return f"{obj.lift:.2f}"

    @admin.display(description=gettext_lazy("segment"))
    def segment_link(self, obj):
        if obj.segment_id is None:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:tagging_segment_change", args=[obj.segment_id]),
            obj.segment,
        )

    def _decide(self, request, queryset, verb, done_message):
        done, failed = 0, []
        for suggestion in queryset.order_by("pk"):
            try:
                verb(suggestion, actor=request.user)
            except TaggingError as exc:
                failed.append(f"{suggestion_actions.describe(suggestion)}: {exc.message}")
            else:
                done += 1
        if done:
            self.message_user(request, done_message(done), messages.SUCCESS)
        for message in failed:
            self.message_user(request, message, messages.ERROR)

    @admin.action(description=gettext_lazy("Accept as segments (one saved segment each)"))
    def accept_as_segment(self, request, queryset):
        self._decide(
            request,
            queryset,
            suggestion_actions.accept_as_segment,
            lambda n: (
                ngettext(
                    "%(n)d segment created (under Segments).",
                    "%(n)d segments created (under Segments).",
                    n,
                )
                % {"n": n}
            ),
        )

    @admin.action(description=gettext_lazy("Dismiss (will not be suggested again)"))
    def dismiss(self, request, queryset):
        self._decide(
            request,
            queryset,
            suggestion_actions.dismiss_combination,
            lambda n: (
                ngettext("%(n)d suggestion dismissed.", "%(n)d suggestions dismissed.", n)
                % {"n": n}
            ),
        )

    def recompute_view(self, request):
        if not self.has_module_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        report = queue_suggestion_report(actor=request.user)
        report.refresh_from_db()
        if report.status == SuggestionReport.Status.FAILED:
            self.message_user(request, report.error or _("The computation failed."), messages.ERROR)
        elif report.status == SuggestionReport.Status.DONE:
            self.message_user(
                request,
                _("Recomputed: %(n)d suggestions from %(customers)d customers.")
                % {"n": report.suggestions, "customers": report.customers},
                messages.SUCCESS,
            )
        else:
            self.message_user(
                request,
                _("The suggestions are being recomputed in the background; reload in a minute."),
                messages.INFO,
            )
        return HttpResponseRedirect(reverse("admin:tagging_combinationsuggestion_changelist"))
