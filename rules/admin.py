"""Admin for auto-tag rules: editor with live validation and preview, templates, run history,
"run now". An adapter (STYLE §1): it checks that the user is a tag admin, then calls
``rules.services`` (save_rule, delete_rule, preview_tree) or enqueues ``rules.tasks``."""

from __future__ import annotations

import json
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from config import safe_json
from permissions import policy
from rules import fields as F
from rules import services
from rules.describe import describe_tree
from rules.models import Rule, RuleMode, RuleRun, RunTrigger
from rules.tasks import queue_rule_run
from rules.templates import TEMPLATES
from tagging import services as tagging_services
from tagging.errors import TaggingError
from tagging.models import Tag, TagGroup, TagKind, TagStatus
from tagging.templatetags.tagdesk import duration

HISTORY_ROWS = 20


def _rule_tags(rule: Rule | None):
    """Auto tags that have no rule yet (plus the rule's own)."""
    free = Tag.objects.filter(group__kind=TagKind.AUTO).exclude(status=TagStatus.ARCHIVED)
    others = (
        Rule.objects.all() if rule is None or rule.pk is None else Rule.objects.exclude(pk=rule.pk)
    )
    taken = others.values("tag_id")
    return free.exclude(pk__in=taken).select_related("group")


def builder_schema(user) -> dict:
    """What the conditions form (static/tagdesk/rule_builder.js) offers, from the registry of
    rules.fields (the same keys the validator accepts), with translated labels."""
    tags = (
        policy.visible_tags(user)
        .select_related("group")
        .order_by("group__sort_order", "group_id", "sort_order", "id")
    )
    return {
        "attributes": {
            key: {"label": str(f.label), "type": f.type, "operators": list(f.operators)}
            for key, f in F.ATTRIBUTES.items()
        },
        "operators": {
            key: {"label": str(op.symbol), "arity": op.arity} for key, op in F.OPERATORS.items()
        },
        "operators_by_type": {key: list(ops) for key, ops in F.OPERATORS_BY_TYPE.items()},
        "events": {key: str(label) for key, label in F.EVENT_KINDS.items()},
        "aggregates": {
            key: {"label": str(a["label"]), "measure": a["measure"], "type": a["type"]}
            for key, a in F.AGGREGATES.items()
        },
        "measures": {key: str(label) for key, label in F.MEASURES.items()},
        "event_filters": {
            "category": _("category"),
            "target": _("target"),
            "text_contains": _("text contains"),
        },
        "rfm": {key: str(m["label"]) for key, m in F.RFM_METRICS.items()},
        "tags": [[t.pk, f"{t.group.name}:{t.name}"] for t in tags],
        "labels": {
            "title": _("Conditions (form)"),
            "help": _("Build the conditions here, or edit the JSON below: each writes the other."),
            "all": _("all of these hold"),
            "any": _("any of these holds"),
            "at_least": _("at least N of these hold"),
            "not": _("this does not hold"),
            "group": _("group"),
            "kind": _("kind of condition"),
            "attribute": _("customer field"),
            "event": _("event"),
            "tag": _("tag"),
            "rfm": _("RFM score"),
            "field": _("field"),
            "operator": _("operator"),
            "value": _("value"),
            "list": _("values, separated by commas"),
            "aggregate": _("aggregate"),
            "measure": _("measure"),
            "window": _("time window"),
            "anytime": _("any time"),
            "last_days": _("in the last … days"),
            "between_dates": _("between dates"),
            "days": _("days"),
            "from": _("from"),
            "to": _("to"),
            "has": _("has"),
            "lacks": _("lacks"),
            "add_condition": _("+ condition"),
            "add_group": _("+ group"),
        },
    }


class TreeField(safe_json.FormField):
    widget = forms.Textarea(
        attrs={"rows": 14, "cols": 90, "class": "rule-tree", "spellcheck": "false"}
    )

    def prepare_value(self, value):
        if isinstance(value, str):
            return value
        return json.dumps(value, ensure_ascii=False, indent=2)


class RuleForm(forms.ModelForm):
    tree = TreeField(label=gettext_lazy("conditions"))

    class Meta:
        model = Rule
        fields = ["name", "tag", "enabled", "mode", "description", "tree"]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        tag = cast(forms.ModelChoiceField, self.fields["tag"])
        tag.queryset = _rule_tags(self.instance if self.instance.pk else None)
        self.fields["mode"].required = False  # forms that do not show it keep the rule's mode

    def clean_mode(self) -> str:
        return self.cleaned_data.get("mode") or self.instance.mode or RuleMode.NIGHTLY


class TemplateRuleForm(forms.Form):
    """The rule of a template: its name and auto tag — an existing free one, or a new one
    created in an auto group in the same step (``tagging.services.create_tag``, audited)."""

    name = forms.CharField(label=gettext_lazy("rule name"), max_length=128)
    tag = forms.ModelChoiceField(
        label=gettext_lazy("auto tag"), queryset=Tag.objects.none(), required=False
    )
    new_tag_name = forms.CharField(
        label=gettext_lazy("or a new auto tag named"),
        max_length=64,
        required=False,
        help_text=gettext_lazy("Created with the rule, in the auto group chosen below."),
    )
    new_tag_group = forms.ModelChoiceField(
        label=gettext_lazy("in the auto group"), queryset=TagGroup.objects.none(), required=False
    )
    enabled = forms.BooleanField(label=gettext_lazy("enabled"), required=False, initial=True)

    def __init__(self, *args, suggested_tag: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["tag"]).queryset = _rule_tags(None)
        groups = TagGroup.objects.filter(kind=TagKind.AUTO).order_by("sort_order", "pk")
        cast(forms.ModelChoiceField, self.fields["new_tag_group"]).queryset = groups
        self.no_free_tag = not _rule_tags(None).exists()
        if self.no_free_tag:
            self.fields["new_tag_name"].initial = suggested_tag
            first = groups.first()
            if first is not None:
                self.fields["new_tag_group"].initial = first.pk

    def clean(self):
        cleaned = super().clean()
        tag, new_name = cleaned.get("tag"), (cleaned.get("new_tag_name") or "").strip()
        if tag and new_name:
            raise ValidationError(_("Choose an auto tag or name a new one, not both."))
        if not tag and not new_name:
            raise ValidationError(_("Choose a free auto tag or name a new one."))
        if new_name and not cleaned.get("new_tag_group"):
            self.add_error("new_tag_group", _("Choose the auto group of the new tag."))
        cleaned["new_tag_name"] = new_name
        return cleaned


class RunHistory:
    @staticmethod
    def render(rule: Rule) -> str:
        runs = list(rule.runs.order_by("-started_at", "-id")[:HISTORY_ROWS])
        if not runs:
            return _("Not run yet.")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
            "<td>{}</td></tr>",
            (
                (
                    f"{timezone.localtime(run.started_at):%Y-%m-%d %H:%M:%S}",
                    run.get_trigger_display(),
                    run.get_status_display() + (" · " + _("dry run") if run.dry_run else ""),
                    "—" if run.matched is None else run.matched,
                    "—" if run.added is None else run.added,
                    "—" if run.removed is None else run.removed,
                    "—" if run.duration is None else duration(run.duration),
                    run.error,
                )
                for run in runs
            ),
        )
        labels = (
            _("started"),
            _("trigger"),
            _("status"),
            _("matched"),
            pgettext("count", "added"),
            _("removed"),
            _("duration"),
            _("error"),
        )
        head = format_html_join("", "<th>{}</th>", ((label,) for label in labels))
        return format_html(
            '<table class="rule-runs"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
            head,
            rows,
        )


QUEUE_DOWN = gettext_lazy("The task queue is unavailable; nothing was queued. Try again later.")


class TagAdminOnly:
    """Rules are managed by tag admins only (docs/permissions.md#tag-admins-and-global-powers)."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return policy.is_tag_admin(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return policy.is_tag_admin(request.user)

    def has_add_permission(self, request: HttpRequest, *args) -> bool:
        return policy.is_tag_admin(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return policy.is_tag_admin(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return policy.is_tag_admin(request.user)


@admin.register(Rule)
class RuleAdmin(TagAdminOnly, admin.ModelAdmin):
    form = RuleForm
    list_display = (
        "name",
        "tag",
        "enabled",
        "mode",
        "summary_display",
        "last_run_display",
        "updated_at",
    )
    list_filter = ("enabled", "mode")
    list_select_related = ("tag__group",)
    search_fields = ("name", "tag__name", "description")
    actions = ["run_now", "dry_run_now"]
    readonly_fields = (
        "summary_display",
        "history_display",
        "created_by",
        "created_at",
        "updated_at",
    )
    change_form_template = "admin/rules/rule/change_form.html"
    change_list_template = "admin/rules/rule/change_list.html"

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        context["rule_schema"] = builder_schema(request.user)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_fieldsets(self, request, obj=None):
        main = (
            None,
            {
                "fields": [
                    "name",
                    "tag",
                    "enabled",
                    "mode",
                    "description",
                    "tree",
                    "summary_display",
                ]
            },
        )
        if obj is None:
            return [main]
        meta = (
            _("History"),
            {"fields": ["history_display", "created_by", "created_at", "updated_at"]},
        )
        return [main, meta]

    @admin.display(description=gettext_lazy("summary"))
    def summary_display(self, rule: Rule) -> str:
        return describe_tree(rule.tree, rule.tree_version) if rule.pk else "—"

    @admin.display(description=gettext_lazy("last run"))
    def last_run_display(self, rule: Rule) -> str:
        run = rule.runs.order_by("-started_at", "-id").first()
        if run is None:
            return "—"
        return _("%(when)s · %(status)s · +%(added)s −%(removed)s of %(matched)s") % {
            "when": f"{timezone.localtime(run.started_at):%m-%d %H:%M}",
            "status": run.get_status_display(),
            "added": run.added if run.added is not None else "—",
            "removed": run.removed if run.removed is not None else "—",
            "matched": run.matched if run.matched is not None else "—",
        }

    @admin.display(description=gettext_lazy("run history"))
    def history_display(self, rule: Rule) -> str:
        return RunHistory.render(rule)

    # -- saving goes through the services (validation + audit) --

    def save_model(self, request, obj, form, change) -> None:
        services.save_rule(obj, actor=request.user)

    def delete_model(self, request, obj) -> None:
        services.delete_rule(obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for rule in queryset.select_related("tag__group"):
            services.delete_rule(rule, actor=request.user)

    # -- actions --

    def _enqueue(self, request, queryset, *, dry_run: bool) -> None:
        for rule in queryset:
            if not queue_rule_run(
                rule.pk, trigger=RunTrigger.MANUAL, dry_run=dry_run, actor_id=request.user.pk
            ):
                self.message_user(request, QUEUE_DOWN, messages.ERROR)
                return
        self.message_user(
            request,
            _("%(n)d rule(s) queued; see their run history for the results.")
            % {"n": len(queryset)},
            messages.SUCCESS,
        )

    @admin.action(description=gettext_lazy("Run now"))
    def run_now(self, request, queryset) -> None:
        self._enqueue(request, queryset, dry_run=False)

    @admin.action(description=gettext_lazy("Dry run now (record counts, change nothing)"))
    def dry_run_now(self, request, queryset) -> None:
        self._enqueue(request, queryset, dry_run=True)

    # -- extra views: preview, run now, templates --

    def get_urls(self):
        info = self.admin_site.admin_view
        return [
            path("preview/", info(self.preview_view), name="rules_rule_preview"),
            path("<int:rule_id>/run/", info(self.run_view), name="rules_rule_run"),
            path("from-template/", info(self.templates_view), name="rules_rule_templates"),
            path("from-template/<str:key>/", info(self.template_view), name="rules_rule_template"),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest) -> JsonResponse:
        """Live validation + preview for the editor: POST tree (JSON text), tag, rule."""
        if request.method != "POST":
            return JsonResponse({"error": _("POST required.")}, status=405)
        if not policy.is_tag_admin(request.user):
            raise PermissionDenied
        try:
            tree = safe_json.loads(request.POST.get("tree") or "null")
        except ValueError as exc:
            return JsonResponse({"ok": False, "errors": [_("Not valid JSON: %(e)s") % {"e": exc}]})
        tag = (
            Tag.objects.filter(pk=request.POST.get("tag") or 0, group__kind=TagKind.AUTO)
            .select_related("group")
            .first()
        )
        rule = Rule.objects.filter(pk=request.POST.get("rule") or 0).first()
        try:
            if request.POST.get("validate_only") == "1":
                services.validate_rule(tree, tag=tag, rule_id=getattr(rule, "pk", None))
                return JsonResponse({"ok": True, "summary": describe_tree(tree)})
            outcome = services.preview_tree(tree, tag=tag, rule=rule)
        except services.RuleInvalid as exc:
            return JsonResponse({"ok": False, "errors": exc.messages})
        return JsonResponse(
            {
                "ok": True,
                "summary": describe_tree(tree),
                "matched": outcome.matched,
                "to_add": outcome.added if tag else None,
                "to_remove": outcome.removed if tag else None,
                "samples": outcome.samples,
            }
        )

    def run_view(self, request: HttpRequest, rule_id: int):
        if request.method != "POST":
            return JsonResponse({"error": _("POST required.")}, status=405)
        if not policy.is_tag_admin(request.user):
            raise PermissionDenied
        rule = get_object_or_404(Rule, pk=rule_id)
        dry_run = request.POST.get("dry_run") == "1"
        if queue_rule_run(
            rule.pk, trigger=RunTrigger.MANUAL, dry_run=dry_run, actor_id=request.user.pk
        ):
            self.message_user(
                request, _("“%(rule)s” queued to run.") % {"rule": rule}, messages.SUCCESS
            )
        else:
            self.message_user(request, QUEUE_DOWN, messages.ERROR)
        return HttpResponseRedirect(reverse("admin:rules_rule_change", args=[rule.pk]))

    @transaction.atomic
    def _create_from_template(self, request, data, tree) -> Rule:
        """The new auto tag (if named) and the rule, together or not at all. The description
        says what the rule does with the values entered (rules.describe)."""
        tag = data["tag"]
        if tag is None:
            tag = tagging_services.create_tag(
                data["new_tag_group"], data["new_tag_name"], actor=request.user
            )
        rule = Rule(
            name=data["name"],
            tag=tag,
            enabled=data["enabled"],
            tree=tree,
            description=describe_tree(tree),
        )
        services.save_rule(rule, actor=request.user)
        return rule

    def templates_view(self, request: HttpRequest):
        if not self.has_add_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("New rule from a template"),
            "templates": [
                {"key": k, "title": t.title, "description": t.description}
                for k, t in TEMPLATES.items()
            ],
        }
        return TemplateResponse(request, "admin/rules/rule/templates.html", context)

    def template_view(self, request: HttpRequest, key: str):
        if not self.has_add_permission(request):
            raise PermissionDenied
        if key not in TEMPLATES:
            return HttpResponseRedirect(reverse("admin:rules_rule_templates"))
        template_cls = TEMPLATES[key]
        data = request.POST if request.method == "POST" else None
        rule_form = TemplateRuleForm(
            data,
            prefix="rule",
            initial={"name": str(template_cls.title)},
            suggested_tag=template_cls.suggested_tag,
        )
        answers = template_cls(data, prefix="t")
        if request.method == "POST" and rule_form.is_valid() and answers.is_valid():
            try:
                rule = self._create_from_template(request, rule_form.cleaned_data, answers.tree())
            except ValidationError as exc:
                rule_form.add_error(None, exc)
            except TaggingError as exc:
                rule_form.add_error("new_tag_name", exc.message)
            else:
                self.message_user(
                    request, _("Rule “%(rule)s” created.") % {"rule": rule}, messages.SUCCESS
                )
                return HttpResponseRedirect(reverse("admin:rules_rule_change", args=[rule.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": template_cls.title,
            "description": template_cls.description,
            "rule_form": rule_form,
            "answers": answers,
        }
        return TemplateResponse(request, "admin/rules/rule/template_form.html", context)


@admin.register(RuleRun)
class RuleRunAdmin(TagAdminOnly, admin.ModelAdmin):
    list_display = (
        "rule",
        "started_at",
        "trigger",
        "status",
        "dry_run",
        "matched",
        "added",
        "removed",
        "missed",
        "duration_display",
        "attempt",
        "error",
    )
    list_filter = ("status", "trigger", "dry_run")
    actions = ["run_again"]

    @admin.action(description=gettext_lazy("Run the rules of the selected runs again"))
    def run_again(self, request, queryset) -> None:
        """For failed runs (or lost ones, already failed by the reaper): queue their rules. A
        rule that is running now is recorded as skipped by its new run."""
        rule_ids = sorted(set(queryset.values_list("rule_id", "dry_run")))
        for rule_id, dry_run in rule_ids:
            if not queue_rule_run(
                rule_id, trigger=RunTrigger.MANUAL, dry_run=dry_run, actor_id=request.user.pk
            ):
                self.message_user(request, QUEUE_DOWN, messages.ERROR)
                return
        self.message_user(
            request,
            _("%(n)d rule(s) queued; see their run history for the results.")
            % {"n": len(rule_ids)},
            messages.SUCCESS,
        )

    list_select_related = ("rule",)
    search_fields = ("rule__name",)
    date_hierarchy = "started_at"

    @admin.display(description=gettext_lazy("duration"))
    def duration_display(self, run: RuleRun) -> str:
        return "—" if run.duration is None else f"{run.duration:.2f} s"

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in RuleRun._meta.fields]

    def has_add_permission(self, request, *args) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def rule_link(tag: Tag) -> str:
    """For the tag admin: the rule that owns an auto tag, linked, with its summary."""
    if tag.group.kind != TagKind.AUTO:
        return "—"
    rule = Rule.objects.filter(tag=tag).first()
    if rule is None:
        return _("No rule yet: this auto tag is never applied.")
    return format_html(
        '<a href="{}">{}</a>{} — {}',
        reverse("admin:rules_rule_change", args=[rule.pk]),
        rule.name,
        "" if rule.enabled else " " + _("(disabled)"),
        describe_tree(rule.tree, rule.tree_version),
    )


from rules import admin_realtime  # noqa: E402,F401  (real-time batches; rules.realtime)
