"""The WeCom pages: status with sync/check buttons (sync runs), outbox with dead letters and
retry, callback log, sync issues, links, and group chats with "tag every customer".

Operations pages are for tag admins (``policy.is_tag_admin``); group chats are for staff, and
the tagging action tags only the customers the user may see, with tags the user may edit."""

from __future__ import annotations

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.db import transaction
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext

from customers.forms import BulkTagForm
from permissions import policy
from tagging.admin_base import (
    ReadOnlyAdminMixin,
    ServiceFormAdmin,
    ServiceRejected,
    StaffAdmin,
    copy_saved,
)
from tagging.errors import TaggingError
from wecom import admin_delays  # noqa: F401  (registers the review page of held changes)
from wecom.admin_retry import DeadLetterRetryMixin
from wecom.client import callbacks_enabled, is_enabled
from wecom.models import (
    CallbackStatus,
    DeliveryStatus,
    GroupChat,
    OutboxStatus,
    WebhookDelivery,
    WecomCallbackEvent,
    WecomChannelState,
    WecomGroupRule,
    WecomMassMessage,
    WecomOutbox,
    WecomStrategyTagLink,
    WecomSyncIssue,
    WecomSyncRun,
    WecomTagLink,
)
from wecom.services import channels, outbox
from wecom.services.chats import chat_customer_ids, tag_chat_customers


class TagAdminOnly(ReadOnlyAdminMixin, admin.ModelAdmin):
    def has_module_permission(self, request: HttpRequest) -> bool:
        return policy.is_tag_admin(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return policy.is_tag_admin(request.user)


@admin.register(WecomSyncRun)
class WecomSyncRunAdmin(TagAdminOnly):
    list_display = ["started_at", "kind", "status", "finished_at", "drift", "error"]
    list_filter = ["kind", "status"]
    readonly_fields = ["kind", "started_at", "finished_at", "status", "summary", "error"]

    @admin.display(description=gettext_lazy("drift"))
    def drift(self, obj: WecomSyncRun):
        check = (obj.summary or {}).get("check_after_repair") or (obj.summary or {}).get("check")
        return check["drift"] if check else "—"

    def get_urls(self):
        run = self.admin_site.admin_view(self.run_view)
        return [path("run/", run, name="wecom_wecomsyncrun_run"), *super().get_urls()]

    def run_view(self, request: HttpRequest):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not policy.is_tag_admin(request.user) or not is_enabled():
            self.message_user(
                request, _("The WeCom integration is not configured."), messages.ERROR
            )
        else:
            from wecom.tasks import run_sync

            what = request.POST.get("what")
            run_sync.delay(check=what in {"check", "repair"}, repair=what == "repair")
            self.message_user(request, _("Started; the result appears below."), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:wecom_wecomsyncrun_changelist"))

    def changelist_view(self, request, extra_context=None):
        day_ago = timezone.now() - timedelta(days=1)
        outbox_counts = dict(
            WecomOutbox.objects.filter(status__in=[OutboxStatus.PENDING, OutboxStatus.DEAD])
            .values_list("status")
            .annotate(n=Count("pk"))
            .values_list("status", "n")
        )
        last_check = (
            WecomSyncRun.objects.filter(summary__has_key="check").order_by("-started_at").first()
        )
        context = {
            "enabled": is_enabled(),
            "callbacks": callbacks_enabled(),
            "corp_id": _corp_id(),
            "callback_url": request.build_absolute_uri(reverse("wecom:callback")),
            "last_sync": WecomSyncRun.objects.exclude(kind="check").first(),
            "last_check": last_check,
            "drift": self.drift(last_check) if last_check else 0,
            "pending": outbox_counts.get(OutboxStatus.PENDING, 0),
            "retrying": WecomOutbox.objects.filter(
                status=OutboxStatus.PENDING, attempts__gt=0
            ).count(),
            "dead": outbox_counts.get(OutboxStatus.DEAD, 0),
            "held": WecomOutbox.objects.filter(
                status=OutboxStatus.PENDING, held_until__gt=timezone.now()
            ).count(),
            "callbacks_today": WecomCallbackEvent.objects.filter(received_at__gte=day_ago).count(),
            "callbacks_failed": WecomCallbackEvent.objects.filter(
                status=CallbackStatus.FAILED
            ).count(),
            "webhooks": _webhook_counts(),
        }
        return super().changelist_view(request, {**(extra_context or {}), "wecom": context})


def _webhook_counts() -> dict:
    """The CRM webhook's queue beside the outbox's (one query)."""
    from django.conf import settings

    counts = WebhookDelivery.objects.aggregate(
        pending=Count("pk", filter=Q(status=DeliveryStatus.PENDING)),
        retrying=Count("pk", filter=Q(status=DeliveryStatus.PENDING, attempts__gt=0)),
        dead=Count("pk", filter=Q(status=DeliveryStatus.DEAD)),
    )
    return {"enabled": settings.CRM_WEBHOOK_ENABLED, **counts}


def _corp_id() -> str:
    from django.conf import settings

    return settings.WECOM_CORP_ID


@admin.register(WecomOutbox)
class WecomOutboxAdmin(DeadLetterRetryMixin, TagAdminOnly):
    list_display = [
        "id",
        "created_at",
        "userid",
        "external_userid",
        "status",
        "attempts",
        "errcode",
        "error",
        "next_attempt_at",
        "held_until",
    ]
    list_filter = ["status", "errcode"]
    search_fields = ["=userid", "=external_userid"]
    readonly_fields = [f.name for f in WecomOutbox._meta.fields]
    show_full_result_count = False
    actions = ["retry"]
    dead_status = OutboxStatus.DEAD

    def retry_dead(self, ids):
        return outbox.retry_dead(ids)

    def kick(self):
        from wecom.tasks import kick_drain

        kick_drain()


@admin.register(WecomCallbackEvent)
class WecomCallbackEventAdmin(TagAdminOnly):
    list_display = ["received_at", "event", "change_type", "status", "error", "processed_at"]
    list_filter = ["status", "event"]
    readonly_fields = [
        "received_at",
        "event",
        "change_type",
        "payload",
        "status",
        "error",
        "processed_at",
    ]
    actions = ["reprocess"]

    @admin.action(description=gettext_lazy("Apply the selected failed callbacks again"))
    def reprocess(self, request, queryset):
        from wecom.tasks import process_callback

        stuck = [CallbackStatus.FAILED, CallbackStatus.PROCESSING]
        ids = list(queryset.filter(status__in=stuck).values_list("pk", flat=True))
        for pk in ids:
            process_callback.delay(pk, again=True)
        self.message_user(
            request,
            ngettext("%(count)d callback queued.", "%(count)d callbacks queued.", len(ids))
            % {"count": len(ids)},
            messages.SUCCESS,
        )


@admin.register(WecomSyncIssue)
class WecomSyncIssueAdmin(TagAdminOnly):
    list_display = ["last_seen", "kind", "wecom_id", "code", "message", "count"]
    list_filter = ["kind", "code"]
    search_fields = ["wecom_id", "message"]


@admin.register(WecomGroupRule)
class WecomGroupRuleAdmin(admin.ModelAdmin):
    """Sync rules: per corporate group, which way its assignments sync (tag admins)."""

    list_display = ["group", "direction", "delay_minutes"]
    list_filter = ["direction"]
    list_select_related = ["group"]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return policy.is_tag_admin(request.user)

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return policy.is_tag_admin(request.user)

    has_add_permission = has_change_permission = has_delete_permission = has_view_permission

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "group":
            from tagging.models import TagGroup, TagKind

            kwargs["queryset"] = TagGroup.objects.filter(kind=TagKind.CORPORATE)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(WecomTagLink)
class WecomTagLinkAdmin(TagAdminOnly):
    list_display = ["wecom_id", "name", "tag", "group_link", "order", "synced_at"]
    list_select_related = ["tag__group", "group_link"]
    search_fields = ["=wecom_id", "name"]


@admin.register(WecomStrategyTagLink)
class WecomStrategyTagLinkAdmin(TagAdminOnly):
    list_display = ["wecom_id", "name", "tag", "group_link", "synced_at"]
    list_select_related = ["tag__group", "group_link"]
    search_fields = ["=wecom_id", "name"]


class ChannelStateForm(forms.ModelForm):
    """Validation is the service's (``channels.save_channel_state``); the tag picker offers the
    active corporate tags the user may add to customers."""

    class Meta:
        model = WecomChannelState
        fields = ["state", "channel", "tags"]

    def __init__(self, *args, user=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from tagging.models import Tag, TagKind

        # Choices the user may see (any status, so that an archived tag is refused by name);
        # the service then checks the EDIT level, the kind and the status.
        tags_field = self.fields["tags"]
        assert isinstance(tags_field, forms.ModelMultipleChoiceField)
        tags_field.queryset = policy.visible_tags(
            user, include_inactive=True, queryset=Tag.objects.filter(group__kind=TagKind.CORPORATE)
        ).select_related("group")
        state_field = self.fields["state"]
        assert isinstance(state_field, forms.CharField)
        state_field.max_length = None  # a long state gets the service's message
        state_field.widget.attrs.pop("maxlength", None)
        state_field.validators = []
        self.user = user

    def clean(self):
        cleaned = super().clean()
        try:
            cleaned["state"] = channels.clean_state(cleaned.get("state") or self.data.get("state"))
            channels.check_tags(self.user, cleaned.get("tags") or [])
        except channels.ChannelStateInvalid as exc:
            self.add_error(exc.field, exc.message)
        return cleaned

    def validate_unique(self) -> None:
        pass  # the service refuses a state configured already (a recorded unknown one is taken)


@admin.register(WecomChannelState)
class WecomChannelStateAdmin(ServiceFormAdmin):
    """渠道活码 states: tag admins and staff with the model permissions configure them; the tags
    must be ones the user may add to customers. States WeCom sent that nobody configured are
    listed as *not configured*."""

    form = ChannelStateForm
    list_display = ["state", "shown_channel", "tag_list", "configured", "contacts_added"]
    list_filter = ["configured"]
    search_fields = ["state", "channel"]
    readonly_fields = ["contacts_added", "last_added_at", "updated_at", "updated_by"]
    filter_horizontal = ["tags"]

    def _allowed(self, request: HttpRequest, action: str) -> bool:
        return policy.is_tag_admin(request.user) or request.user.has_perm(
            f"wecom.{action}_wecomchannelstate"
        )

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, "view")

    def has_view_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allowed(request, "view") or self._allowed(request, "change")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self._allowed(request, "add")

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allowed(request, "change")

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return self._allowed(request, "delete")

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("tags")

    def get_form(self, request, obj=None, change=False, **kwargs):
        form_class = super().get_form(request, obj, change=change, **kwargs)

        class RequestForm(form_class):
            def __init__(self, *args, **kw):
                super().__init__(*args, user=request.user, **kw)

        return RequestForm

    @admin.display(description=gettext_lazy("source channel"))
    def shown_channel(self, obj: WecomChannelState) -> str:
        return obj.label

    @admin.display(description=gettext_lazy("tags"))
    def tag_list(self, obj: WecomChannelState) -> str:
        return "、".join(t.name for t in obj.tags.all()) or "—"

    def save_model(self, request, obj, form, change) -> None:
        try:
            saved = channels.save_channel_state(
                actor=request.user,
                state=form.cleaned_data["state"],
                channel=form.cleaned_data.get("channel") or "",
                tags=form.cleaned_data.get("tags") or [],
                instance=obj if change else None,
            )
        except channels.ChannelStateInvalid as exc:
            raise ServiceRejected(exc.message, exc.field) from exc
        copy_saved(saved, obj)

    def save_related(self, request, form, formsets, change) -> None:
        pass  # the service set the tags


@admin.register(GroupChat)
class GroupChatAdmin(ReadOnlyAdminMixin, StaffAdmin):
    list_display = ["name", "owner", "member_count", "dismissed", "synced_at"]
    list_filter = ["dismissed"]
    search_fields = ["name", "owner__display_name", "owner__username", "=owner_userid"]
    list_select_related = ["owner"]
    readonly_fields = ["chat_id", "name", "owner", "owner_userid", "notice", "created_at"]
    actions = ["tag_customers"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members=Count("members"))

    @admin.display(description=gettext_lazy("members"), ordering="_members")
    def member_count(self, obj: GroupChat) -> int:
        return int(getattr(obj, "_members", 0))  # annotated by get_queryset

    def get_actions(self, request):
        # StaffAdmin's viewers lack Django's change permission, which actions check by default.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=gettext_lazy("Tag every customer in these chats…"))
    def tag_customers(self, request, queryset):
        chats = list(queryset.order_by("name", "pk"))
        submitted = "_apply" in request.POST
        form = BulkTagForm(request.POST if submitted else None, user=request.user, mode="add")
        if submitted and form.is_valid():
            try:
                result, outside = tag_chat_customers(
                    chats,
                    form.cleaned_data["tags"],
                    actor=request.user,
                    replace_exclusive=form.cleaned_data["replace_exclusive"],
                    reason=form.cleaned_data["reason"],
                )
            except TaggingError as exc:
                form.add_error(None, exc.message)
            else:
                message = ngettext(
                    "Added %(added)d tag assignment to the customers of %(chats)d chats.",
                    "Added %(added)d tag assignments to the customers of %(chats)d chats.",
                    len(result.added),
                ) % {"added": len(result.added), "chats": len(chats)}
                if outside:
                    message += " " + ngettext(
                        "%(n)d customer outside your scope was left alone.",
                        "%(n)d customers outside your scope were left alone.",
                        outside,
                    ) % {"n": outside}
                self.message_user(request, message, messages.SUCCESS)
                return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Tag every customer in these chats"),
            "form": form,
            "chats": chats,
            "customer_count": len(chat_customer_ids(chats)),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/wecom/groupchat/tag_customers.html", context)


class MassMessageForm(forms.ModelForm):
    link_url = forms.URLField(label=gettext_lazy("link URL"), required=False, assume_scheme="https")

    class Meta:
        model = WecomMassMessage
        fields = ["segment", "text", "link_title", "link_url"]


@admin.register(WecomMassMessage)
class WecomMassMessageAdmin(ServiceFormAdmin):
    """群发 to a segment: staff pick one of the segments they may use; only the customers they
    may see receive it. Created messages are read-only; *Fetch results* reads delivery status."""

    form = MassMessageForm
    list_display = ["created_at", "segment_name", "created_by", "customers", "status", "results"]
    list_filter = ["status"]
    actions = ["fetch_results"]

    def get_queryset(self, request):
        qs = super().get_queryset(request)
        return qs if policy.is_tag_admin(request.user) else qs.filter(created_by=request.user)

    def has_add_permission(self, request):
        return request.user.is_active and request.user.is_staff and is_enabled()

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return []
        return [
            "segment_name",
            "text",
            "link_title",
            "link_url",
            "created_by",
            "created_at",
            "status",
            "customers",
            "results",
            "results_at",
        ]

    def get_fields(self, request, obj=None):
        return self.get_readonly_fields(request, obj) or [
            "segment",
            "text",
            "link_title",
            "link_url",
        ]

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "segment":
            from tagging.segments import visible_segments

            kwargs["queryset"] = visible_segments(request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def save_model(self, request, obj, form, change):
        from wecom.services.mass import create_mass_message
        from wecom.tasks import send_mass_message

        data = form.cleaned_data
        try:
            saved = create_mass_message(
                data["segment"],
                actor=request.user,
                text=data["text"],
                link_title=data["link_title"],
                link_url=data["link_url"],
            )
        except TaggingError as exc:
            raise ServiceRejected(exc.message) from exc
        copy_saved(saved, obj)
        transaction.on_commit(lambda: send_mass_message.delay(saved.pk))

    @admin.action(description=gettext_lazy("Fetch delivery results from WeCom"))
    def fetch_results(self, request, queryset):
        from wecom.client import WecomError, get_wecom
        from wecom.services.mass import fetch_results

        try:
            wecom = get_wecom()
            for message in queryset:
                fetch_results(message, wecom)
        except WecomError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(request, _("Results fetched."), messages.SUCCESS)


# Outbound names, the protection lock and the CRM webhook pages (a module of their own).
from wecom import admin_webhook  # noqa: E402, F401
