"""Tag taxonomy, assignments and the audit log (docs/taxonomy.md).

Nothing outside ``tagging.services`` writes these tables; the admin, API, import and rules all
go through the service so that limits, kinds, exclusivity and auditing hold for every door.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from tagging.names import fold_name, personal_group_label, pinyin_keys

validate_colour = RegexValidator(r"^#[0-9A-Fa-f]{6}$", _("Use a colour like #1677FF."))

DEFAULT_COLOURS = [
    "#1677FF",
    "#13C2C2",
    "#52C41A",
    "#FAAD14",
    "#FA541C",
    "#EB2F96",
    "#722ED1",
    "#2F54EB",
]


class TagKind(models.TextChoices):
    CORPORATE = "corporate", _("corporate")
    PERSONAL = "personal", _("personal")
    AUTO = "auto", _("auto (rules)")


class TagStatus(models.TextChoices):
    PENDING = "pending", _("pending approval")
    ACTIVE = "active", _("active")
    ARCHIVED = "archived", _("archived")


class AssignmentSource(models.TextChoices):
    MANUAL = "manual", _("manual")
    IMPORT = "import", _("import")
    RULE = "rule", _("rule")
    API = "api", _("API")
    MERGE = "merge", _("merge")
    SYNC = "sync", _("WeCom sync")
    SYSTEM = "system", _("system")


class TagGroupQuerySet(models.QuerySet):
    def shared(self) -> TagGroupQuerySet:
        return self.exclude(kind=TagKind.PERSONAL)


class TagGroup(models.Model):
    name = models.CharField(_("name"), max_length=64)
    name_key = models.CharField(max_length=64, editable=False, db_index=True)
    parent = models.ForeignKey(
        "self",
        verbose_name=_("parent group"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    kind = models.CharField(
        _("kind"), max_length=16, choices=TagKind.choices, default=TagKind.CORPORATE
    )
    colour = models.CharField(
        _("colour"), max_length=7, default="#1677FF", validators=[validate_colour]
    )
    sort_order = models.IntegerField(_("order"), default=0, db_index=True)
    exclusive = models.BooleanField(
        _("mutually exclusive"),
        default=False,
        help_text=_(
            "A customer holds at most one tag of this group (e.g. intent high/medium/low)."
        ),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=pgettext_lazy("what belongs to one employee", "owner"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="personal_tag_groups",
        help_text=_("Only for personal groups: the employee whose private tags these are."),
    )
    description = models.CharField(_("description"), max_length=255, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = TagGroupQuerySet.as_manager()
    tree_depth: int  # set on groups listed as a tree (tagging.admin_base), not a column

    class Meta:
        verbose_name = _("tag group")
        verbose_name_plural = _("tag groups")
        ordering = ["sort_order", "id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(kind=TagKind.PERSONAL, owner__isnull=False)
                    | (~models.Q(kind=TagKind.PERSONAL) & models.Q(owner__isnull=True))
                ),
                name="taggroup_owner_iff_personal",
                violation_error_message=_("Personal groups have an owner; other groups have none."),
            ),
            # Files name tags as "group:tag", so shared group names are unique company-wide.
            models.UniqueConstraint(
                fields=["name_key"],
                condition=models.Q(owner__isnull=True),
                name="taggroup_unique_shared_name",
                violation_error_message=_("A tag group with this name already exists."),
            ),
            models.UniqueConstraint(
                fields=["owner", "name_key"],
                condition=models.Q(owner__isnull=False),
                name="taggroup_unique_personal_name",
                violation_error_message=_("You already have a personal tag group with this name."),
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:
        self.name_key = fold_name(self.name)
        super().save(*args, **kwargs)

    @property
    def label(self) -> str:
        """The name files and charts show (load ``owner`` with it): a personal group with its
        owner, shared groups as they are (their names are unique)."""
        if self.kind == TagKind.PERSONAL and self.owner_id:
            return personal_group_label(self.name, self.owner)
        return self.name


class TagQuerySet(models.QuerySet):
    def active(self) -> TagQuerySet:
        return self.filter(status=TagStatus.ACTIVE)

    def with_customer_counts(self) -> TagQuerySet:
        return self.annotate(customer_count=models.Count("assignments"))


class Tag(models.Model):
    group = models.ForeignKey(
        TagGroup, verbose_name=_("group"), on_delete=models.PROTECT, related_name="tags"
    )
    name = models.CharField(_("name"), max_length=64)
    name_key = models.CharField(max_length=64, editable=False)
    # Pinyin search keys of the name (tagging.names.pinyin_keys), kept by save() like name_key:
    # tag search filters on them in SQL instead of reading every visible tag into Python.
    pinyin_initials = models.TextField(editable=False, default="")
    pinyin_full = models.TextField(editable=False, default="")
    colour = models.CharField(
        _("colour"),
        max_length=7,
        blank=True,
        validators=[validate_colour],
        help_text=_("Leave empty to use the group's colour."),
    )
    sort_order = models.IntegerField(_("order"), default=0)
    description = models.CharField(_("description"), max_length=255, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=TagStatus.choices, default=TagStatus.ACTIVE
    )
    merged_into = models.ForeignKey(
        "self",
        verbose_name=_("merged into"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="merged_from",
        editable=False,
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        verbose_name=_("reviewed by"),
    )
    review_note = models.CharField(_("review note"), max_length=255, blank=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)
    archived_at = models.DateTimeField(_("archived"), null=True, blank=True, editable=False)

    objects = TagQuerySet.as_manager()
    customer_count: int  # set by with_customer_counts() and tagging.hygiene, not a column

    class Meta:
        verbose_name = _("tag")
        verbose_name_plural = _("tags")
        ordering = ["group__sort_order", "group_id", "sort_order", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["group", "name_key"],
                name="tag_unique_name_in_group",
                violation_error_message=_("This group already has a tag with this name."),
            ),
        ]
        indexes = [models.Index(fields=["status", "group"], name="tag_status_group")]

    def __str__(self) -> str:
        return f"{self.group.name}:{self.name}" if self.group_id else self.name

    def save(self, *args, **kwargs) -> None:
        self.name_key = fold_name(self.name)
        self.pinyin_initials, self.pinyin_full = pinyin_keys(self.name)
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "name" in update_fields:
            kwargs["update_fields"] = {*update_fields, "name_key", "pinyin_initials", "pinyin_full"}
        super().save(*args, **kwargs)

    @property
    def display_colour(self) -> str:
        return self.colour or self.group.colour

    @property
    def kind(self) -> str:
        return self.group.kind


class TagAssignment(models.Model):
    """A customer carries a tag: once per (customer, tag), with provenance."""

    # No single-column indexes on customer, tag and rule: the composites below lead with each
    # (customer, tag) · (tag, customer) · (rule, tag) and serve the FK lookups and cascades.
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    tag = models.ForeignKey(
        Tag, on_delete=models.CASCADE, related_name="assignments", db_index=False
    )
    source = models.CharField(_("source"), max_length=16, choices=AssignmentSource.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("added by"),
    )
    rule = models.ForeignKey(
        "rules.Rule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="assignments",
        db_index=False,
    )
    created_at = models.DateTimeField(pgettext_lazy("time", "added"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"), null=True, blank=True)

    class Meta:
        verbose_name = _("tag assignment")
        verbose_name_plural = _("tag assignments")
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "tag"], name="assignment_unique_customer_tag"
            ),
        ]
        indexes = [
            models.Index(fields=["tag", "customer"], name="assignment_tag_customer"),
            models.Index(
                fields=["expires_at"],
                name="assignment_expiry",
                condition=models.Q(expires_at__isnull=False),
            ),
            models.Index(
                fields=["rule", "tag"],
                name="assignment_rule",
                condition=models.Q(rule__isnull=False),
            ),
            models.Index(fields=["created_at"], name="assignment_created"),
        ]

    def __str__(self) -> str:
        return f"{self.customer} · {self.tag}"


class AuditAction(models.TextChoices):
    ASSIGNMENT_ADDED = "assignment.added", _("tag added to customer")
    ASSIGNMENT_REMOVED = "assignment.removed", _("tag removed from customer")
    TAG_CREATED = "tag.created", _("tag created")
    TAG_UPDATED = "tag.updated", _("tag changed")
    TAG_APPROVED = "tag.approved", _("tag approved")
    TAG_REJECTED = "tag.rejected", _("tag rejected")
    TAG_ARCHIVED = "tag.archived", _("tag archived")
    TAG_RESTORED = "tag.restored", _("tag restored")
    TAG_MERGED = "tag.merged", _("tag merged")
    TAG_DELETED = "tag.deleted", _("tag deleted")
    GROUP_CREATED = "group.created", _("group created")
    GROUP_UPDATED = "group.updated", _("group changed")
    GROUP_DELETED = "group.deleted", _("group deleted")
    PERMISSION_GRANTED = "permission.granted", _("permission granted")
    PERMISSION_REVOKED = "permission.revoked", _("permission revoked")
    RULE_CREATED = "rule.created", _("rule created")
    RULE_UPDATED = "rule.updated", _("rule changed")
    RULE_DELETED = "rule.deleted", _("rule deleted")
    CUSTOMER_CREATED = "customer.created", _("customer created")
    CUSTOMER_UPDATED = "customer.updated", _("customer changed")
    CUSTOMER_ERASED = "customer.erased", _("customers erased")
    DEPARTMENT_CREATED = "department.created", _("department created")
    DEPARTMENT_UPDATED = "department.updated", _("department changed")
    DEPARTMENT_DELETED = "department.deleted", _("department deleted")
    MEMBER_ADDED = "member.added", _("member joined a department")
    MEMBER_UPDATED = "member.updated", _("member's role changed")
    MEMBER_REMOVED = "member.removed", _("member left a department")
    TAG_REVIEW_LISTED = "tag.review_listed", _("personal tag listed for review")
    TAG_KEPT = "tag.kept", _("personal tag kept after review")
    ACCURACY_STARTED = "accuracy.started", _("accuracy check started")
    ACCURACY_REVIEWED = "accuracy.reviewed", _("sampled customer reviewed")
    FOLLOWER_ADDED = "follower.added", _("follower added")
    FOLLOWER_UPDATED = "follower.updated", _("follower changed")
    FOLLOWER_REMOVED = "follower.removed", _("follower removed")
    SUGGESTION_ACCEPTED = "suggestion.accepted", _("tag suggestion accepted")
    SUGGESTION_DISMISSED = "suggestion.dismissed", _("tag suggestion dismissed")
    WECOM_CHANGE_CANCELLED = "wecom.change_cancelled", _("WeCom change cancelled during its delay")
    WECOM_CHANGE_SENT_NOW = "wecom.change_sent_now", _("WeCom change sent before its delay ended")
    WECOM_LOCK_CHANGED = "wecom.lock_changed", _("protection lock changed")


AUDIT_TRUNCATE_SETTING = "tagdesk.audit_truncate"


def allow_audit_truncate(cursor) -> None:
    """Let this transaction TRUNCATE the audit log (PostgreSQL trigger, tagging 0006): only for
    wiping a whole database on purpose (``seed_demo --reset``, the test suite's flush)."""
    cursor.execute("SELECT set_config(%s, 'allow', true)", [AUDIT_TRUNCATE_SETTING])


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):  # noqa: ARG002
        raise ValidationError(_("The audit log is append-only."))

    def delete(self):
        raise ValidationError(_("The audit log is append-only."))


class AuditEntry(models.Model):
    """Append-only record of a change: who, when, what, before/after.

    References use no database constraint, so the history of a deleted tag or customer stays.
    On PostgreSQL triggers also refuse UPDATE, DELETE and TRUNCATE, with one exception: erasing
    a customer (``customers.services.erase_customers``) redacts the identifying texts of its
    entries through a database function (migration 0007), never who, when or what.
    """

    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # no query reads the log by actor (tagging 0017)
        related_name="+",
        verbose_name=_("who"),
    )
    action = models.CharField(_("action"), max_length=32, choices=AuditAction.choices)
    source = models.CharField(_("source"), max_length=16, choices=AssignmentSource.choices)
    customer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # audit_customer_time leads with it
        related_name="audit_entries",
        verbose_name=_("customer"),
    )
    tag = models.ForeignKey(
        Tag,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # audit_tag_time leads with it
        related_name="audit_entries",
        verbose_name=_("tag"),
    )
    group = models.ForeignKey(
        TagGroup,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_entries",
        verbose_name=_("tag group"),
    )
    rule = models.ForeignKey(
        "rules.Rule",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # audit_rule, partial: only rule runs write one
        related_name="audit_entries",
        verbose_name=_("rule"),
    )
    object_repr = models.CharField(_("object"), max_length=255, blank=True)
    before = models.JSONField(_("before"), null=True, blank=True)
    after = models.JSONField(_("after"), null=True, blank=True)
    reason = models.CharField(_("reason"), max_length=255, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit log")
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["customer", "created_at"], name="audit_customer_time"),
            models.Index(fields=["tag", "created_at"], name="audit_tag_time"),
            models.Index(fields=["action", "created_at"], name="audit_action_time"),
            models.Index(
                fields=["rule"], name="audit_rule", condition=models.Q(rule__isnull=False)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} · {self.object_repr}"

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise ValidationError(_("The audit log is append-only."))
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError(_("The audit log is append-only."))


# --- Segments (docs/segments.md) ---------------------------------------------------------------


class Segment(models.Model):
    """A saved boolean expression over tags and customer attributes (``tagging.segments``).

    ``expression`` holds the canonical JSON form; tags are referenced by id, so renames keep
    working and merges rewrite it (``tagging.segments.rewrite_segments_for_merge``).
    """

    name = models.CharField(_("name"), max_length=100)
    description = models.CharField(_("description"), max_length=255, blank=True)
    expression = models.JSONField(_("expression"))
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=pgettext_lazy("what belongs to one employee", "owner"),
        on_delete=models.CASCADE,
        related_name="segments",
    )
    shared = models.BooleanField(
        _("shared"),
        default=False,
        help_text=_("Colleagues may use it too (they see only customers in their own scope)."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="segment_unique_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name


class TagBitmap(models.Model):
    """The segment index (PostgreSQL only): which customers carry a tag, as a bitmap.

    Bit ``i`` of chunk ``c`` is customer id ``c * CHUNK_BITS + i``. ``key`` is a tag id, 0 for
    "every customer" (needed for NOT), ``-department id`` for a department's customers and
    ``-2**30 - employee id`` for the customers an employee follows (the customer scope on the
    index). The bitmaps are a snapshot; triggers on ``tagging_tagassignment``,
    ``customers_customer`` and ``customers_follower`` append every change to
    :class:`TagBitmapDelta` in the writer's own transaction, and readers combine both in one
    statement, so a reader's answer always equals the assignment table in its snapshot
    (``tagging.bitmaps``).
    """

    key = models.IntegerField()
    chunk = models.IntegerField()
    bits = models.BinaryField()

    class Meta:
        verbose_name = _("tag bitmap")
        verbose_name_plural = _("tag bitmaps")
        constraints = [
            models.UniqueConstraint(fields=["key", "chunk"], name="tagbitmap_unique_key_chunk")
        ]

    def __str__(self) -> str:
        return f"bitmap {self.key}/{self.chunk}"


class TagBitmapDelta(models.Model):
    """A change not yet folded into :class:`TagBitmap` (written by database triggers only)."""

    id = models.BigAutoField(primary_key=True)
    key = models.IntegerField()
    customer_id = models.BigIntegerField()
    present = models.BooleanField()

    class Meta:
        verbose_name = _("pending tag bitmap change")
        verbose_name_plural = _("pending tag bitmap changes")
        indexes = [models.Index(fields=["key", "id"], name="tagbitmapdelta_key")]

    def __str__(self) -> str:
        return f"{'+' if self.present else '-'}{self.key}:{self.customer_id}"


class HygieneReport(models.Model):
    """The monthly hygiene suggestions (``tagging.hygiene.monthly_report``), kept for the page."""

    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    summary = models.JSONField(_("summary"), default=dict)
    payload = models.JSONField(_("suggestions"), default=dict)

    class Meta:
        verbose_name = _("hygiene report")
        verbose_name_plural = _("hygiene reports")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{timezone.localtime(self.created_at):%Y-%m}"


class PersonalTagReview(models.Model):
    """A personal tag nobody has given a customer for a while (``TAGDESK_PERSONAL_TAG_STALE_DAYS``),
    listed monthly for its owner to keep or archive (``tagging.services.reviews``)."""

    class Status(models.TextChoices):
        OPEN = "open", _("to review")
        KEPT = "kept", _("kept")
        ARCHIVED = "archived", _("archived")

    tag = models.ForeignKey(
        Tag, on_delete=models.CASCADE, related_name="reviews", verbose_name=_("tag")
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="personal_tag_reviews",
        verbose_name=_("owner"),
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.OPEN
    )
    last_used_at = models.DateTimeField(_("last given to a customer"), null=True, blank=True)
    customers = models.PositiveIntegerField(_("customers carrying it"), default=0)
    listed_at = models.DateTimeField(_("listed"), default=timezone.now)
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)

    class Meta:
        verbose_name = _("personal tag to review")
        verbose_name_plural = _("personal tags to review")
        ordering = ["-listed_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tag"],
                condition=models.Q(status="open"),
                name="personal_review_one_open_per_tag",
            ),
        ]
        indexes = [models.Index(fields=["owner", "status"], name="personal_review_owner")]

    def __str__(self) -> str:
        return str(self.tag)


class AccuracyCheck(models.Model):
    """A sampling audit of tag accuracy (seed 004: 每周抽检5%的客户标签): a seeded random sample of
    the customers of a tag group or a segment, whose tags reviewers mark correct, wrong or
    missing (``tagging.accuracy``)."""

    name = models.CharField(_("name"), max_length=100)
    group = models.ForeignKey(
        TagGroup,
        verbose_name=_("tag group"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="accuracy_checks",
    )
    segment = models.ForeignKey(
        Segment,
        verbose_name=_("segment"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="accuracy_checks",
    )
    tags = models.ManyToManyField(Tag, verbose_name=_("tags judged"), related_name="+")
    percent = models.DecimalField(_("sample share (%)"), max_digits=5, decimal_places=2)
    seed = models.BigIntegerField(_("random seed"))
    population = models.PositiveIntegerField(_("customers in the population"), default=0)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("started by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("started"), auto_now_add=True)

    class Meta:
        verbose_name = _("accuracy check")
        verbose_name_plural = _("accuracy checks")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name


class AccuracyCheckItem(models.Model):
    """One sampled customer of an accuracy check."""

    check_run = models.ForeignKey(
        AccuracyCheck, on_delete=models.CASCADE, related_name="items", verbose_name=_("check")
    )
    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="+", verbose_name=_("customer")
    )
    position = models.PositiveIntegerField(_("position"))
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True)

    class Meta:
        verbose_name = _("sampled customer")
        verbose_name_plural = _("sampled customers")
        ordering = ["check_run", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["check_run", "customer"], name="accuracy_item_unique_customer"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.check_run} · {self.customer}"


class AccuracyMark(models.Model):
    """A reviewer's verdict on one tag of one sampled customer."""

    class Verdict(models.TextChoices):
        CORRECT = "correct", _("correct")
        WRONG = "wrong", _("wrong (should not have it)")
        MISSING = "missing", _("missing (should have it)")

    item = models.ForeignKey(
        AccuracyCheckItem,
        on_delete=models.CASCADE,
        related_name="marks",
        verbose_name=_("customer"),
    )
    tag = models.ForeignKey(Tag, on_delete=models.CASCADE, related_name="+", verbose_name=_("tag"))
    verdict = models.CharField(_("verdict"), max_length=16, choices=Verdict.choices)
    fixed = models.BooleanField(_("fixed"), default=False)

    class Meta:
        verbose_name = _("accuracy mark")
        verbose_name_plural = _("accuracy marks")
        constraints = [
            models.UniqueConstraint(fields=["item", "tag"], name="accuracy_mark_unique_tag"),
        ]

    def __str__(self) -> str:
        return f"{self.tag}: {self.get_verdict_display()}"


class TagAnalytics(Tag):
    """Admin entry for the analytics pages (no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = _("tag analytics")
        verbose_name_plural = _("tag analytics")


class TagHygiene(Tag):
    """Admin entry for the hygiene page (no table of its own)."""

    class Meta:
        proxy = True
        verbose_name = _("tag hygiene")
        verbose_name_plural = _("tag hygiene")


# The suggestion models live in their own module (this one is near its size limit); importing
# them here registers them in the tagging app (``as``: re-exported on purpose).
from tagging.suggestion_models import (  # noqa: E402
    CombinationSuggestion as CombinationSuggestion,
)
from tagging.suggestion_models import (  # noqa: E402
    CustomerTagSuggestionDismissal as CustomerTagSuggestionDismissal,
)
from tagging.suggestion_models import SuggestionReport as SuggestionReport  # noqa: E402
from tagging.suggestion_models import SuggestionStatus as SuggestionStatus  # noqa: E402
from tagging.suggestion_models import TagCooccurrence as TagCooccurrence  # noqa: E402
