"""Admin pages of the real-time path: the batch log with latency figures and the backlog; the
"why does this customer (not) have this auto tag" page linked from the customer page."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.http import Http404
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from permissions import policy
from rules.models import DirtyCustomer, RealtimeBatch, Rule

STATS_WINDOW = dt.timedelta(hours=24)
STATS_ROWS = 10_000  # the figures read at most this many recent batches


def latency_figures(since: dt.datetime) -> dict[str, int | None]:
    """p50 / p99 / max batch latency (ms) and counts of the batches started since ``since``."""
    rows = list(
        RealtimeBatch.objects.filter(started_at__gte=since)
        .order_by("-started_at")
        .values_list("latency_ms", "customers")[:STATS_ROWS]
    )
    latencies = sorted(latency for latency, _n in rows)

    def pct(p: float) -> int | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))]

    return {
        "batches": len(rows),
        "customers": sum(n for _l, n in rows),
        "p50": pct(0.50),
        "p99": pct(0.99),
        "max": latencies[-1] if latencies else None,
    }


class TagAdminsOnly:
    """The batch log is for tag admins (like the rules); the explain page checks per rule."""

    def has_module_permission(self, request) -> bool:
        return policy.is_tag_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return policy.is_tag_admin(request.user)


@admin.register(RealtimeBatch)
class RealtimeBatchAdmin(TagAdminsOnly, admin.ModelAdmin):
    list_display = (
        "started_at",
        "customers",
        "rules",
        "added",
        "removed",
        "latency_ms",
        "duration_display",
    )
    date_hierarchy = "started_at"
    change_list_template = "admin/rules/realtimebatch/change_list.html"

    @admin.display(description=gettext_lazy("duration"))
    def duration_display(self, batch: RealtimeBatch) -> str:
        return f"{(batch.finished_at - batch.started_at).total_seconds() * 1000:.0f} ms"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in RealtimeBatch._meta.fields]

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "realtime_pending": DirtyCustomer.objects.count(),
            "realtime_figures": latency_figures(timezone.now() - STATS_WINDOW),
        }
        return super().changelist_view(request, extra_context=extra_context)

    # -- explain (reached from the customer page; any staff user, scoped by the policy) --

    def get_urls(self):
        return [
            path(
                "explain/",
                self.admin_site.admin_view(self.explain_view),
                name="rules_explain",
            ),
            *super().get_urls(),
        ]

    def explain_view(self, request):
        """Every rule the user may explain, evaluated for one customer, leaf by leaf."""
        from rules.explain import explain_for
        from tagging.errors import TaggingError
        from tagging.models import TagAssignment

        customer_id = request.GET.get("customer", "")
        try:
            [customer_pk] = policy.require_customers(request.user, [customer_id])
        except TaggingError as exc:
            raise Http404(str(exc)) from exc
        customer = policy.visible_customers(request.user).get(pk=customer_pk)
        held = set(
            TagAssignment.objects.filter(
                customer_id=customer_pk, tag__rules__isnull=False
            ).values_list("tag_id", flat=True)
        )
        panels = []
        for rule in Rule.objects.select_related("tag__group").order_by("name", "id"):
            try:
                _rule, explanation = explain_for(request.user, rule.pk, customer_pk)
            except TaggingError:
                continue  # not the user's to see, or invalid: the rule's own page says why
            panels.append(
                {
                    "rule": rule,
                    "explanation": explanation,
                    "holds_tag": rule.tag_id in held,
                    "steps": [{**s.as_dict(), "indent": s.depth * 1.5} for s in explanation.steps],
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "title": _("Why %(customer)s has or lacks each auto tag") % {"customer": customer},
            "customer": customer,
            "panels": panels,
        }
        return TemplateResponse(request, "admin/rules/explain.html", context)
