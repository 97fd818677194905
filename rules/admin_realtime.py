"""Admin pages of the real-time path: the batch log with latency figures and the backlog."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin
from django.utils import timezone
from django.utils.translation import gettext_lazy

from rules.admin import TagAdminOnly
from rules.models import DirtyCustomer, RealtimeBatch

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


@admin.register(RealtimeBatch)
class RealtimeBatchAdmin(TagAdminOnly, admin.ModelAdmin):
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
