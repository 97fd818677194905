"""Customers, the employees who follow them, and their behaviour events
(docs/taxonomy.md#customers)."""

from __future__ import annotations

import datetime as dt
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from customers.phones import InvalidPhone, format_phone, normalize_phone

EXTERNAL_USERID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
validate_external_userid = RegexValidator(
    EXTERNAL_USERID_RE,
    _("External userid may contain only letters, digits, “_” and “-” (at most 64)."),
    code="invalid_external_userid",
)


NAME_MAX_LENGTH = 128  # Customer.name; the importer reports longer names


class CustomerQuerySet(models.QuerySet):
    def with_tags(self) -> CustomerQuerySet:
        """Prefetch assignments with their tag and group: one extra query for a whole page."""
        return self.prefetch_related("assignments__tag__group")


class Customer(models.Model):
    external_userid = models.CharField(
        _("external userid"),
        max_length=64,
        unique=True,
        null=True,
        blank=True,
        validators=[validate_external_userid],
        help_text=_("WeCom external_userid; case-sensitive."),
    )
    phone = models.CharField(
        _("mobile phone"),
        max_length=20,
        unique=True,
        null=True,
        blank=True,
        help_text=_("Stored in E.164 form, e.g. +8613800138000."),
    )
    name = models.CharField(pgettext_lazy("person", "name"), max_length=NAME_MAX_LENGTH, blank=True)
    remark = models.CharField(_("remark"), max_length=255, blank=True)
    company = models.CharField(_("company"), max_length=128, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="owned_customers",
        db_index=False,  # the index customer_owner (owner, id) serves it
    )
    department = models.ForeignKey(
        "permissions.Department",
        verbose_name=_("department"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customers",
        db_index=False,  # the index customer_department (department, id) serves it
    )
    source = models.CharField(_("source channel"), max_length=64, blank=True)
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    added_at = models.DateTimeField(pgettext_lazy("time", "added"), default=timezone.now)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    # Aggregates maintained from events (customers.services.record_events).
    total_spend = models.DecimalField(_("total spend"), max_digits=14, decimal_places=2, default=0)
    order_count = models.PositiveIntegerField(_("orders"), default=0)
    last_order_at = models.DateTimeField(_("last order"), null=True, blank=True)
    last_contact_at = models.DateTimeField(_("last contact"), null=True, blank=True)

    objects = CustomerQuerySet.as_manager()

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(external_userid__isnull=False) | models.Q(phone__isnull=False),
                name="customer_has_identifier",
                violation_error_message=_("A customer needs an external userid or a mobile phone."),
            ),
            models.CheckConstraint(
                condition=~models.Q(external_userid=""), name="customer_external_userid_not_blank"
            ),
            models.CheckConstraint(condition=~models.Q(phone=""), name="customer_phone_not_blank"),
        ]
        indexes = [
            models.Index(fields=["department", "id"], name="customer_department"),
            models.Index(fields=["owner", "id"], name="customer_owner"),
            models.Index(fields=["name"], name="customer_name"),
            models.Index(fields=["last_order_at"], name="customer_last_order"),
        ]

    def __str__(self) -> str:
        return self.name or self.external_userid or format_phone(self.phone)

    def save(self, *args, **kwargs) -> None:
        # Blank identifiers are stored as NULL so that uniqueness applies only to real values.
        self.external_userid = self.external_userid or None
        self.phone = self.phone or None
        super().save(*args, **kwargs)

    @property
    def phone_display(self) -> str:
        return format_phone(self.phone)

    def clean(self) -> None:
        self.external_userid = (self.external_userid or "").strip() or None
        raw_phone = (self.phone or "").strip()
        if raw_phone:
            try:
                self.phone = normalize_phone(raw_phone)
            except InvalidPhone as exc:
                raise ValidationError({"phone": str(exc)}) from exc
        else:
            self.phone = None
        if not self.external_userid and not self.phone:
            raise ValidationError(_("A customer needs an external userid or a mobile phone."))


class AddWay(models.IntegerChoices):
    """WeCom's follow_user.add_way codes."""

    UNKNOWN = 0, _("unknown")
    QR_CODE = 1, _("scanned QR code")
    PHONE_SEARCH = 2, _("searched phone number")
    CARD_SHARE = 3, _("shared business card")
    GROUP_CHAT = 4, _("group chat")
    PHONE_CONTACTS = 5, _("phone contacts")
    WECHAT_CONTACTS = 6, _("WeChat contacts")
    THIRD_PARTY = 8, _("third-party app")
    EMAIL_SEARCH = 9, _("searched email")
    VIDEO_CHANNEL = 10, _("WeChat Channels")
    INTERNAL_SHARE = 201, _("shared by colleague")
    ADMIN_ASSIGN = 202, _("assigned by admin")


class Follower(models.Model):
    """An employee who added the customer on WeCom (follow_user)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="followers")
    employee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="followed_customers",
        verbose_name=_("employee"),
    )
    added_at = models.DateTimeField(pgettext_lazy("time", "added"), default=timezone.now)
    add_way = models.PositiveSmallIntegerField(
        _("add way"), choices=AddWay.choices, default=AddWay.UNKNOWN
    )
    remark = models.CharField(_("remark"), max_length=128, blank=True)

    class Meta:
        verbose_name = _("follower")
        verbose_name_plural = _("followers")
        constraints = [
            models.UniqueConstraint(fields=["customer", "employee"], name="follower_unique"),
        ]
        indexes = [models.Index(fields=["employee", "customer"], name="follower_employee_customer")]

    def __str__(self) -> str:
        return f"{self.employee} → {self.customer}"


class EventKind(models.TextChoices):
    PURCHASE = "purchase", _("purchase")
    ADD_TO_CART = "add_to_cart", _("add to cart")
    BROWSE = "browse", _("browse")
    MESSAGE = "message", _("message")
    BROADCAST = "broadcast", _("broadcast received")
    BROADCAST_REPLY = "broadcast_reply", _("broadcast reply")
    SHARE = "share", _("shared file")
    INQUIRY = "inquiry", _("product inquiry")
    JOIN_GROUP = "join_group", _("joined group chat")
    ADD_EMPLOYEE = "add_employee", _("added employee")
    REFERRAL = "referral", _("referral")
    OPPORTUNITY = "opportunity", _("opportunity")


class CustomerEvent(models.Model):
    """One behaviour event; append-only, idempotent on ``client_event_id`` per customer (two
    departments' clients may use the same ids for different customers: neither event is lost,
    and each is a duplicate only of its own customer's)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(_("kind"), max_length=20, choices=EventKind.choices)
    occurred_at = models.DateTimeField(_("occurred"))
    client_event_id = models.CharField(_("client event id"), max_length=64, null=True, blank=True)
    amount = models.DecimalField(
        _("amount"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    quantity = models.IntegerField(_("quantity / count / seconds"), null=True, blank=True)
    category = models.CharField(_("category"), max_length=64, blank=True)
    target = models.CharField(_("target"), max_length=128, blank=True)
    text = models.TextField(_("text"), blank=True)
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    created_at = models.DateTimeField(_("recorded"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer event")
        verbose_name_plural = _("customer events")
        ordering = ["-occurred_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "client_event_id"],
                condition=models.Q(client_event_id__isnull=False),
                name="event_client_id_per_customer",
            ),
        ]
        indexes = [
            models.Index(
                fields=["customer", "kind", "occurred_at"], name="event_customer_kind_time"
            ),
            models.Index(fields=["kind", "occurred_at"], name="event_kind_time"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} @ {timezone.localtime(self.occurred_at):%Y-%m-%d %H:%M}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None and not kwargs.get("force_insert"):
            raise ValidationError(_("Events are append-only and cannot be changed."))
        super().save(*args, **kwargs)


def job_lease_expiry():
    """When a job nobody works on is taken over (TAGDESK_JOB_LEASE_SECONDS from now)."""
    return timezone.now() + dt.timedelta(seconds=settings.TAGDESK_JOB_LEASE_SECONDS)


class ImportJob(models.Model):
    """One customer/tag import: the status row the admin shows and the Celery task updates.

    ``rows_done`` counts data records whose batch is committed; a re-run resumes after them.
    ``result`` holds the import_customers --json keys (docs/import-export.md#import_customers;
    errors included) as they accumulate.

    The lease: the worker running the job (``lease_owner``) renews ``lease_expires_at`` with every
    batch. A job still queued or running after its lease lost its worker (or its message); the
    reaper (``customers.reap_import_jobs``, every minute) queues it again and it resumes after
    its last committed batch. A new job's lease is the deadline for a worker to pick it up.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        VALIDATING = "validating", _("validating")
        RUNNING = "running", _("importing")
        DONE = "done", _("done")
        REJECTED = "rejected", _("rejected (nothing applied)")
        FAILED = "failed", _("failed")

    class Mode(models.TextChoices):
        CUSTOMERS = "customers", _("customers and tags")
        TAGS = "tags", _("tags of existing customers")

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("imported by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="customer_imports",
    )
    file = models.FileField(_("file"), upload_to="imports/%Y/%m/")
    original_name = models.CharField(_("file name"), max_length=255)
    mode = models.CharField(_("mode"), max_length=16, choices=Mode.choices, default=Mode.CUSTOMERS)
    dry_run = models.BooleanField(_("dry run"), default=False)
    skip_invalid = models.BooleanField(_("skip invalid rows"), default=False)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    rows_total = models.PositiveIntegerField(_("rows"), null=True, blank=True)
    rows_done = models.PositiveIntegerField(_("rows done"), default=0)
    errors_so_far = models.PositiveIntegerField(_("errors so far"), default=0)
    result = models.JSONField(_("result"), default=dict, blank=True)
    error_report = models.FileField(
        _("rejected rows (CSV)"), upload_to="imports/rejected/%Y/%m/", blank=True
    )
    error_message = models.TextField(_("error"), blank=True)
    task_id = models.CharField(_("task id"), max_length=64, blank=True)
    lease_owner = models.CharField(_("worker lease"), max_length=64, blank=True, editable=False)
    lease_expires_at = models.DateTimeField(
        _("lease expires"), null=True, blank=True, default=job_lease_expiry
    )
    heartbeat_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(_("attempts"), default=0)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)

    class Meta:
        verbose_name = _("customer import")
        verbose_name_plural = _("customer imports")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_status_display()})"

    @property
    def is_finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.REJECTED, self.Status.FAILED}
