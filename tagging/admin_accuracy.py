"""Accuracy checks in the admin (tagging.accuracy): tag admins start a check of a tag
group or segment; reviewers (tag admins, and users who may edit the checked group) mark each
sampled customer's tags on the review page, which also shows the report."""

from __future__ import annotations

from typing import cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config.params import is_id
from permissions import policy
from tagging import accuracy, segments
from tagging.admin_base import StaffAdmin
from tagging.errors import TaggingError
from tagging.models import (
    AccuracyCheck,
    AccuracyMark,
    Segment,
    TagAssignment,
    TagGroup,
    TagKind,
)

ITEMS_PER_PAGE = 20


class StartCheckForm(forms.Form):
    name = forms.CharField(label=gettext_lazy("name"), max_length=100)
    group = forms.ModelChoiceField(
        label=gettext_lazy("tag group"), queryset=TagGroup.objects.none(), required=False
    )
    segment = forms.ModelChoiceField(
        label=gettext_lazy("or a segment"), queryset=Segment.objects.none(), required=False
    )
    percent = forms.DecimalField(
        label=gettext_lazy("sample share (%)"),
        min_value=0.01,
        max_value=100,
        decimal_places=2,
        help_text=gettext_lazy(
            "Share of the customers drawn at random (at most the configured maximum)."
        ),
    )
    seed = forms.IntegerField(
        label=gettext_lazy("random seed (optional)"),
        required=False,
        min_value=1,
        max_value=2**62,
        help_text=gettext_lazy("The same seed draws the same customers again; empty: a new one."),
    )

    def __init__(self, *args, user, **kwargs) -> None:
        from django.conf import settings

        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["group"]).queryset = (
            policy.visible_groups(user).exclude(kind=TagKind.PERSONAL).order_by("sort_order", "pk")
        )
        cast(forms.ModelChoiceField, self.fields["segment"]).queryset = segments.visible_segments(
            user
        ).order_by("name")
        self.fields["percent"].initial = settings.TAGDESK_ACCURACY_SAMPLE_PERCENT

    def clean(self):
        cleaned = super().clean()
        if bool(cleaned.get("group")) == bool(cleaned.get("segment")):
            raise forms.ValidationError(_("Choose a tag group or a segment, not both."))
        return cleaned


@admin.register(AccuracyCheck)
class AccuracyCheckAdmin(StaffAdmin):
    list_display = [
        "name",
        "subject",
        "percent",
        "population",
        "sampled",
        "reviewed",
        "created_by",
        "created_at",
    ]
    list_select_related = ["group", "segment", "created_by"]
    list_per_page = 50

    def get_queryset(self, request):
        checks = (
            super()
            .get_queryset(request)
            .annotate(
                sampled_count=Count("items", distinct=True),
                reviewed_count=Count(
                    "items", filter=Q(items__reviewed_at__isnull=False), distinct=True
                ),
            )
        )
        if policy.is_tag_admin(request.user):
            return checks
        editable = policy.visible_groups(request.user, policy.Level.EDIT).values("pk")
        return checks.filter(group__in=editable)

    def has_add_permission(self, request):
        return policy.is_tag_admin(request.user)

    def has_change_permission(self, request, obj=None):
        return False  # reviews go through the review page

    def has_delete_permission(self, request, obj=None):
        return False  # the marks are the audit's record

    @admin.display(description=gettext_lazy("checked"))
    def subject(self, check):
        return check.group or check.segment or "—"

    @admin.display(description=gettext_lazy("sampled"))
    def sampled(self, check):
        return check.sampled_count

    @admin.display(description=gettext_lazy("reviewed"))
    def reviewed(self, check):
        return check.reviewed_count

    def add_view(self, request, form_url="", extra_context=None):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = StartCheckForm(request.POST or None, user=request.user)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                check = accuracy.start_check(
                    name=data["name"],
                    group=data["group"],
                    segment=data["segment"],
                    percent=data["percent"],
                    seed=data["seed"],
                    actor=request.user,
                )
            except TaggingError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    _("%(n)d customers drawn from %(total)d.")
                    % {"n": check.items.count(), "total": check.population},
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(
                    reverse("admin:tagging_accuracycheck_change", args=[check.pk])
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": _("Start an accuracy check"),
            "form": form,
        }
        return TemplateResponse(request, "admin/tagging/accuracycheck/start.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        check = (
            self.get_queryset(request).filter(pk=object_id).first() if is_id(object_id) else None
        )
        if check is None:
            raise Http404(_("This accuracy check does not exist."))
        if request.method == "POST":
            return self._review(request, check)
        return self._review_page(request, check)

    def _items(self, request, check):
        items = check.items.select_related("customer", "reviewed_by").order_by("position")
        if not policy.sees_all_customers(request.user):
            items = items.filter(customer__in=policy.visible_customers(request.user).values("pk"))
        return items

    def _review_page(self, request, check, errors=None):
        judged = list(check.tags.select_related("group").order_by("sort_order", "pk"))
        page = Paginator(self._items(request, check), ITEMS_PER_PAGE).get_page(request.GET.get("p"))
        items = list(page.object_list)
        held: dict[int, set[int]] = {}
        for customer_id, tag_id in TagAssignment.objects.filter(
            customer_id__in=[i.customer_id for i in items], tag__in=judged
        ).values_list("customer_id", "tag_id"):
            held.setdefault(customer_id, set()).add(tag_id)
        marks: dict[int, dict[int, str]] = {}
        for item_id, tag_id, verdict in AccuracyMark.objects.filter(item__in=items).values_list(
            "item_id", "tag_id", "verdict"
        ):
            marks.setdefault(item_id, {})[tag_id] = verdict
        rows = []
        for item in items:
            has = held.get(item.customer_id, set())
            mine = marks.get(item.pk, {})
            rows.append(
                {
                    "item": item,
                    "held": [(t, mine.get(t.pk, "correct")) for t in judged if t.pk in has],
                    "lacking": [
                        (t, mine.get(t.pk) == "missing") for t in judged if t.pk not in has
                    ],
                    "errors": (errors or {}).get(item.pk),
                }
            )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": check.name,
            "check": check,
            "report": accuracy.check_report(check),
            "rows": rows,
            "page": page,
            "customer_url": "admin:customers_customer_change",
        }
        return TemplateResponse(request, "admin/tagging/accuracycheck/review.html", context)

    def _review(self, request, check):
        item_id = request.POST.get("item", "")
        item = get_object_or_404(self._items(request, check), pk=item_id if is_id(item_id) else 0)
        verdicts: dict[int, str] = {}
        for key, value in request.POST.items():
            if key.startswith("tag_") and is_id(key[4:]):
                verdicts[int(key[4:])] = value
        for value in request.POST.getlist("missing"):
            if is_id(value):
                verdicts[int(value)] = AccuracyMark.Verdict.MISSING
        try:
            result = accuracy.record_review(
                item, verdicts, actor=request.user, apply_fixes=request.POST.get("fix") == "on"
            )
        except TaggingError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            return self._review_page(request, check, errors={item.pk: exc.message})
        message = _("Reviewed %(customer)s.") % {"customer": item.customer}
        if result.removed or result.added:
            message += " " + _("Fixed: %(removed)d removed, %(added)d added.") % {
                "removed": result.removed,
                "added": result.added,
            }
        self.message_user(request, message, messages.SUCCESS)
        if result.not_fixed:
            self.message_user(
                request,
                _("Auto tags are changed by their rules only: %(tags)s not fixed.")
                % {"tags": ", ".join(result.not_fixed)},
                messages.WARNING,
            )
        url = reverse("admin:tagging_accuracycheck_change", args=[check.pk])
        return HttpResponseRedirect(f"{url}?p={request.GET.get('p', '1')}#item-{item.pk}")
