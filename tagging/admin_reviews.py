"""The owner's review list of unused personal tags (tagging.services.reviews): keep or archive,
one by one or several at once. Everyone sees only their own tags."""

from __future__ import annotations

from django.contrib import admin, messages
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from tagging import services
from tagging.admin_base import ReadOnlyAdminMixin, StaffAdmin
from tagging.errors import TaggingError
from tagging.models import PersonalTagReview


@admin.register(PersonalTagReview)
class PersonalTagReviewAdmin(ReadOnlyAdminMixin, StaffAdmin):
    list_display = ["tag", "status", "customers", "last_used_at", "listed_at", "decided_at"]
    list_filter = ["status"]
    list_select_related = ["tag__group"]
    list_per_page = 100
    actions = ["keep", "archive"]

    def get_queryset(self, request):
        # Personal tags are private: the owner's own reviews only, whoever asks.
        return super().get_queryset(request).filter(owner=request.user.pk)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def changelist_view(self, request, extra_context=None):
        if "status__exact" not in request.GET and not request.GET.get("_changelist_filters"):
            # Open reviews first: that is the list the owner came for.
            query = request.GET.copy()
            query["status__exact"] = PersonalTagReview.Status.OPEN
            request.GET = query
            request.META["QUERY_STRING"] = query.urlencode()
        return super().changelist_view(request, extra_context)

    def _decide(self, request, queryset, decide, done_message) -> None:
        done, refused = 0, []
        for review in queryset.filter(status=PersonalTagReview.Status.OPEN):
            try:
                decide(review, actor=request.user)
            except TaggingError as exc:
                refused.append(exc.message)
            else:
                done += 1
        if done:
            self.message_user(request, done_message(done), messages.SUCCESS)
        for message in refused:
            self.message_user(request, message, messages.ERROR)
        if not done and not refused:
            self.message_user(request, _("Choose tags that are still to review."), messages.WARNING)

    @admin.action(description=gettext_lazy("Keep the selected tags"))
    def keep(self, request, queryset):
        self._decide(
            request,
            queryset,
            services.keep_personal_tag,
            lambda n: ngettext("%(n)d tag kept.", "%(n)d tags kept.", n) % {"n": n},
        )

    @admin.action(description=gettext_lazy("Archive the selected tags"))
    def archive(self, request, queryset):
        self._decide(
            request,
            queryset,
            services.archive_personal_tag,
            lambda n: ngettext("%(n)d tag archived.", "%(n)d tags archived.", n) % {"n": n},
        )
