"""Admin plumbing shared by the tagging and customer admins: staff-wide visibility (scoped by
querysets), change forms that save through services and show their refusals as form errors,
per-request permission levels, scoped customer counts and tag chips."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from weakref import WeakKeyDictionary

from django.contrib import admin, messages
from django.contrib.admin.views.main import ORDER_VAR, PAGE_VAR, ChangeList
from django.core.paginator import Paginator
from django.db.models import Count, Exists, OuterRef, QuerySet
from django.http import HttpRequest
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html

from config.params import is_id
from permissions import policy
from tagging import audit_view, bitmaps
from tagging.errors import TaggingError
from tagging.models import Tag, TagAssignment, TagGroup, TagStatus

Level = policy.Level


def person(user: Any) -> str:
    """An employee as plain text. Django links a read-only foreign key to the employee's admin
    page whatever the viewer may open; only tag admins and user admins may open it, so the other
    pages name people without a link (a link that answers 403 is worse than none)."""
    return str(user) if user is not None else "—"


class ServiceRejected(Exception):
    """Raised inside save_model/save_formset when a service refuses; the change form is shown
    again with ``message`` as an error on ``field`` (or on the form)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


_NAME_CODES = {"invalid_name", "empty_name", "tag_name_too_long", "forbidden_character"}


def rejected(exc: TaggingError, *, prefix: str = "") -> ServiceRejected:
    is_name = exc.code in _NAME_CODES or exc.code == "duplicate_name"
    return ServiceRejected(f"{prefix}{exc.message}", "name" if is_name and not prefix else None)


class StaffAdmin(admin.ModelAdmin):
    """Every staff member may open these pages; what they see is scoped by ``get_queryset``."""

    class Media:
        css = {"all": ["tagdesk/admin.css"]}
        js = ["tagdesk/admin.js"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_staff

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.is_active and request.user.is_staff


class ReadOnlyAdminMixin:
    """Pages that show records or reports and never let anyone add, change or delete through
    Django's forms (audit log, events, analytics, the approval queue)."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ServiceFormAdmin(StaffAdmin):
    """A change form whose save goes through a service. If ``save_model``/``save_formset`` raise
    :class:`ServiceRejected`, the whole save is rolled back (Django runs the change form in a
    transaction) and the form is rendered again with the service's message as a form error."""

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)
        rejection = getattr(request, "_tagdesk_rejection", None)
        if rejection is None:
            return form_class

        class RejectedForm(form_class):
            def clean(self):
                cleaned = super().clean()
                field = rejection.field if rejection.field in self.fields else None
                self.add_error(field, rejection.message)
                return cleaned

        return RejectedForm

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ServiceRejected as exc:
            request._tagdesk_rejection = exc
            return super().changeform_view(request, object_id, form_url, extra_context)

    def delete_view(self, request, object_id, extra_context=None):
        try:
            return super().delete_view(request, object_id, extra_context)
        except TaggingError as exc:
            self.message_user(request, exc.message, messages.ERROR)
            opts = self.model._meta
            return redirect(
                reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[object_id])
            )

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # deletions go one by one through the service
        return actions


def copy_saved(saved, obj) -> None:
    """Make the admin's in-memory object the row the service saved (for log and redirect)."""
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


def group_levels(request: HttpRequest) -> dict[int, policy.Level]:
    """The user's level on every group, one query per request."""
    levels = _LEVELS_BY_REQUEST.get(request)
    if levels is None:
        levels = _LEVELS_BY_REQUEST[request] = policy.group_levels(request.user)
    return levels


# Per-request memo of group_levels; entries go with their request.
_LEVELS_BY_REQUEST: WeakKeyDictionary[HttpRequest, dict[int, policy.Level]] = WeakKeyDictionary()


def may_manage(request: HttpRequest, group_id: int | None) -> bool:
    return group_id is not None and group_levels(request).get(group_id, Level.NONE) >= Level.CREATE


def customer_counts(user, tag_ids: Iterable[int]) -> dict[int, int]:
    """Customers carrying each tag, counted within the user's customer scope
    (docs/permissions.md#customer-scope: seeing a group does not widen customer scope). Called for
    one page of tags at a time.

    On PostgreSQL the counts come from the segment index (``tagging.bitmaps``), never from a scan
    of the assignment table (10M rows): exact sizes for users who see every customer, and for
    the others the tag bitmaps intersected with a bitmap of their scope. Elsewhere (SQLite) one
    grouped query."""
    tag_ids = sorted(set(tag_ids))
    if not tag_ids:
        return {}
    sees_all = policy.sees_all_customers(user)
    if bitmaps.available():
        if sees_all:
            sizes = bitmaps.sizes()
            return {pk: sizes.get(pk, 0) for pk in tag_ids}
        scope = _scope_bitmap(user)
        loaded = bitmaps.load(tag_ids)
        return {pk: (loaded[pk] & scope).bit_count() for pk in tag_ids}
    rows = TagAssignment.objects.filter(tag_id__in=tag_ids)
    if not sees_all:
        rows = rows.filter(customer_id__in=policy.visible_customers(user).values("pk"))
    counted = rows.order_by().values_list("tag_id").annotate(n=Count("pk"))
    return {pk: 0 for pk in tag_ids} | dict(counted.values_list("tag_id", "n"))


def _scope_bitmap(user) -> int:
    """The user's visible customers as an int whose bit n is customer n (bitmaps' layout)."""
    ids = list(policy.visible_customers(user).order_by().values_list("pk", flat=True))
    if not ids:
        return 0
    bits = bytearray(max(ids) // 8 + 1)
    for pk in ids:
        bits[pk >> 3] |= 1 << (pk & 7)
    return int.from_bytes(bits, "little")


def tag_chip(tag: Tag, *, extra: str = "") -> str:
    archived = tag.status != TagStatus.ACTIVE
    return format_html(
        '<span class="td-chip{}" style="--td-colour:{}" title="{}">{}{}</span>',
        " td-chip-muted" if archived else "",
        tag.colour or tag.group.colour,
        f"{tag.group.name} · {tag.get_status_display()}",
        tag.name,
        extra,
    )


class CappedCountPaginator(Paginator):
    """Counts at most ``cap`` + 1 rows: an exact COUNT(*) over a million customers costs more
    than the page itself, and nobody pages past page 200 (they search or filter instead)."""

    cap = 10_000

    @cached_property
    def count(self) -> int:
        capped = self.object_list[: self.cap + 1]
        return capped.count() if isinstance(capped, QuerySet) else len(capped)


class WindowedCountMixin:
    """For logs of many millions of rows filtered per row by scope (events, audit): count only
    ten pages past the requested one, so a page never waits for a scan of the whole log."""

    paginator: type[Paginator] = CappedCountPaginator
    count_window_pages = 10

    def get_paginator(self, request, queryset, per_page, orphans=0, allow_empty_first_page=True):
        paginator = super().get_paginator(
            request, queryset, per_page, orphans, allow_empty_first_page
        )
        page = request.GET.get(PAGE_VAR, "1")
        # Bounded: the cap becomes a LIMIT, and page 10**20 must not overflow a bigint.
        page = min(int(page), 1_000_000) if is_id(page) else 1
        paginator.cap = per_page * (max(page, 1) + self.count_window_pages)
        return paginator


def in_customer_scope(user, field: str = "customer_id") -> Exists:
    """Rows whose customer (``field``) is in the user's scope, tested per row with an EXISTS on
    the customer's primary key: a page of the newest rows never materialises a whole scope."""
    return Exists(policy.visible_customers(user).filter(pk=OuterRef(field)))


def visible_group_ids(user):
    return policy.visible_groups(user).values("pk")


# --- changelists ------------------------------------------------------------------------------


class TreeChangeList(ChangeList):
    """Shows the groups as a tree (children under their parent, indented) unless the user sorts
    by a column or searches, which gives a flat list."""

    def get_results(self, request):
        super().get_results(request)
        groups = list(self.result_list)
        levels = group_levels(request)
        for group in groups:
            group.td_manageable = may_manage(request, group.pk)
            # A parent the user may not view is no parent for them (its id is never shown).
            group.td_parent_id = group.parent_id if group.parent_id in levels else None
        if ORDER_VAR not in self.params and not self.query:
            self.result_list = tree_order(groups)


def tree_order(groups: list[TagGroup]) -> list[TagGroup]:
    by_parent: dict[int | None, list[TagGroup]] = {}
    present = {g.pk for g in groups}
    for group in groups:
        parent = group.parent_id if group.parent_id in present else None
        by_parent.setdefault(parent, []).append(group)
    ordered: list[TagGroup] = []

    def walk(parent: int | None, depth: int) -> None:
        siblings = by_parent.get(parent, [])
        # Shared groups first, then personal ones (a tag admin sees everyone's).
        for group in sorted(siblings, key=lambda g: (g.owner_id is not None, g.sort_order, g.pk)):
            group.tree_depth = depth
            ordered.append(group)
            walk(group.pk, depth + 1)

    walk(None, 0)
    return ordered


class CountedChangeList(ChangeList):
    """Sets ``customer_count`` on the page's tags after pagination (see customer_counts)."""

    def get_results(self, request):
        super().get_results(request)
        tags = list(self.result_list)
        counts = customer_counts(request.user, [t.pk for t in tags])
        for tag in tags:
            tag.customer_count = counts.get(tag.pk, 0)
        self.result_list = tags


class RenderedAuditChangeList(ChangeList):
    """The page's entries rendered for the reader (``tagging.audit_view``) after pagination."""

    def get_results(self, request):
        super().get_results(request)
        self.result_list = audit_view.render_entries(self.result_list, request.user)
