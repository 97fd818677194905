"""Django admin for customers, their followers and events (docs/taxonomy.md#customers,
docs/permissions.md#customer-scope).

Operations staff find customers (name, external_userid, phone in any spelling), filter them by
tag, see tags as coloured chips and tag or untag many customers at once. Everything is scoped by
``permissions.policy``: the customer list is the user's customer scope, pickers and filters offer
only tags the user may view (or edit), and assignments go through ``tagging.services``.

Extension points: other helpers add list filters (``list_filter``) and import/export buttons
(a mixin placed first in ``CustomerAdmin``'s bases).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import unquote
from django.db.models import Exists, OuterRef, Prefetch
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from config.params import is_id
from customers.admin_import import CustomerImportExportMixin
from customers.admin_tags import CustomerTaggingMixin
from customers.forms import BulkTagForm, CustomerForm, EraseCustomersForm
from customers.models import EXTERNAL_USERID_RE, Customer, CustomerEvent, Follower
from customers.phones import format_phone, try_normalize_phone
from customers.services import (
    erase_customers,
    remove_followers,
    save_customer,
    save_follower,
    search_customers,
)
from permissions import policy
from tagging import services
from tagging.admin_analytics import SegmentListFilter
from tagging.admin_base import (
    CappedCountPaginator,
    ReadOnlyAdminMixin,
    StaffAdmin,
    WindowedCountMixin,
    in_customer_scope,
    person,
    tag_chip,
)
from tagging.audit_view import customer_timeline, render_entries
from tagging.errors import TaggingError
from tagging.models import AssignmentSource, TagAssignment, TagStatus


def visible_assignments(user):
    """The assignments of tags shown to the user on customers (``policy.customer_tags``), with
    tag and group, in display order."""
    visible = policy.customer_tags(user).values("pk")
    return (
        TagAssignment.objects.filter(tag_id__in=visible)
        .select_related("tag__group")
        .order_by("tag__group__sort_order", "tag__group_id", "tag__sort_order", "tag_id")
    )


class TagListFilter(admin.SimpleListFilter):
    """Customers carrying one tag, chosen among the tags the user may view."""

    title = gettext_lazy("tag")
    parameter_name = "tag"
    template = "admin/customers/filter_select.html"

    def lookups(self, request, model_admin):
        tags = (
            policy.customer_tags(request.user)
            .exclude(status=TagStatus.PENDING)
            .select_related("group")
            .order_by("group__sort_order", "group_id", "sort_order", "id")
        )
        return [(str(t.pk), f"{t.group.name} : {t.name}") for t in tags]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        if not is_id(value):
            raise IncorrectLookupParameters(_("Choose a tag from the list."))
        tag_id = int(value)
        # A tag the user cannot view filters to nothing (and is never named).
        visible = policy.customer_tags(request.user).filter(pk=tag_id)
        return queryset.filter(
            Exists(TagAssignment.objects.filter(customer_id=OuterRef("pk"), tag_id=tag_id)),
            Exists(visible),
        )


class FollowerInline(admin.TabularInline):
    """The customer's followers: everyone in scope sees them; tag admins add, change and remove
    them (saved through ``customers.services``, audited)."""

    model = Follower
    fields = ("employee", "added_at", "add_way", "remark")
    shown_fields = ("employee_display", "added_at", "add_way", "remark")  # read-only view
    extra = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("employee")

    @admin.display(description=gettext_lazy("employee"))
    def employee_display(self, follower):
        return person(follower.employee)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "employee":
            kwargs["queryset"] = policy.assignable_owners(request.user).order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_fields(self, request, obj=None):
        return self.fields if policy.is_tag_admin(request.user) else self.shown_fields

    def get_readonly_fields(self, request, obj=None):
        return () if policy.is_tag_admin(request.user) else self.shown_fields

    def get_extra(self, request, obj=None, **kwargs):
        return 1 if policy.is_tag_admin(request.user) else 0

    def has_view_permission(self, request, obj=None):
        return True  # the customer is in the user's scope (its admin's queryset)

    def has_add_permission(self, request, obj=None):
        return policy.is_tag_admin(request.user)

    def has_change_permission(self, request, obj=None):
        return policy.is_tag_admin(request.user)

    def has_delete_permission(self, request, obj=None):
        return policy.is_tag_admin(request.user)


@admin.register(Customer)
class CustomerAdmin(CustomerTaggingMixin, CustomerImportExportMixin, StaffAdmin):
    form = CustomerForm
    list_display = [
        "__str__",
        "phone_display",
        "external_userid",
        "owner",
        "department",
        "tag_chips",
        "last_contact",
    ]
    list_filter = [TagListFilter, SegmentListFilter, "department"]
    list_select_related = ["owner", "department"]
    search_fields = ["name"]  # shows the box; get_search_results does the matching
    search_help_text = gettext_lazy(
        "Name, remark, company, external userid or phone in any spelling (138 0013 8000, "
        "+86 138-0013-8000…)"
    )
    list_per_page = 50
    show_full_result_count = False
    paginator = CappedCountPaginator
    actions = ["add_tags", "remove_tags", "erase_customers"]
    inlines = [FollowerInline]
    readonly_fields = [
        "total_spend",
        "order_count",
        "last_order_at",
        "last_contact_at",
        "created_at",
        "updated_at",
    ]
    fieldsets = [
        (None, {"fields": ["name", "external_userid", "phone", "company", "remark"]}),
        (gettext_lazy("Ownership"), {"fields": ["owner", "department", "source", "added_at"]}),
        (
            gettext_lazy("From events"),
            {"fields": ["total_spend", "order_count", "last_order_at", "last_contact_at"]},
        ),
        (
            gettext_lazy("More"),
            {"fields": ["attributes", "created_at", "updated_at"], "classes": ["collapse"]},
        ),
    ]
    timeline_length = 100
    recent_events_length = 20

    def get_queryset(self, request):
        return policy.visible_customers(request.user).prefetch_related(
            Prefetch("assignments", visible_assignments(request.user), to_attr="visible_tags")
        )

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        # The department and owner choices follow the user's scope (permissions.policy).
        return type(form.__name__, (form,), {"user": request.user})

    def has_change_permission(self, request, obj=None):
        # A customer shared with the user read-only (a view share) opens as a read-only page.
        if not super().has_change_permission(request, obj):
            return False
        if obj is None or obj.pk is None:
            return True
        cache = request.__dict__.setdefault("_tagdesk_editable_customers", {})
        if obj.pk not in cache:
            cache[obj.pk] = policy.editable_customers(request.user).filter(pk=obj.pk).exists()
        return cache[obj.pk]

    # On a read-only page Django links the owner and the department to their admin pages,
    # which most readers may not open: name them instead (a link that answers 403 is worse).
    _UNLINKED = {"owner": "owner_display", "department": "department_display"}

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None or self.has_change_permission(request, obj):
            return fieldsets
        return [
            (name, {**opts, "fields": [self._UNLINKED.get(f, f) for f in opts["fields"]]})
            for name, opts in fieldsets
        ]

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if obj is not None and not self.has_change_permission(request, obj):
            fields += list(self._UNLINKED.values())
        return fields

    @admin.display(description=gettext_lazy("owner"))
    def owner_display(self, customer):
        return person(customer.owner)

    @admin.display(description=gettext_lazy("department"))
    def department_display(self, customer):
        return str(customer.department) if customer.department_id else "—"

    def save_model(self, request, obj, form, change):
        # Through the service so that every edit lands in the audit log
        # (docs/taxonomy.md#assignments-and-history).
        save_customer(obj, actor=request.user, via=AssignmentSource.MANUAL)

    def save_formset(self, request, form, formset, change):
        if formset.model is not Follower:
            return super().save_formset(request, form, formset, change)
        # Followers change through the service so that each change is audited.
        followers = formset.save(commit=False)
        for follower in formset.deleted_objects:
            remove_followers(
                follower.customer_id,
                [follower.employee_id],
                actor=request.user,
                via=AssignmentSource.MANUAL,
            )
        for follower in followers:
            save_follower(follower, actor=request.user, via=AssignmentSource.MANUAL)
        return None

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        # Whole identifiers take the unique indexes instead of substring scans of every name.
        phone = try_normalize_phone(term) if term else None
        if phone:
            return queryset.filter(phone=phone), False
        if EXTERNAL_USERID_RE.match(term) and queryset.filter(external_userid=term).exists():
            return queryset.filter(external_userid=term), False
        return search_customers(queryset, term), False

    def has_delete_permission(self, request, obj=None):
        # Django's delete would drop the customer without redacting its audit entries or
        # auditing the deletion; customers leave only through the "Erase" action (services).
        return False

    def has_erase_permission(self, request):
        return policy.may_erase_customers(request.user)

    @admin.action(
        description=gettext_lazy("Erase customers (right to deletion)…"), permissions=["erase"]
    )
    def erase_customers(self, request, queryset):
        """Confirmation page, then ``services.erase_customers`` (tag admins only)."""
        limit = settings.TAGDESK_MAX_BATCH_CUSTOMERS
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: limit + 1])
        if len(ids) > limit:
            self.message_user(
                request,
                _("Select at most %(limit)d customers at a time.") % {"limit": limit},
                messages.ERROR,
            )
            return None
        submitted = "_apply" in request.POST
        form = EraseCustomersForm(request.POST if submitted else None)
        if submitted and form.is_valid():
            try:
                result = erase_customers(
                    ids, actor=request.user, reason=form.cleaned_data["reason"]
                )
            except TaggingError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(
                    request,
                    ngettext(
                        "Erased %(n)d customer with %(a)d tag assignments, %(e)d events and "
                        "%(f)d followers; %(r)d audit entries anonymised.",
                        "Erased %(n)d customers with %(a)d tag assignments, %(e)d events and "
                        "%(f)d followers; %(r)d audit entries anonymised.",
                        result.customers,
                    )
                    % {
                        "n": result.customers,
                        "a": result.assignments,
                        "e": result.events,
                        "f": result.followers,
                        "r": result.audit_entries_redacted,
                    },
                    messages.SUCCESS,
                )
                return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Erase customers"),
            "form": form,
            "ids": ids,
            "sample": Customer.objects.filter(pk__in=ids[:20]).order_by("pk"),
            "count": len(ids),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/customers/customer/erase.html", context)

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        if "department" not in initial and not policy.sees_all_customers(request.user):
            # A new customer outside the creator's scope would vanish from their view.
            membership = request.user.memberships.order_by("pk").first()
            if membership is not None:
                initial["department"] = membership.department_id
        return initial

    def has_tag_permission(self, request):
        # Asked several times per changelist (once per action listing): answer once a request.
        if not hasattr(request, "_tagdesk_may_tag"):
            request._tagdesk_may_tag = policy.visible_tags(request.user, policy.Level.EDIT).exists()
        return request._tagdesk_may_tag

    @admin.display(description=gettext_lazy("mobile phone"), ordering="phone")
    def phone_display(self, customer):
        return format_phone(customer.phone, national=True)

    @admin.display(description=gettext_lazy("last contact"), ordering="last_contact_at")
    def last_contact(self, customer):
        # The day in the list (the column stays narrow at 1400 px), the time on hover.
        if customer.last_contact_at is None:
            return "—"
        when = timezone.localtime(customer.last_contact_at)
        return format_html(
            '<span title="{}">{}</span>', f"{when:%Y-%m-%d %H:%M}", f"{when:%Y-%m-%d}"
        )

    chips_shown = 6  # more make a row many lines tall; the rest are counted, named on hover

    @admin.display(description=gettext_lazy("tags"))
    def tag_chips(self, customer):
        assignments = getattr(customer, "visible_tags", [])
        shown, rest = assignments[: self.chips_shown], assignments[self.chips_shown :]
        chips = format_html_join(" ", "{}", ((tag_chip(a.tag),) for a in shown))
        if not rest:
            return chips
        return format_html(
            '{} <span class="td-chip td-chip-more" title="{}">{}</span>',
            chips,
            "、".join(str(a.tag) for a in rest),
            _("+%(count)d more") % {"count": len(rest)},
        )

    # the change page: current tags, timeline, recent events

    def change_view(self, request, object_id, form_url="", extra_context=None):
        customer = self.get_object(request, unquote(object_id))
        context = dict(extra_context or {})
        if customer is not None:
            context.update(self.customer_panels(request, customer))
            if "tag_form" not in context:
                context["tag_form"] = self.tag_form(request, customer)
            if context["tag_form"] is not None:
                context["tag_suggestions"] = self.tag_suggestions(request, customer)
        return super().change_view(request, object_id, form_url, context)

    def customer_panels(self, request, customer) -> dict:
        user = request.user
        timeline = customer_timeline(user, customer.pk)[: self.timeline_length]
        return {
            "current_tags": [a for a in customer.visible_tags],
            "timeline": render_entries(timeline, user),
            "timeline_url": (
                f"{_admin_url('tagging_auditentry_changelist')}?customer__id__exact={customer.pk}"
            ),
            "recent_events": customer.events.order_by("-occurred_at")[: self.recent_events_length],
            "events_url": (
                f"{_admin_url('customers_customerevent_changelist')}"
                f"?customer__id__exact={customer.pk}"
            ),
        }

    # bulk tagging

    @admin.action(description=gettext_lazy("Add tags…"), permissions=["tag"])
    def add_tags(self, request, queryset):
        return self._bulk_tags(request, queryset, "add")

    @admin.action(description=gettext_lazy("Remove tags…"), permissions=["tag"])
    def remove_tags(self, request, queryset):
        return self._bulk_tags(request, queryset, "remove")

    def _bulk_tags(self, request, queryset, mode: str):
        limit = settings.TAGDESK_MAX_BATCH_CUSTOMERS
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: limit + 1])
        if len(ids) > limit:
            self.message_user(
                request,
                _(
                    "Select at most %(limit)d customers at a time (use import or a segment for "
                    "more)."
                )
                % {"limit": limit},
                messages.ERROR,
            )
            return None
        submitted = "_apply" in request.POST
        form = BulkTagForm(request.POST if submitted else None, user=request.user, mode=mode)
        if submitted and form.is_valid():
            try:
                message = self._apply_bulk(request, ids, form.cleaned_data, mode)
            except TaggingError as exc:
                form.add_error(None, exc.message)
            else:
                self.message_user(request, message, messages.SUCCESS)
                return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Add tags to customers")
            if mode == "add"
            else _("Remove tags from customers"),
            "form": form,
            "mode": mode,
            "action": f"{mode}_tags",
            "ids": ids,
            "sample": Customer.objects.filter(pk__in=ids[:20]).order_by("pk"),
            "count": len(ids),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/customers/customer/bulk_tags.html", context)

    def _apply_bulk(self, request, ids, data, mode: str) -> str:
        policy.require_customers(request.user, ids, policy.Level.EDIT)
        tags = policy.require_tags(request.user, data["tags"], policy.Level.EDIT)
        if mode == "add":
            result = services.assign_tags(
                ids,
                tags,
                actor=request.user,
                source=AssignmentSource.MANUAL,
                replace_exclusive=data["replace_exclusive"],
                reason=data["reason"],
                expires_at=data["expires_at"],
            )
            message = ngettext(
                "Added %(added)d tag assignment to %(count)d selected customers.",
                "Added %(added)d tag assignments to %(count)d selected customers.",
                len(result.added),
            ) % {"added": len(result.added), "count": len(ids)}
            if result.replaced:
                message += " " + _("%(n)d replaced in exclusive groups.") % {
                    "n": len(result.replaced)
                }
            if result.unchanged:
                message += " " + _("%(n)d were already there.") % {"n": result.unchanged}
            return message
        removal = services.unassign_tags(
            ids, tags, actor=request.user, source=AssignmentSource.MANUAL, reason=data["reason"]
        )
        return ngettext(
            "Removed %(removed)d tag assignment from %(count)d selected customers.",
            "Removed %(removed)d tag assignments from %(count)d selected customers.",
            len(removal.removed),
        ) % {"removed": len(removal.removed), "count": len(ids)}


def _admin_url(name: str) -> str:
    from django.urls import reverse

    return reverse(f"admin:{name}")


@admin.register(CustomerEvent)
class CustomerEventAdmin(ReadOnlyAdminMixin, WindowedCountMixin, StaffAdmin):
    list_display = ["occurred_at", "customer", "kind", "amount", "category", "target"]
    list_filter = ["kind", ("occurred_at", admin.DateFieldListFilter)]
    list_select_related = ["customer"]
    search_fields = ["=client_event_id", "=customer__external_userid", "category", "target"]
    show_full_result_count = False
    # Newest recorded first, on the primary key: sorting 20M events by occurred_at has no index.
    ordering = ["-id"]
    readonly_fields = [
        "customer",
        "kind",
        "occurred_at",
        "client_event_id",
        "amount",
        "quantity",
        "category",
        "target",
        "text",
        "payload",
        "created_at",
    ]
    fields = tuple(readonly_fields)

    def get_queryset(self, request):
        events = super().get_queryset(request)
        if policy.sees_all_customers(request.user):
            return events
        return events.filter(in_customer_scope(request.user))

    def lookup_allowed(self, lookup, value, request=None):
        return lookup == "customer__id__exact" or super().lookup_allowed(lookup, value, request)
