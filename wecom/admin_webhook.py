"""Admin pages of what leaves TagDesk besides WeCom calls: outbound names (the field mapping),
the protection lock, CRM webhook endpoints (with a test ping) and their deliveries (dead
letters with *Retry*). Tag admins only (``policy.is_tag_admin``); imported by ``wecom.admin``."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import models
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config.admin_widgets import SafeAutocompleteMixin
from permissions import policy
from tagging.models import AuditAction, Tag, TagGroup, TagKind
from wecom.admin_retry import DeadLetterRetryMixin
from wecom.models import (
    DeliveryStatus,
    OutboundName,
    ProtectionLock,
    WebhookDelivery,
    WebhookEndpoint,
)
from wecom.services import protection, webhook


class TagAdminPage(admin.ModelAdmin):
    """Editable by tag admins, invisible to everyone else."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return policy.is_tag_admin(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return policy.is_tag_admin(request.user)

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission


def _shared_groups():
    """Groups whose tags may leave TagDesk: personal groups are an employee's own notes."""
    return TagGroup.objects.exclude(kind=TagKind.PERSONAL)


@admin.register(OutboundName)
class OutboundNameAdmin(SafeAutocompleteMixin, TagAdminPage):
    list_display = ["code", "tag", "group"]
    list_select_related = ["tag__group", "group"]
    search_fields = ["code", "tag__name", "group__name"]
    autocomplete_fields = ["tag", "group"]
    fields = ["tag", "group", "code"]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "tag":
            kwargs["queryset"] = Tag.objects.filter(group__in=_shared_groups())
        elif db_field.name == "group":
            kwargs["queryset"] = _shared_groups()
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class ProtectionLockForm(forms.ModelForm):
    locked = forms.MultipleChoiceField(
        label=gettext_lazy("locked fields"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy(
            "Checked fields never leave TagDesk: not in the CRM webhook, not in any WeCom call. "
            "The customer's TagDesk id and external_userid are always sent."
        ),
    )

    class Meta:
        model = ProtectionLock
        fields: list[str] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["locked"]
        assert isinstance(field, forms.MultipleChoiceField)
        field.choices = [(k, v) for k, v in protection.LOCKABLE_FIELDS.items()]
        self.initial["locked"] = protection.locked_fields()


@admin.register(ProtectionLock)
class ProtectionLockAdmin(TagAdminPage):
    """One page: the changelist opens the lock itself."""

    form = ProtectionLockForm
    fields = ["locked", "updated_at", "updated_by"]
    readonly_fields = ["updated_at", "updated_by"]

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def changelist_view(self, request, extra_context=None):
        if not self.has_view_permission(request):
            return super().changelist_view(request, extra_context)
        ProtectionLock.objects.get_or_create(pk=1)
        return HttpResponseRedirect(reverse("admin:wecom_protectionlock_change", args=[1]))

    def get_object(self, request, object_id, from_field=None):
        # The one row; a fresh database has none until a tag admin first opens it.
        if str(object_id) == "1" and self.has_view_permission(request):
            ProtectionLock.objects.get_or_create(pk=1)
        return super().get_object(request, object_id, from_field)

    def history_view(self, request, object_id, extra_context=None):
        # The lock's history is TagDesk's audit log (set_locked_fields writes it), not
        # Django's admin log: the page's History button opens the log's lock entries.
        if not self.has_view_permission(request):
            return super().history_view(request, object_id, extra_context)
        url = reverse("admin:tagging_auditentry_changelist")
        return HttpResponseRedirect(f"{url}?action__exact={AuditAction.WECOM_LOCK_CHANGED}")

    def save_model(self, request, obj, form, change):
        saved = protection.set_locked_fields(form.cleaned_data["locked"], actor=request.user)
        obj.released, obj.updated_at, obj.updated_by = (
            saved.released,
            saved.updated_at,
            saved.updated_by,
        )


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TagAdminPage):
    list_display = ["name", "url", "active", "group_names", "pending", "dead"]
    list_filter = ["active"]
    search_fields = ["name", "url"]
    filter_horizontal = ["groups"]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    fields = ["name", "url", "secret", "active", "groups"]
    actions = ["send_test_ping"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related("groups")
            .annotate(
                _pending=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.PENDING)),
                _dead=Count("deliveries", filter=Q(deliveries__status=DeliveryStatus.DEAD)),
            )
        )

    @admin.display(description=gettext_lazy("tag groups"))
    def group_names(self, obj: WebhookEndpoint) -> str:
        return "、".join(g.name for g in obj.groups.all()) or "—"

    @admin.display(description=gettext_lazy("pending"), ordering="_pending")
    def pending(self, obj: WebhookEndpoint) -> int:
        return int(getattr(obj, "_pending", 0))

    @admin.display(description=gettext_lazy("dead letters"), ordering="_dead")
    def dead(self, obj: WebhookEndpoint) -> int:
        return int(getattr(obj, "_dead", 0))

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if db_field.name == "groups":
            kwargs["queryset"] = _shared_groups()
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def changelist_view(self, request, extra_context=None):
        if not settings.CRM_WEBHOOK_ENABLED and request.method == "GET":
            self.message_user(
                request,
                _("CRM webhooks are off: set CRM_WEBHOOK_ENABLED=true and restart to send them."),
                messages.WARNING,
            )
        return super().changelist_view(request, extra_context)

    @admin.action(description=gettext_lazy("Send a test ping"))
    def send_test_ping(self, request, queryset):
        for endpoint in queryset:
            result = webhook.send_ping(endpoint)
            if result.ok:
                self.message_user(
                    request,
                    _("%(endpoint)s answered HTTP %(status)d.")
                    % {"endpoint": endpoint, "status": result.http_status},
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    _("%(endpoint)s: %(error)s") % {"endpoint": endpoint, "error": result.error},
                    messages.ERROR,
                )


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(DeadLetterRetryMixin, TagAdminPage):
    list_display = [
        "id",
        "created_at",
        "endpoint",
        "status",
        "attempts",
        "http_status",
        "error",
        "next_attempt_at",
    ]
    list_filter = ["status", "endpoint"]
    list_select_related = ["endpoint"]
    search_fields = ["=key"]
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    show_full_result_count = False
    actions = ["retry"]
    dead_status = DeliveryStatus.DEAD

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def retry_dead(self, ids):
        return webhook.retry_dead(ids)

    def kick(self):
        from wecom.tasks import kick_webhooks

        kick_webhooks()
