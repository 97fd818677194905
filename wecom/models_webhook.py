"""What leaves TagDesk besides the WeCom calls (docs/wecom.md#crm-webhook--crm-webhook): the
outbound names of tags and groups, the protection lock on customer fields, the CRM webhook
endpoints and their delivery outbox. Imported by ``wecom.models``; nothing outside
``wecom.services`` and the admin writes these tables."""

from __future__ import annotations

import ipaddress
import secrets
import socket
import unicodedata
import uuid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

OUTBOUND_NAME_MAX_LENGTH = 64
SECRET_MIN_LENGTH = 16


def validate_outbound_name(value: str) -> None:
    """1–64 printable characters without surrounding spaces: a CRM code such as ``VIP01`` or a
    name in another language. Control characters would corrupt a receiver's CSV or log."""
    if not value or value != value.strip():
        raise ValidationError(
            _("An outbound name may not be empty or start or end with a space."),
            code="invalid_outbound_name",
        )
    if any(unicodedata.category(ch).startswith("C") for ch in value):
        raise ValidationError(
            _("An outbound name may not contain control characters."),
            code="invalid_outbound_name",
        )


class OutboundName(models.Model):
    """The name a tag or a tag group goes by outside TagDesk (黄金会员 → ``VIP01``). One global
    vocabulary: a tag has one outbound name for every endpoint, and no two tags (no two groups)
    share one, so a receiver can map a code back to exactly one TagDesk tag."""

    tag = models.OneToOneField(
        "tagging.Tag",
        verbose_name=_("tag"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="outbound_name",
    )
    group = models.OneToOneField(
        "tagging.TagGroup",
        verbose_name=_("tag group"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="outbound_name",
    )
    code = models.CharField(
        _("outbound name"),
        max_length=OUTBOUND_NAME_MAX_LENGTH,
        validators=[validate_outbound_name],
        help_text=_("What the CRM receives instead of the TagDesk name, e.g. VIP01."),
    )

    class Meta:
        verbose_name = _("outbound name")
        verbose_name_plural = _("outbound names (field mapping)")
        ordering = ["code"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(tag__isnull=False, group__isnull=True)
                    | models.Q(tag__isnull=True, group__isnull=False)
                ),
                name="outboundname_tag_xor_group",
                violation_error_message=_("Choose either a tag or a tag group, not both."),
            ),
            models.UniqueConstraint(
                fields=["code"],
                condition=models.Q(tag__isnull=False),
                name="outboundname_unique_tag_code",
                violation_error_message=_("Another tag already has this outbound name."),
            ),
            models.UniqueConstraint(
                fields=["code"],
                condition=models.Q(group__isnull=False),
                name="outboundname_unique_group_code",
                violation_error_message=_("Another tag group already has this outbound name."),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.tag or self.group} → {self.code}"


class ProtectionLock(models.Model):
    """The one row (pk 1) saying which customer fields may leave TagDesk. It stores the fields
    *released*, not the locked ones, so a field added to the catalogue later
    (``wecom.services.protection.LOCKABLE_FIELDS``) starts locked."""

    released = models.JSONField(_("released fields"), default=list, blank=True)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("updated by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("protection lock")
        verbose_name_plural = _("protection lock")

    def __str__(self) -> str:
        return str(_("Protection lock"))


def generate_secret() -> str:
    return secrets.token_urlsafe(32)


def validate_webhook_url(value: str) -> None:
    """http or https only, with a host; unless ``CRM_WEBHOOK_ALLOW_PRIVATE``, every address the
    host resolves to must be public (checked again before every delivery: DNS can change)."""
    try:
        parts = urlsplit(value)
        hostname = parts.hostname
    except ValueError:  # "http://[::1", an unclosed IPv6 bracket
        hostname = None
    if not hostname or parts.scheme not in {"http", "https"}:
        raise ValidationError(
            _("Enter an http:// or https:// URL with a host."), code="invalid_webhook_url"
        )
    if parts.username or parts.password:
        raise ValidationError(
            _("Put no user name or password in the URL; the signature authenticates TagDesk."),
            code="invalid_webhook_url",
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(hostname, port, proto=socket.IPPROTO_TCP)
    except (OSError, ValueError) as exc:
        raise ValidationError(
            _("The host %(host)s cannot be resolved: %(error)s"),
            code="unresolvable_webhook_host",
            params={"host": hostname, "error": exc},
        ) from exc
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address.is_multicast or address.is_unspecified:
            raise ValidationError(
                _("%(address)s cannot receive webhooks."),
                code="forbidden_webhook_address",
                params={"address": address},
            )
        internal = (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
        )
        if internal and not settings.CRM_WEBHOOK_ALLOW_PRIVATE:
            raise ValidationError(
                _(
                    "%(host)s resolves to the internal address %(address)s; set "
                    "CRM_WEBHOOK_ALLOW_PRIVATE=true to allow endpoints inside your network."
                ),
                code="private_webhook_address",
                params={"host": hostname, "address": address},
            )


class WebhookEndpoint(models.Model):
    """A CRM that receives signed JSON POSTs of tag changes in the chosen tag groups."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    url = models.URLField(_("URL"), max_length=500, validators=[validate_webhook_url])
    secret = models.CharField(
        _("signing secret"),
        max_length=128,
        default=generate_secret,
        help_text=_("HMAC-SHA256 key shared with the receiver (at least 16 characters)."),
    )
    active = models.BooleanField(_("active"), default=True)
    groups = models.ManyToManyField(
        "tagging.TagGroup",
        verbose_name=_("tag groups"),
        related_name="+",
        help_text=_("Only changes of tags in these groups are sent."),
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("CRM webhook endpoint")
        verbose_name_plural = _("CRM webhook endpoints")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if len(self.secret or "") < SECRET_MIN_LENGTH:
            raise ValidationError(
                {
                    "secret": _("The signing secret needs at least %(n)d characters.")
                    % {"n": SECRET_MIN_LENGTH}
                }
            )


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    DONE = "done", _("delivered")
    DEAD = "dead", _("dead letter")


class WebhookDelivery(models.Model):
    """One POST to one endpoint: the tag changes of one assignment batch (at most
    ``wecom.services.webhook.MAX_CUSTOMERS`` customers), written in the batch's transaction.
    ``body`` is frozen at the first attempt so that every retry sends the same bytes under the
    same idempotency ``key``."""

    endpoint = models.ForeignKey(
        WebhookEndpoint,
        verbose_name=_("endpoint"),
        on_delete=models.CASCADE,
        related_name="deliveries",
    )
    key = models.UUIDField(_("idempotency key"), default=uuid.uuid4, unique=True, editable=False)
    change = models.JSONField(_("change"), default=dict)
    body = models.TextField(_("body"), blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=DeliveryStatus.choices, default=DeliveryStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    http_status = models.PositiveSmallIntegerField(_("HTTP status"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("CRM webhook delivery")
        verbose_name_plural = _("CRM webhook deliveries")
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["endpoint", "id"],
                name="webhookdelivery_pending",
                condition=models.Q(status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.endpoint_id} #{self.pk}"
