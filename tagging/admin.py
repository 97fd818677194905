"""Django admin for the tag taxonomy and the audit log (docs/taxonomy.md, docs/permissions.md).

The admin is an adapter: it scopes every queryset, picker and filter with ``permissions.policy``
and writes only through ``tagging.services`` (create/update/delete, archive, merge, reorder), so
names are validated, limits hold and every change is audited. A service refusal is shown as a
form error or an admin message, never a 500.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import Count, Q
from django.http import HttpResponseRedirect, JsonResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext_lazy
from django.views.decorators.http import require_POST

from config.params import is_id
from permissions import policy
from rules.admin import rule_link
from tagging import (  # noqa: F401  (register their admins)
    admin_accuracy,
    admin_reviews,
    admin_suggestions,
    services,
)
from tagging.admin_base import (
    CountedChangeList,
    ServiceFormAdmin,
    ServiceRejected,
    TreeChangeList,
    copy_saved,
    customer_counts,
    group_levels,
    may_manage,
    person,
    rejected,
    tag_chip,
    visible_group_ids,
)
from tagging.audit_view import render_entries
from tagging.errors import TaggingError
from tagging.forms import ColourInput, MergeTagsForm, TagForm, TagGroupForm, TagInlineForm
from tagging.models import (
    AuditEntry,
    Tag,
    TagAssignment,
    TagGroup,
    TagKind,
    TagStatus,
)

Level = policy.Level

# --- tag groups ------------------------------------------------------------------------------


class TagInline(admin.TabularInline):
    model = Tag
    form = TagInlineForm
    fields = ("drag_handle", "name", "colour", "description", "status", "customer_count")
    readonly_fields = ("drag_handle", "status", "customer_count")
    extra = 0
    can_delete = False
    show_change_link = True
    ordering = ("sort_order", "id")
    verbose_name_plural = gettext_lazy("tags (drag ⠿ to reorder)")

    def get_queryset(self, request):
        return Tag.objects.select_related("group").order_by("sort_order", "id")

    def has_view_permission(self, request, obj=None):
        return True  # the parent group is visible (its admin's queryset is scoped)

    def has_add_permission(self, request, obj=None):
        if obj is None:  # a new group: save_formset checks can_create_tag once it exists
            return True
        return policy.can_create_tag(request.user, obj).allowed

    def has_change_permission(self, request, obj=None):
        return obj is not None and policy.can_manage_group(request.user, obj)

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="")
    def drag_handle(self, tag):
        if tag.pk is None or not getattr(self, "_manageable", False):
            return ""
        return format_html(
            '<span class="td-drag" draggable="true" data-id="{}" data-parent="{}" data-depth="0"'
            ' data-url="{}" title="{}">⠿</span>',
            tag.pk,
            tag.group_id,
            reverse("admin:tagging_taggroup_reorder_tags", args=[tag.group_id]),
            _("Drag to reorder"),
        )

    @admin.display(description=gettext_lazy("customers"))
    def customer_count(self, tag):
        count = getattr(self, "_counts", {}).get(tag.pk)
        if count is None:
            return "—"
        url = reverse("admin:customers_customer_changelist") + f"?tag={tag.pk}"
        return format_html('<a href="{}">{}</a>', url, count)

    def get_formset(self, request, obj=None, **kwargs):
        self._manageable = obj is not None and policy.can_manage_group(request.user, obj)
        if obj is not None:  # an empty tag colour means the group's: show it as the hint
            kwargs["widgets"] = {"colour": ColourInput(attrs={"placeholder": obj.colour})}
            # Inline instances live for one request: count this group's tags once.
            self._counts = customer_counts(request.user, obj.tags.values_list("pk", flat=True))
        return super().get_formset(request, obj, **kwargs)


@admin.register(TagGroup)
class TagGroupAdmin(ServiceFormAdmin):
    form = TagGroupForm
    inlines = [TagInline]
    list_display = ("drag_handle", "tree_name", "kind", "exclusive", "tag_count", "owner")
    list_display_links = ("tree_name",)
    list_filter = ("kind", "exclusive")
    search_fields = ("name",)
    list_per_page = 500
    readonly_fields = ("parent_display", "owner_display", "created_at", "updated_at", "matrix_link")

    def get_queryset(self, request):
        return (
            TagGroup.objects.filter(pk__in=visible_group_ids(request.user))
            .select_related("owner")
            .annotate(tag_count=Count("tags", filter=~Q(tags__status=TagStatus.ARCHIVED)))
        )

    def get_changelist(self, request, **kwargs):
        return TreeChangeList

    actions = ["apply_permission_template"]

    def has_grant_permission(self, request):
        return policy.is_tag_admin(request.user)

    @admin.action(description=gettext_lazy("Apply a permission template…"), permissions=["grant"])
    def apply_permission_template(self, request, queryset):
        """Hand the selected shared groups to the permissions admin's template page."""
        from permissions.models import PermissionTemplate

        ids = list(queryset.exclude(kind=TagKind.PERSONAL).values_list("pk", flat=True))
        if not ids:
            self.message_user(
                request, _("Permissions apply to shared groups only."), messages.WARNING
            )
            return None
        try:
            links = [
                (
                    template,
                    reverse("admin:permissions_template_apply", args=[template.pk])
                    + "?groups="
                    + ",".join(map(str, ids)),
                )
                for template in PermissionTemplate.objects.all()
            ]
        except NoReverseMatch:
            links = []
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Apply a permission template"),
            "groups": queryset.exclude(kind=TagKind.PERSONAL),
            "links": links,
        }
        return TemplateResponse(request, "admin/tagging/taggroup/choose_template.html", context)

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["name", "parent", "kind", "colour", "exclusive", "description"]
        # The parent is picked among groups the user manages; a current parent outside them
        # (hidden, or only viewed) is shown read-only, else saving the form would silently
        # move the group to the top level.
        movable = obj.parent_id is None or may_manage(request, obj.parent_id)
        parent = (
            "parent" if movable and self.has_change_permission(request, obj) else "parent_display"
        )
        fields = ["name", parent, "kind", "colour", "exclusive", "description"]
        fields += ["owner_display", "created_at", "updated_at"]
        # The matrix is for tag admins: nobody else gets a link that would answer 403.
        if policy.is_tag_admin(request.user) and obj.kind != TagKind.PERSONAL:
            fields.append("matrix_link")
        return fields

    def get_readonly_fields(self, request, obj=None):
        fixed = ["parent_display", "owner_display", "created_at", "updated_at", "matrix_link"]
        return [*fixed, "kind"] if obj is not None else fixed

    def has_add_permission(self, request):
        # Tag admins create shared groups; everyone may create personal groups of their own.
        return request.user.is_active and request.user.is_staff

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return any(level >= Level.CREATE for level in group_levels(request).values())
        return policy.can_manage_group(request.user, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is None:
            return policy.is_tag_admin(request.user)
        return policy.can_manage_group(request.user, obj)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "parent":
            kwargs["queryset"] = TagGroup.objects.filter(
                pk__in=policy.visible_groups(request.user, Level.CREATE).values("pk")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_choice_field(self, db_field, request, **kwargs):
        if db_field.name == "kind" and not policy.is_tag_admin(request.user):
            kwargs["choices"] = [(TagKind.PERSONAL, TagKind.PERSONAL.label)]
        return super().formfield_for_choice_field(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if not policy.is_tag_admin(request.user):
            initial.setdefault("kind", TagKind.PERSONAL)
        return initial

    # list columns

    @admin.display(description="")
    def drag_handle(self, group):
        if not getattr(group, "td_manageable", False):
            return ""
        return format_html(
            '<span class="td-drag" draggable="true" data-id="{}" data-parent="{}" data-depth="{}"'
            ' data-url="{}" title="{}">⠿</span>',
            group.pk,
            getattr(group, "td_parent_id", None) or "",
            getattr(group, "tree_depth", 0),
            reverse("admin:tagging_taggroup_reorder"),
            _("Drag to reorder"),
        )

    @admin.display(description=gettext_lazy("name"), ordering="name")
    def tree_name(self, group):
        return format_html(
            '<span class="td-tree" data-depth="{}" style="padding-left:{}em">{}'
            '<span class="td-swatch" style="background:{}"></span>{}</span>',
            getattr(group, "tree_depth", 0),
            1.6 * getattr(group, "tree_depth", 0),
            "└ " if getattr(group, "tree_depth", 0) else "",
            group.colour,
            group.name,
        )

    @admin.display(description=gettext_lazy("tags"), ordering="tag_count")
    def tag_count(self, group):
        return group.tag_count

    @admin.display(description=pgettext_lazy("what belongs to one employee", "owner"))
    def owner_display(self, group):
        return person(group.owner) if group.owner_id else "—"

    @admin.display(description=gettext_lazy("parent group"))
    def parent_display(self, group):
        # Never name a parent the user cannot view.
        if group.parent_id and getattr(group, "td_parent_visible", False):
            return group.parent.name
        return "—"

    @admin.display(description=gettext_lazy("permissions"))
    def matrix_link(self, group):
        if group.pk is None or group.kind == TagKind.PERSONAL:
            return "—"
        try:
            url = reverse("admin:permissions_group_matrix", args=[group.pk])
        except NoReverseMatch:
            return "—"
        return format_html('<a href="{}">{}</a>', url, _("Department permission matrix"))

    def get_object(self, request, object_id, from_field=None):
        group = super().get_object(request, object_id, from_field)
        if group is not None and group.parent_id:
            group.td_parent_visible = group.parent_id in group_levels(request)
        return group

    # writes through the service

    _EDITABLE = ("name", "colour", "parent", "exclusive", "description")

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            if change:
                changes = {f: data[f] for f in form.changed_data if f in self._EDITABLE}
                saved = services.update_group(obj, actor=request.user, **changes)
            else:
                kind = data["kind"]
                if kind != TagKind.PERSONAL and not policy.is_tag_admin(request.user):
                    raise ServiceRejected(_("Only tag admins create shared tag groups."), "kind")
                if data.get("parent") and not policy.can_manage_group(request.user, data["parent"]):
                    raise ServiceRejected(_("You may not add groups under this group."), "parent")
                saved = services.create_group(
                    name=data["name"],
                    actor=request.user,
                    kind=kind,
                    colour=data.get("colour") or None,
                    parent=data.get("parent"),
                    exclusive=data.get("exclusive", False),
                    owner=request.user if kind == TagKind.PERSONAL else None,
                    description=data.get("description", ""),
                )
        except TaggingError as exc:
            raise rejected(exc) from exc
        copy_saved(saved, obj)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Tag:
            return super().save_formset(request, form, formset, change)
        group = form.instance
        decision = None
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for tag_form in formset.forms:
            if not tag_form.has_changed():
                continue
            data = tag_form.cleaned_data
            label = (data.get("name") or "").strip()
            try:
                if tag_form.instance.pk is None:
                    decision = decision or policy.can_create_tag(request.user, group)
                    if not decision.allowed:
                        raise ServiceRejected(_("You may not create tags in this group."))
                    tag = services.create_tag(
                        group,
                        data["name"],
                        actor=request.user,
                        colour=data.get("colour", ""),
                        description=data.get("description", ""),
                        status=TagStatus.PENDING if decision.needs_approval else TagStatus.ACTIVE,
                    )
                    formset.new_objects.append(tag)
                else:
                    changes = {f: data[f] for f in tag_form.changed_data if f in data}
                    tag = services.update_tag(tag_form.instance, actor=request.user, **changes)
                    formset.changed_objects.append((tag, tag_form.changed_data))
            except TaggingError as exc:
                raise rejected(exc, prefix=f"{label}: ") from exc

    def delete_model(self, request, obj):
        services.delete_group(obj, actor=request.user)

    # drag-sort endpoints

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("reorder/", view(self.reorder_view), name="tagging_taggroup_reorder"),
            path(
                "<int:group_id>/reorder-tags/",
                view(self.reorder_tags_view),
                name="tagging_taggroup_reorder_tags",
            ),
            *super().get_urls(),
        ]

    @staticmethod
    def _posted_ids(request) -> list[int] | None:
        try:
            ids = [int(value) for value in request.POST.getlist("ids")]
        except ValueError:
            return None
        return ids if ids and len(ids) == len(set(ids)) else None

    @staticmethod
    def _json_error(message: str, status: int) -> JsonResponse:
        return JsonResponse({"ok": False, "error": message}, status=status)

    def reorder_view(self, request):
        """POST ``ids`` (sibling groups in their new order)."""
        return require_POST(self._reorder_groups)(request)

    def _reorder_groups(self, request):
        ids = self._posted_ids(request)
        if ids is None:
            return self._json_error(_("Send the groups' ids in their new order."), 400)
        groups = list(
            TagGroup.objects.filter(pk__in=ids).filter(pk__in=visible_group_ids(request.user))
        )
        if len(groups) != len(ids):
            return self._json_error(_("Some of these tag groups do not exist."), 404)
        if len({g.parent_id for g in groups}) != 1:
            return self._json_error(
                _("Only groups under the same parent are sorted together."), 400
            )
        levels = policy.group_levels(request.user, ids)
        if any(levels.get(pk, Level.NONE) < Level.CREATE for pk in ids):
            return self._json_error(_("You may not reorder these tag groups."), 403)
        services.reorder_groups(ids, actor=request.user)
        return JsonResponse({"ok": True, "order": ids})

    def reorder_tags_view(self, request, group_id):
        return require_POST(self._reorder_tags)(request, group_id)

    def _reorder_tags(self, request, group_id):
        group = self.get_queryset(request).filter(pk=group_id).first()
        if group is None:
            return self._json_error(_("This tag group does not exist."), 404)
        if not policy.can_manage_group(request.user, group):
            return self._json_error(_("You may not reorder the tags of this group."), 403)
        ids = self._posted_ids(request)
        if ids is None:
            return self._json_error(_("Send the tags' ids in their new order."), 400)
        try:
            services.reorder_tags(group, ids, actor=request.user)
        except TaggingError as exc:
            return self._json_error(exc.message, 400)
        return JsonResponse({"ok": True, "order": ids})


# --- tags --------------------------------------------------------------------------------------


class VisibleGroupFilter(admin.SimpleListFilter):
    title = gettext_lazy("tag group")
    parameter_name = "group"

    def lookups(self, request, model_admin):
        groups = TagGroup.objects.filter(pk__in=visible_group_ids(request.user))
        return [(g.pk, g.name) for g in groups]

    def queryset(self, request, queryset):
        if is_id(self.value()):
            return queryset.filter(group_id=int(self.value()))
        return queryset


@admin.register(Tag)
class TagAdmin(ServiceFormAdmin):
    form = TagForm
    list_display = ("chip", "group", "status", "customer_count", "created_by", "updated_at")
    list_filter = ("status", VisibleGroupFilter)
    list_select_related = ("group", "created_by")
    search_fields = ("name", "group__name")
    actions = ["archive_tags", "restore_tags", "merge_tags"]
    readonly_fields = (
        "status",
        "customer_count",
        "merged_into_display",
        "owning_rule",
        "created_by_display",
        "reviewed_by_display",
        "review_note",
        "created_at",
        "updated_at",
        "archived_at",
    )

    @admin.display(description=gettext_lazy("created by"))
    def created_by_display(self, tag):
        return person(tag.created_by)

    @admin.display(description=gettext_lazy("reviewed by"))
    def reviewed_by_display(self, tag):
        return person(tag.reviewed_by)

    def get_queryset(self, request):
        visible = policy.visible_tags(request.user, include_inactive=True).values("pk")
        return Tag.objects.filter(pk__in=visible).select_related(
            "group", "created_by", "reviewed_by"
        )

    def get_changelist(self, request, **kwargs):
        return CountedChangeList

    def get_fields(self, request, obj=None):
        fields = ["group", "name", "colour", "description"]
        if obj is None:
            return fields
        return [*fields, *self.readonly_fields]

    def get_readonly_fields(self, request, obj=None):
        return list(self.readonly_fields) if obj is not None else []

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is not None:  # an empty tag colour means the group's: show it as the hint
            kwargs["widgets"] = {"colour": ColourInput(attrs={"placeholder": obj.group.colour})}
        return super().get_form(request, obj, change=change, **kwargs)

    def has_add_permission(self, request):
        return any(level >= Level.CREATE for level in group_levels(request).values())

    def has_change_permission(self, request, obj=None):
        if obj is None:
            return self.has_add_permission(request)
        return policy.can_manage_group(request.user, obj.group)

    def has_delete_permission(self, request, obj=None):
        return obj is not None and policy.can_manage_group(request.user, obj.group)

    def has_manage_permission(self, request):
        return self.has_add_permission(request)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "group":
            kwargs["queryset"] = TagGroup.objects.filter(
                pk__in=policy.visible_groups(request.user, Level.CREATE).values("pk")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description=gettext_lazy("tag"), ordering="name")
    def chip(self, tag):
        return tag_chip(tag)

    @admin.display(description=gettext_lazy("customers"))
    def customer_count(self, tag):
        count = getattr(tag, "customer_count", None)
        if count is None:
            return "—"
        url = reverse("admin:customers_customer_changelist") + f"?tag={tag.pk}"
        return format_html('<a href="{}">{}</a>', url, count)

    @admin.display(description=gettext_lazy("merged into"))
    def merged_into_display(self, tag):
        return str(getattr(tag, "td_merged_into", None) or "—")

    owning_rule = admin.display(description=gettext_lazy("rule"))(lambda self, tag: rule_link(tag))

    def get_object(self, request, object_id, from_field=None):
        tag = super().get_object(request, object_id, from_field)
        if tag is not None:
            tag.customer_count = customer_counts(request.user, [tag.pk])[tag.pk]
        if tag is not None and tag.merged_into_id:
            # Name the merge target only when the user may see it.
            tag.td_merged_into = self.get_queryset(request).filter(pk=tag.merged_into_id).first()
        return tag

    def render_change_form(self, request, context, *args, obj=None, **kwargs):
        if obj is not None:
            context["change_log"] = render_entries(
                AuditEntry.objects.filter(tag_id=obj.pk)
                .exclude(action__startswith="assignment.")
                .select_related("actor")[:50],
                request.user,
            )
            context["change_log_url"] = (
                reverse("admin:tagging_auditentry_changelist") + f"?tag__id__exact={obj.pk}"
            )
        return super().render_change_form(request, context, *args, obj=obj, **kwargs)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        try:
            if change:
                changes = {f: data[f] for f in form.changed_data if f in data}
                if "group" in changes and not policy.can_manage_group(
                    request.user, changes["group"]
                ):
                    raise ServiceRejected(_("You may not move tags into this group."), "group")
                saved = services.update_tag(obj, actor=request.user, **changes)
            else:
                decision = policy.can_create_tag(request.user, data["group"])
                if not decision.allowed:
                    raise ServiceRejected(_("You may not create tags in this group."), "group")
                saved = services.create_tag(
                    data["group"],
                    data["name"],
                    actor=request.user,
                    colour=data.get("colour", ""),
                    description=data.get("description", ""),
                    status=TagStatus.PENDING if decision.needs_approval else TagStatus.ACTIVE,
                )
        except TaggingError as exc:
            raise rejected(exc) from exc
        copy_saved(saved, obj)

    def response_add(self, request, obj, post_url_continue=None):
        """A proposed tag gets one message saying what happened (not Django's "added
        successfully" next to a "needs approval" warning)."""
        if obj.status != TagStatus.PENDING:
            return super().response_add(request, obj, post_url_continue)
        self.message_user(
            request,
            _(
                "“%(tag)s” was proposed. It waits for a tag admin's approval before it can be "
                "used; you can follow it in the approval queue."
            )
            % {"tag": obj},
            messages.WARNING,
        )
        if "_addanother" in request.POST:
            return HttpResponseRedirect(request.path)
        if "_continue" in request.POST:
            return HttpResponseRedirect(
                reverse("admin:tagging_tag_change", args=[obj.pk], current_app=self.admin_site.name)
            )
        try:
            return HttpResponseRedirect(reverse("admin:permissions_tagproposal_changelist"))
        except NoReverseMatch:
            return HttpResponseRedirect(reverse("admin:tagging_tag_changelist"))

    def delete_model(self, request, obj):
        # The admin's confirmation page is the explicit confirmation docs/taxonomy.md#lifecycle asks
        # for.
        services.delete_tag(obj, actor=request.user, confirm=True)

    def get_deleted_objects(self, objs, request):
        # Don't list every assignment (a tag may carry a million); count them instead.
        counts = dict(
            TagAssignment.objects.filter(tag__in=objs)
            .values_list("tag_id")
            .annotate(n=Count("pk"))
            .values_list("tag_id", "n")
        )
        total = sum(counts.values())
        model_count = {Tag._meta.verbose_name_plural: len(objs)}
        if total:
            model_count[TagAssignment._meta.verbose_name_plural] = total
        return [str(o) for o in objs], model_count, set(), []

    # actions

    def _manageable(self, request, queryset) -> list[Tag] | None:
        """All selected tags, or None (after a message) when the user may not manage one."""
        tags = list(queryset.select_related("group"))
        levels = policy.group_levels(request.user, {t.group_id for t in tags})
        denied = [t for t in tags if levels.get(t.group_id, Level.NONE) < Level.CREATE]
        if denied:
            self.message_user(
                request,
                _("You may not archive, restore or merge: %(tags)s.")
                % {"tags": ", ".join(str(t) for t in denied[:10])},
                messages.ERROR,
            )
            return None
        return tags

    def _run_each(self, request, tags, operation, done_message):
        done = 0
        for tag in tags:
            try:
                operation(tag)
                done += 1
            except TaggingError as exc:
                self.message_user(request, exc.message, messages.ERROR)
        if done:
            self.message_user(request, done_message % {"count": done}, messages.SUCCESS)

    @admin.action(description=gettext_lazy("Archive selected tags"), permissions=["manage"])
    def archive_tags(self, request, queryset):
        tags = self._manageable(request, queryset)
        if tags is not None:
            self._run_each(
                request,
                [t for t in tags if t.status == TagStatus.ACTIVE],
                lambda t: services.archive_tag(t, actor=request.user),
                _("Archived %(count)d tags; their customers keep them in history."),
            )

    @admin.action(description=gettext_lazy("Restore selected tags"), permissions=["manage"])
    def restore_tags(self, request, queryset):
        tags = self._manageable(request, queryset)
        if tags is not None:
            self._run_each(
                request,
                [t for t in tags if t.status == TagStatus.ARCHIVED],
                lambda t: services.restore_tag(t, actor=request.user),
                _("Restored %(count)d tags."),
            )

    @admin.action(description=gettext_lazy("Merge selected tags into…"), permissions=["manage"])
    def merge_tags(self, request, queryset):
        sources = self._manageable(request, queryset)
        if sources is None:
            return None
        targets = Tag.objects.filter(
            pk__in=policy.visible_tags(request.user, Level.CREATE).values("pk")
        ).exclude(pk__in=[t.pk for t in sources])
        form = MergeTagsForm(
            request.POST if ("_preview" in request.POST or "_merge" in request.POST) else None,
            targets=targets,
        )
        preview = None
        if form.is_valid():
            target = form.cleaned_data["target"]
            preview = merge_preview(request.user, sources, target)
            # The Merge button comes with the preview; if the user then picked another target,
            # show that target's preview instead of merging into it unseen.
            previewed = request.POST.get("previewed", str(target.pk))
            if "_merge" in request.POST and previewed == str(target.pk):
                try:
                    added = services.merge_tags(sources, target, actor=request.user)
                except TaggingError as exc:
                    form.add_error(None, exc.message)
                else:
                    self.message_user(
                        request,
                        _("Merged %(count)d tags into “%(target)s”; %(added)d customers gained it.")
                        % {"count": len(sources), "target": target, "added": added},
                        messages.SUCCESS,
                    )
                    return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Merge tags"),
            "sources": sources,
            "form": form,
            "preview": preview,
            "action": "merge_tags",
        }
        return TemplateResponse(request, "admin/tagging/tag/merge.html", context)


def merge_preview(user, sources: list[Tag], target: Tag) -> dict[str, Any]:
    """What a merge would do, counted within the user's customer scope."""
    holders = TagAssignment.objects.filter(tag__in=sources)
    if not policy.sees_all_customers(user):
        holders = holders.filter(customer_id__in=policy.visible_customers(user).values("pk"))
    target_holders = TagAssignment.objects.filter(tag=target).values("customer_id")
    per_tag = dict(holders.values_list("tag_id").annotate(n=Count("pk")).values_list("tag_id", "n"))
    customers = holders.values("customer_id").distinct()
    return {
        "target": target,
        "per_tag": [(t, per_tag.get(t.pk, 0)) for t in sources],
        "moving": customers.exclude(customer_id__in=target_holders).count(),
        "already": customers.filter(customer_id__in=target_holders).count(),
        "exclusive": target.group.exclusive,
        "scoped": not policy.sees_all_customers(user),
    }


# The audit log's admin is registered from its own module.
from tagging import admin_audit  # noqa: E402,F401
