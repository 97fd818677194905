"""Admin: the append-only audit log (docs/taxonomy.md#assignments-and-history), read-only, scoped
and rendered through ``tagging.audit_view``. Registered by importing it from ``tagging.admin``."""

from __future__ import annotations

from django.contrib import admin
from django.db.models import Q
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy

from permissions import policy
from tagging import admin_accuracy, admin_reviews, services  # noqa: F401  (register their admins)
from tagging.admin_base import (
    ReadOnlyAdminMixin,
    RenderedAuditChangeList,
    StaffAdmin,
    WindowedCountMixin,
    in_customer_scope,
    person,
    visible_group_ids,
)
from tagging.audit_view import render_entries
from tagging.models import (
    AssignmentSource,
    AuditEntry,
)

Level = policy.Level


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdminMixin, WindowedCountMixin, StaffAdmin):
    list_display = (
        "created_at",
        "actor",
        "action",
        "source",
        "object_repr",
        "customer_link",
        "reason",
    )
    list_filter = ("action", "source", ("created_at", admin.DateFieldListFilter))
    search_fields = ("object_repr", "reason")
    list_select_related = ("actor", "customer")
    show_full_result_count = False
    fields = (
        "created_at",
        "actor_display",
        "action",
        "source",
        "object_repr",
        "customer_link",
        "rule",
        "reason",
        "before_pretty",
        "after_pretty",
    )
    readonly_fields = fields

    @admin.display(description=gettext_lazy("who"))
    def actor_display(self, entry):
        return person(entry.actor)

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        user = request.user
        if policy.is_tag_admin(user):
            return qs
        in_scope = Q()
        if not policy.sees_all_customers(user):
            in_scope = Q(customer__isnull=True) | Q(in_customer_scope(user))
        about_visible = Q(group_id__in=visible_group_ids(user)) | Q(
            group__isnull=True, tag__isnull=True, customer__isnull=False
        )
        return qs.filter(about_visible & in_scope)

    def lookup_allowed(self, lookup, value, request=None):
        if lookup in ("tag__id__exact", "customer__id__exact", "group__id__exact"):
            return True
        return super().lookup_allowed(lookup, value, request)

    def get_changelist(self, request, **kwargs):
        return RenderedAuditChangeList

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Merge entries written before merges stored references carry the target's name in
        # ``reason``: matching it would tell a reader the name of a tag they may not view.
        reason = Q(reason__icontains=term) & ~Q(source=AssignmentSource.MERGE)
        return queryset.filter(Q(object_repr__icontains=term) | reason), False

    def get_object(self, request, object_id, from_field=None):
        entry = super().get_object(request, object_id, from_field)
        if entry is not None:
            render_entries([entry], request.user)
        return entry

    @admin.display(description=gettext_lazy("customer"))
    def customer_link(self, entry):
        if not entry.customer_id:
            return "—"
        url = reverse("admin:customers_customer_change", args=[entry.customer_id])
        return format_html('<a href="{}">{}</a>', url, entry.customer or entry.customer_id)

    @staticmethod
    def _pretty(data) -> str:
        if not data:
            return "—"
        if not isinstance(data, dict):
            return format_html("<code>{}</code>", data)
        rows = format_html_join("", "<tr><th>{}</th><td>{}</td></tr>", sorted(data.items()))
        return format_html('<table class="td-kv">{}</table>', rows)

    @admin.display(description=gettext_lazy("before"))
    def before_pretty(self, entry):
        return self._pretty(entry.before)

    @admin.display(description=gettext_lazy("after"))
    def after_pretty(self, entry):
        return self._pretty(entry.after)
