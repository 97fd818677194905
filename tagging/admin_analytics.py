"""Admin pages for segments, tag analytics and tag hygiene (docs/segments.md).

Imported by ``tagging/admin.py``; registers:

- :class:`SegmentAdmin` — saved segments written in the text form, each with a results page
  (count, paginated customers, CSV/XLSX export through ``customers.exporting``, and "add a tag
  to everyone in this segment" through ``tagging.segments.tag_segment``);
- :class:`TagAnalyticsAdmin` — charts (server-side SVG) and tables of ``tagging.analytics``,
  filtered by department and date range, every table downloadable as CSV;
- :class:`TagHygieneAdmin` — ``tagging.hygiene`` suggestions with one-click merge and archive,
  each behind a preview of its effect (tag admins only);
- :class:`SegmentListFilter` — for the customer changelist: pick tags with any / all / none
  and see the live count.

Views are adapters: parse the request, check the policy, call one function, render.
"""

from __future__ import annotations

import contextvars
import csv
import datetime as dt
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from config.params import is_id
from permissions import policy
from permissions.models import Department
from tagging import analytics, charts, hygiene, segments
from tagging.admin_base import ReadOnlyAdminMixin
from tagging.errors import TaggingError
from tagging.models import HygieneReport, Segment, Tag, TagAnalytics, TagHygiene, TagStatus
from tagging.services import archive_tag, merge_tags


def _csv_response(filename: str, header: list[str], rows: list[list]) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerow(header)
    for row in rows:
        writer.writerow(["'" + v if isinstance(v, str) and v[:1] in "=+-@\t\r" else v for v in row])
    return response


# --- segments ---------------------------------------------------------------------------------


class SegmentForm(forms.ModelForm):
    text = forms.CharField(
        label=gettext_lazy("expression"),
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        help_text=gettext_lazy(
            "e.g. (意向:高 OR 意向:中) AND 官网 AND NOT 减脂期 AND @total_spend >= 2000. "
            "Tags as group:tag (or a name unique among your tags, or #id); AND, OR, NOT, "
            "parentheses; @field = / != / > / >= / < / <= / contains value."
        ),
    )

    class Meta:
        model = Segment
        fields = ["name", "description", "text", "shared"]

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if self.instance.pk:
            self.fields["text"].initial = segments.to_text(self.instance.expression, user)

    def clean_text(self):
        try:
            self.instance.expression = segments.parse(self.cleaned_data["text"], self.user)
        except TaggingError as exc:
            raise forms.ValidationError(exc.message) from None
        return self.cleaned_data["text"]


class TagSegmentForm(forms.Form):
    tag = forms.ModelChoiceField(queryset=Tag.objects.none(), label=gettext_lazy("tag"))

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tag"].queryset = (
            policy.visible_tags(user, policy.Level.EDIT)
            .exclude(group__kind="auto")
            .select_related("group")
        )


# The user whose changelist or page is being rendered (list_display and read-only field
# callables get only the object).
_changelist_user: contextvars.ContextVar = contextvars.ContextVar("segment_changelist_user")


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    form = SegmentForm
    change_form_template = "admin/segments/segment_change_form.html"
    list_display = ["name", "expression_text", "customer_count", "owner", "shared", "updated_at"]
    search_fields = ["name", "description"]

    def get_queryset(self, request):
        return segments.visible_segments(request.user)

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)

        class BoundForm(form_class):
            def __init__(self, *args, **kw):
                super().__init__(*args, user=request.user, **kw)

        return BoundForm

    def save_model(self, request, obj, form, change):
        if not change:
            obj.owner = request.user
        super().save_model(request, obj, form, change)

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_staff

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return self.has_add_permission(request)
        return obj.owner_id == request.user.pk or policy.is_tag_admin(request.user)

    has_delete_permission = has_change_permission

    _READ_ONLY_FIELDS = ["name", "description", "expression_text", "shared", "owner"]

    def get_fields(self, request, obj=None):
        # Someone else's shared segment: its text rendered for the reader, read-only.
        if obj is not None and not self.has_change_permission(request, obj):
            return self._READ_ONLY_FIELDS
        return super().get_fields(request, obj)

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and not self.has_change_permission(request, obj):
            return self._READ_ONLY_FIELDS
        return super().get_readonly_fields(request, obj)

    @admin.display(description=gettext_lazy("expression"))
    def expression_text(self, segment):
        user = _changelist_user.get(None)
        if user is None:
            return "—"
        return segments.to_text(segment.expression, user)

    @admin.display(description=gettext_lazy("customers"))
    def customer_count(self, segment):
        user = _changelist_user.get(None)
        if user is None:
            return "—"
        try:
            return segments.count(segments.validate(segment.expression, user), user)
        except TaggingError:
            return "—"

    def changelist_view(self, request, extra_context=None):
        token = _changelist_user.set(request.user)
        try:
            response = super().changelist_view(request, extra_context)
            if hasattr(response, "render"):
                response.render()  # list_display runs while rendering: keep the user set
            return response
        finally:
            _changelist_user.reset(token)

    def get_urls(self):
        return [
            path(
                "<int:pk>/customers/",
                self.admin_site.admin_view(self.customers_view),
                name="tagging_segment_customers",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "segment_customers_url": reverse("admin:tagging_segment_customers", args=[object_id])
            if is_id(str(object_id))
            else None,
        }
        token = _changelist_user.set(request.user)
        try:
            response = super().change_view(request, object_id, form_url, extra_context)
            if hasattr(response, "render"):
                response.render()  # read-only fields render now: keep the reader set
            return response
        finally:
            _changelist_user.reset(token)

    def customers_view(self, request, pk):
        segment = get_object_or_404(self.get_queryset(request), pk=pk)
        user = request.user
        try:
            expression = segments.validate(segment.expression, user)
        except TaggingError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(reverse("admin:tagging_segment_changelist"))
        fmt = request.GET.get("export")
        if fmt in ("csv", "xlsx"):
            from customers.exporting import export_customers

            stream = export_customers(user, fmt, queryset=segments.customers(expression, user))
            response = StreamingHttpResponse(
                stream,
                content_type="text/csv; charset=utf-8"
                if fmt == "csv"
                else "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
            response["Content-Disposition"] = f'attachment; filename="segment-{segment.pk}.{fmt}"'
            return response
        tag_form = TagSegmentForm(request.POST or None, user=user)
        if request.method == "POST" and tag_form.is_valid():
            tag = tag_form.cleaned_data["tag"]
            try:
                result = segments.tag_segment(
                    expression,
                    tag,
                    user=user,
                    reason=_("segment “%(name)s”") % {"name": segment.name},
                )
            except TaggingError as exc:
                messages.error(request, exc.message)
            else:
                message = _(
                    "“%(tag)s” added to %(added)d customers (%(unchanged)d had it already)."
                ) % {"tag": tag, "added": result.added, "unchanged": result.unchanged}
                if result.read_only:
                    message += " " + _(
                        "%(n)d customers shared with you read-only were left unchanged."
                    ) % {"n": result.read_only}
                messages.success(request, message)
            return HttpResponseRedirect(request.path)
        try:
            number = max(1, int(request.GET.get("p", 1)))
        except ValueError:
            number = 1
        result = segments.page(expression, user, number, 50, rows=_customer_rows())
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": segment.name,
            "segment": segment,
            "text": segments.to_text(expression, user),
            "result": result,
            "previous_page": number - 1 if number > 1 else None,
            "next_page": number + 1 if number < result.num_pages else None,
            "tag_form": tag_form,
        }
        return TemplateResponse(request, "admin/segments/segment_customers.html", context)


def _customer_rows():
    from customers.models import Customer

    return Customer.objects.select_related("owner", "department")


# --- the customer changelist filter -------------------------------------------------------------


class SegmentListFilter(admin.ListFilter):
    """Pick tags with any / all / none (``seg_any``, ``seg_all``, ``seg_none``: comma-separated
    tag ids) or a saved segment (``segment``); shows the count among the customers listed."""

    title = gettext_lazy("segment")
    template = "admin/segments/changelist_filter.html"
    parameters = ("seg_any", "seg_all", "seg_none", "segment")

    def __init__(self, request, params, model, model_admin):
        super().__init__(request, params, model, model_admin)
        self.request = request
        self.values = {}
        for name in self.parameters:
            if name in params:
                raw = params.pop(name)
                # a multi-select sends one value per tag; links may carry "1,2,3"
                self.values[name] = ",".join(raw) if isinstance(raw, list) else raw
        self.error = None
        self.expression = None
        try:
            self.expression = self._build(request.user)
        except (TaggingError, ValueError) as exc:
            self.error = getattr(exc, "message", None) or _("Choose tags from the lists.")
        self.count = None

    def _ids(self, name: str) -> list[int]:
        raw = self.values.get(name, "")
        return [int(x) for x in raw.split(",") if x.strip()] if raw else []  # ValueError: bad id

    def _build(self, user) -> dict | None:
        if self.values.get("segment"):
            segment = segments.visible_segments(user).filter(pk=int(self.values["segment"])).first()
            if segment is None:
                raise TaggingError(_("Unknown segment."))
            return segments.validate(segment.expression, user)
        terms: list[dict[str, Any]] = []
        if self._ids("seg_any"):
            terms.append({"or": [{"tag": t} for t in self._ids("seg_any")]})
        terms += [{"tag": t} for t in self._ids("seg_all")]
        if self._ids("seg_none"):
            terms.append({"not": {"or": [{"tag": t} for t in self._ids("seg_none")]}})
        return segments.validate({"and": terms}, user) if terms else None

    def has_output(self) -> bool:
        return True

    def expected_parameters(self):
        return list(self.parameters)

    def queryset(self, request, queryset):
        if self.error:
            messages.error(request, self.error)
            return queryset.none()
        if self.expression is None:
            return queryset
        narrowed = segments.restrict(queryset, self.expression)
        self.count = narrowed.count()
        return narrowed

    def choices(self, changelist):
        tags = list(
            policy.customer_tags(self.request.user, include_inactive=False).select_related("group")
        )
        chosen = {
            name: set(self._ids(name)) if not self.error else set()
            for name in ("seg_any", "seg_all", "seg_none")
        }
        yield {
            "tags": tags,
            "chosen": chosen,
            "segments": list(segments.visible_segments(self.request.user)),
            "segment": self.values.get("segment", ""),
            "count": self.count,
            "text": segments.to_text(self.expression, self.request.user) if self.expression else "",
            "error": self.error,
            "clear_url": changelist.get_query_string(remove=list(self.parameters)),
            "hidden": [
                (k, v)
                for k, values in self.request.GET.lists()
                if k not in self.parameters and k != "p"
                for v in values
            ],
        }


# --- analytics ---------------------------------------------------------------------------------


class AnalyticsFilterForm(forms.Form):
    department = forms.ModelChoiceField(
        queryset=Department.objects.all(), required=False, label=gettext_lazy("department")
    )
    start = forms.DateField(
        required=False, label=gettext_lazy("from"), widget=forms.DateInput(attrs={"type": "date"})
    )
    end = forms.DateField(
        required=False, label=gettext_lazy("to"), widget=forms.DateInput(attrs={"type": "date"})
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("start") and cleaned.get("end") and cleaned["start"] > cleaned["end"]:
            raise forms.ValidationError(_("The start date is after the end date."))
        if (
            cleaned.get("start")
            and cleaned.get("end")
            and (cleaned["end"] - cleaned["start"]).days > 731
        ):
            raise forms.ValidationError(_("Choose at most two years."))
        return cleaned


TABLES = ("tags", "groups", "followers", "by_source", "by_employee", "by_department", "rules")


@admin.register(TagAnalytics)
class TagAnalyticsAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            raise PermissionDenied
        form = AnalyticsFilterForm(request.GET or None)
        filters = analytics.Filters()
        if form.is_bound and form.is_valid():
            filters = analytics.Filters(
                form.cleaned_data["department"],
                form.cleaned_data["start"],
                form.cleaned_data["end"],
            )
        user = request.user
        wanted = request.GET.get("csv")
        if wanted is not None and wanted not in TABLES:
            messages.error(request, _("Unknown table “%(name)s”.") % {"name": wanted})
            wanted = None
        tables = {}
        for name in TABLES if wanted is None else (wanted,):
            tables[name] = self._table(name, user, filters)
        if wanted:
            header, rows = tables[wanted]
            return _csv_response(f"analytics-{wanted}.csv", header, rows)
        start, end = filters.range()
        days_end = (end - dt.timedelta(seconds=1)).date()
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Tag analytics"),
            "form": form,
            "period": (start.date(), days_end),
            "sections": self._sections(user, filters, tables),
            "query": request.GET.urlencode(),
        }
        return TemplateResponse(request, "admin/analytics/analytics.html", context)

    def _table(self, name, user, filters):
        if name == "tags":
            rows = analytics.customers_per_tag(user, filters)
            return [_("group"), _("tag"), _("status"), _("customers")], [
                [r["group"], r["tag"], r["status"], r["customers"]] for r in rows
            ]
        if name == "groups":
            rows = analytics.group_coverage(user, filters)
            return [_("group"), _("kind"), _("customers"), _("coverage")], [
                [r["group"], r["kind"], r["customers"], r["coverage"]] for r in rows
            ]
        if name == "followers":
            rows = analytics.customers_per_employee(user, filters)
            return [_("employee"), _("customers")], [[r["employee"], r["customers"]] for r in rows]
        if name == "rules":
            rows = analytics.rule_results_over_time(user, filters)
            return [
                _("day"),
                _("rule"),
                _("status"),
                _("matched"),
                pgettext("count", "added"),
                _("removed"),
            ], [
                [
                    r["day"].isoformat(),
                    r["rule"],
                    r["status"],
                    "—" if r["matched"] is None else r["matched"],
                    r["added"],
                    r["removed"],
                ]
                for r in rows
            ]
        by = name.removeprefix("by_")
        rows = analytics.assignments_over_time(user, filters, by=by)
        return [_("day"), str(analytics.DIMENSIONS[by][0]), _("assignments")], [
            [r["day"].isoformat(), r[by], r["assignments"]] for r in rows
        ]

    def _sections(self, user, filters, tables):
        def over_time(name, title, index):
            header, rows = tables[name]
            days, series = analytics.pivot(
                [{"day": dt.date.fromisoformat(r[0]), "key": r[1], "n": r[index]} for r in rows],
                "key",
                "n",
            )
            return charts.stacked_columns(days, series, title=title)

        tag_rows = tables["tags"][1]
        group_rows = tables["groups"][1]
        return [
            {
                "name": "tags",
                "title": _("Customers per tag"),
                "chart": charts.bar_chart(
                    [(f"{r[0]}:{r[1]}", r[3]) for r in tag_rows],
                    title=_("Customers per tag (top 40)"),
                ),
                "table": tables["tags"],
            },
            {
                "name": "groups",
                "title": _("Coverage per group (share of customers with at least one of its tags)"),
                "chart": charts.bar_chart(
                    [(r[0], float(r[3])) for r in group_rows],
                    title=_("Coverage per group"),
                    colour="#52C41A",
                ),
                "table": tables["groups"],
            },
            {
                "name": "followers",
                "title": _("Customers per employee (followers)"),
                "chart": charts.bar_chart(
                    [(r[0], r[1]) for r in tables["followers"][1]],
                    title=_("Customers per employee (top 40)"),
                    colour="#FA8C16",
                ),
                "table": tables["followers"],
            },
            *[
                {
                    "name": name,
                    "title": title,
                    "chart": over_time(name, title, 2),
                    "table": tables[name],
                }
                for name, title in (
                    ("by_source", _("New assignments by source")),
                    ("by_employee", _("New assignments per employee")),
                    ("by_department", _("New assignments per department (of who added them)")),
                )
            ],
            {
                "name": "rules",
                "title": _("Rule results (customers added per day)"),
                "chart": over_time("rules", _("Rule results: customers added"), 4),
                "table": tables["rules"],
            },
        ]


# --- hygiene -------------------------------------------------------------------------------------


@admin.register(TagHygiene)
class TagHygieneAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    def has_module_permission(self, request):
        return (
            request.user.is_active and request.user.is_staff and policy.is_tag_admin(request.user)
        )

    def has_view_permission(self, request, obj=None):
        return self.has_module_permission(request)

    def get_urls(self):
        return [
            path(
                "merge/",
                self.admin_site.admin_view(self.merge_view),
                name="tagging_taghygiene_merge",
            ),
            path(
                "archive/",
                self.admin_site.admin_view(self.archive_view),
                name="tagging_taghygiene_archive",
            ),
            *super().get_urls(),
        ]

    def _check(self, request):
        if not self.has_view_permission(request):
            raise PermissionDenied

    def _tags(self, request):
        return policy.visible_tags(request.user, policy.Level.CREATE)

    def changelist_view(self, request, extra_context=None):
        self._check(request)
        try:
            days = max(1, min(3650, int(request.GET.get("days", hygiene.UNUSED_DAYS))))
            minimum = max(1, min(100000, int(request.GET.get("min", hygiene.SMALL_TAG_CUSTOMERS))))
        except ValueError:
            days, minimum = hygiene.UNUSED_DAYS, hygiene.SMALL_TAG_CUSTOMERS
        tags = self._tags(request)
        names = {t.pk: t for t in tags.select_related("group")}
        unused = hygiene.unused_tags(days, tags)
        small = hygiene.small_tags(minimum, tags)
        overlaps = hygiene.overlapping_pairs(tags)
        near = hygiene.near_duplicate_names(tags)
        tables = {
            "unused": ([_("tag"), _("customers")], [[str(t), t.customer_count] for t in unused]),
            "small": ([_("tag"), _("customers")], [[str(t), t.customer_count] for t in small]),
            "overlapping": (
                [_("tag"), _("tag"), _("customers"), _("customers"), _("both"), _("overlap")],
                [
                    [
                        str(names[o.a]),
                        str(names[o.b]),
                        o.a_count,
                        o.b_count,
                        o.both,
                        round(o.jaccard, 3),
                    ]
                    for o in overlaps
                ],
            ),
            "near_duplicates": (
                [_("tag"), _("tag"), _("similarity")],
                [[str(p.a), str(p.b), p.similarity] for p in near],
            ),
        }
        wanted = request.GET.get("csv")
        if wanted in tables:
            return _csv_response(f"hygiene-{wanted}.csv", *tables[wanted])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Tag hygiene"),
            "days": days,
            "minimum": minimum,
            "unused": unused,
            "small": small,
            "overlaps": [(o, names[o.a], names[o.b]) for o in overlaps],
            "near": near,
            "report": HygieneReport.objects.first(),
            "query": request.GET.urlencode(),
        }
        return TemplateResponse(request, "admin/analytics/hygiene.html", context)

    def _load(self, request, key):
        try:
            ids = [int(x) for x in request.GET.getlist(key) or request.POST.getlist(key)]
        except ValueError:
            ids = []
        found = list(
            self._tags(request)
            .filter(pk__in=ids)
            .exclude(status=TagStatus.PENDING)
            .select_related("group")
        )
        if not ids or len(found) != len(set(ids)):
            raise PermissionDenied(_("Unknown tag."))
        return found

    def merge_view(self, request):
        """GET: preview merging ``source`` tags into ``target``; POST: merge (merge_tags)."""
        self._check(request)
        sources = self._load(request, "source")
        (target,) = self._load(request, "target")
        if request.method == "POST":
            try:
                moved = merge_tags(sources, target, actor=request.user)
            except TaggingError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(
                    request,
                    _("Merged into “%(tag)s”: %(count)d customers gained it.")
                    % {"tag": target, "count": moved},
                )
            return HttpResponseRedirect(reverse("admin:tagging_taghygiene_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Merge tags"),
            "action": "merge",
            "sources": sources,
            "target": target,
            "preview": hygiene.preview_merge(sources, target),
        }
        return TemplateResponse(request, "admin/analytics/hygiene_confirm.html", context)

    def archive_view(self, request):
        """GET: preview archiving ``tag``; POST: archive (archive_tag)."""
        self._check(request)
        (tag,) = self._load(request, "tag")
        if request.method == "POST":
            try:
                archive_tag(tag, actor=request.user, reason=_("tag hygiene"))
            except TaggingError as exc:
                messages.error(request, exc.message)
            else:
                messages.success(request, _("“%(tag)s” archived.") % {"tag": tag})
            return HttpResponseRedirect(reverse("admin:tagging_taghygiene_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Archive tag"),
            "action": "archive",
            "tag": tag,
            "preview": hygiene.preview_archive(tag),
        }
        return TemplateResponse(request, "admin/analytics/hygiene_confirm.html", context)
