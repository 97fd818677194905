"""What TagDesk knows about the WeCom side (docs/wecom.md).

tagging and customers stay WeCom-agnostic: the links between their rows and WeCom's ids, the
per-relationship tag state last seen in WeCom, the outbox, the callback log and the group chats
live here. Nothing outside ``wecom.services`` writes these tables.
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class WecomLink(models.Model):
    """What every link between a TagDesk group or tag and its WeCom counterpart holds: the WeCom
    id (unique), the name WeCom has for it, and when a sync last saw it."""

    wecom_id = models.CharField(_("WeCom id"), max_length=64, unique=True)
    name = models.CharField(_("name in WeCom"), max_length=64)
    synced_at = models.DateTimeField(_("synced"), default=timezone.now)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{self.name} ({self.wecom_id})"


class WecomTagGroupLink(WecomLink):
    """A TagDesk corporate group and its WeCom tag group. ``name`` and ``order`` are the values
    both sides agreed on at the last sync (the common base of a three-way merge); ``group`` is
    NULL once the TagDesk group was deleted and the deletion is not yet pushed."""

    group = models.OneToOneField(
        "tagging.TagGroup",
        verbose_name=_("tag group"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="wecom_link",
    )
    order = models.BigIntegerField(_("order in WeCom"), default=0)

    class Meta:
        verbose_name = _("WeCom tag group link")
        verbose_name_plural = _("WeCom tag group links")


class WecomTagLink(WecomLink):
    """A TagDesk corporate tag and its WeCom corp tag (see :class:`WecomTagGroupLink`)."""

    tag = models.OneToOneField(
        "tagging.Tag",
        verbose_name=_("tag"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="wecom_link",
    )
    group_link = models.ForeignKey(
        WecomTagGroupLink, on_delete=models.CASCADE, related_name="tag_links"
    )
    order = models.BigIntegerField(_("order in WeCom"), default=0)

    class Meta:
        verbose_name = _("WeCom tag link")
        verbose_name_plural = _("WeCom tag links")


class SyncDirection(models.TextChoices):
    BOTH = "both", _("both ways")
    TO_WECOM = "to_wecom", _("TagDesk → WeCom only")
    FROM_WECOM = "from_wecom", _("WeCom → TagDesk only")
    OFF = "off", _("not synced")


MAX_SYNC_DELAY_MINUTES = 7 * 24 * 60  # a week: longer, and nobody reviews what waits


class WecomGroupRule(models.Model):
    """Per tag group: in which direction its assignments sync (groups without a rule: both),
    and how long its changes wait in the outbox for review before they go to WeCom
    (``delay_minutes``, 0 = none; docs/wecom.md#sync-delay--同步延迟). The library itself (names,
    order) always syncs both ways."""

    group = models.OneToOneField(
        "tagging.TagGroup",
        verbose_name=_("tag group"),
        on_delete=models.CASCADE,
        related_name="wecom_rule",
    )
    direction = models.CharField(
        _("assignments sync"),
        max_length=16,
        choices=SyncDirection.choices,
        default=SyncDirection.BOTH,
    )
    delay_minutes = models.IntegerField(
        _("sync delay (minutes)"),
        default=0,
        validators=[
            MinValueValidator(0, _("A sync delay cannot be negative; 0 means no delay.")),
            MaxValueValidator(
                MAX_SYNC_DELAY_MINUTES,
                _("A sync delay is at most %(limit_value)s minutes (7 days)."),
            ),
        ],
        help_text=_(
            "Changes to this group's assignments wait this long before they are sent to WeCom; "
            "meanwhile they can be reviewed, cancelled or sent at once (e.g. 120 for a sensitive "
            "group). 0 = sent at once."
        ),
    )

    class Meta:
        verbose_name = _("WeCom sync rule")
        verbose_name_plural = _("WeCom sync rules")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(delay_minutes__gte=0, delay_minutes__lte=MAX_SYNC_DELAY_MINUTES),
                name="wecomgrouprule_delay_bounds",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.group} · {self.get_direction_display()}"


class WecomRelation(models.Model):
    """One WeCom relationship (follow_user): an employee and an external contact."""

    customer = models.ForeignKey(
        "customers.Customer", on_delete=models.CASCADE, related_name="wecom_relations"
    )
    employee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wecom_relations"
    )
    userid = models.CharField(_("WeCom userid"), max_length=64)
    external_userid = models.CharField(_("external userid"), max_length=64)
    state = models.CharField(_("channel state"), max_length=64, blank=True)
    # The state whose channel tags this relationship already received (wecom.services.channels):
    # a retried callback or a later sync applies them once, a new state once more.
    state_applied = models.CharField(_("channel state applied"), max_length=64, blank=True)
    synced_at = models.DateTimeField(_("synced"), default=timezone.now)

    class Meta:
        verbose_name = _("WeCom relationship")
        verbose_name_plural = _("WeCom relationships")
        constraints = [
            models.UniqueConstraint(
                fields=["userid", "external_userid"], name="wecomrelation_unique_pair"
            ),
        ]
        indexes = [models.Index(fields=["customer"], name="wecomrelation_customer")]

    def __str__(self) -> str:
        return f"{self.userid} → {self.external_userid}"


class WecomRelationTag(models.Model):
    """A corp tag (WeCom id) the relationship carries in WeCom, as last seen or sent."""

    relation = models.ForeignKey(WecomRelation, on_delete=models.CASCADE, related_name="tags")
    wecom_tag_id = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("WeCom relationship tag")
        verbose_name_plural = _("WeCom relationship tags")
        constraints = [
            models.UniqueConstraint(
                fields=["relation", "wecom_tag_id"], name="wecomrelationtag_unique"
            ),
        ]
        indexes = [models.Index(fields=["wecom_tag_id"], name="wecomrelationtag_tag")]

    def __str__(self) -> str:
        return self.wecom_tag_id


class OutboxStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    DONE = "done", _("sent")
    DEAD = "dead", _("dead letter")
    CANCELLED = "cancelled", _("cancelled (withheld)")


class WecomOutbox(models.Model):
    """ "This relationship's tags changed in TagDesk": one row per change and relationship,
    written in the change's transaction. The worker sends the relationship's final state (not
    the row's delta), so rows of one relationship collapse into one mark_tag call."""

    userid = models.CharField(_("WeCom userid"), max_length=64)
    external_userid = models.CharField(_("external userid"), max_length=64)
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="+",
    )
    change = models.JSONField(_("change"), default=dict, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    attempts = models.PositiveIntegerField(_("attempts"), default=0)
    next_attempt_at = models.DateTimeField(_("next attempt"), default=timezone.now)
    errcode = models.IntegerField(_("WeCom errcode"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)
    sent = models.JSONField(_("sent"), null=True, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    # A change in a group with a sync delay: not sent before ``held_until``, and nothing of its
    # relationship after it either (docs/wecom.md#sync-delay--同步延迟). ``held_group`` is the
    # group whose rule held it (the review page's filter); ``reviewed_by`` cancelled it or sent
    # it early.
    held_until = models.DateTimeField(_("held until"), null=True, blank=True)
    held_group = models.ForeignKey(
        "tagging.TagGroup",
        verbose_name=_("tag group"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # wecomoutbox_held_group: only the few rows that have one
    )
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("reviewed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        db_index=False,  # wecomoutbox_reviewed_by: likewise
    )
    reviewed_at = models.DateTimeField(_("reviewed"), null=True, blank=True)

    class Meta:
        verbose_name = _("WeCom outbox entry")
        verbose_name_plural = _("WeCom outbox")
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at", "id"],
                name="wecomoutbox_due",
                condition=models.Q(status="pending"),
            ),
            models.Index(fields=["userid", "external_userid", "status"], name="wecomoutbox_rel"),
            models.Index(
                fields=["held_until", "id"],
                name="wecomoutbox_held",
                condition=models.Q(status="pending", held_until__isnull=False),
            ),
            models.Index(
                fields=["held_group"],
                name="wecomoutbox_held_group",
                condition=models.Q(held_group__isnull=False),
            ),
            models.Index(
                fields=["reviewed_by"],
                name="wecomoutbox_reviewed_by",
                condition=models.Q(reviewed_by__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.userid} → {self.external_userid}"


class WecomHeldChange(WecomOutbox):
    """The review page of held changes (admin): outbox rows of delayed groups still waiting."""

    class Meta:
        proxy = True
        verbose_name = _("held WeCom change")
        verbose_name_plural = _("held WeCom changes (sync delay)")


class WecomWithheld(models.Model):
    """A change an operator cancelled during its sync delay: TagDesk keeps the assignment, WeCom
    keeps what it had for this tag on this relationship. The outbox leaves the tag as WeCom holds
    it, and the drift report lists it as withheld, until TagDesk changes that tag on that
    customer again (a new change is a new decision)."""

    customer = models.ForeignKey(
        "customers.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="+"
    )
    userid = models.CharField(_("WeCom userid"), max_length=64)
    external_userid = models.CharField(_("external userid"), max_length=64)
    tag = models.ForeignKey(
        "tagging.Tag", verbose_name=_("tag"), on_delete=models.CASCADE, related_name="+"
    )
    added = models.BooleanField(_("withheld an addition"))
    outbox = models.ForeignKey(
        WecomOutbox,
        verbose_name=_("outbox entry"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="withheld",
    )
    withheld_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("cancelled by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    withheld_at = models.DateTimeField(_("cancelled"), default=timezone.now)

    class Meta:
        verbose_name = _("withheld WeCom change")
        verbose_name_plural = _("withheld WeCom changes")
        constraints = [
            models.UniqueConstraint(
                fields=["userid", "external_userid", "tag"], name="wecomwithheld_unique"
            ),
        ]
        indexes = [models.Index(fields=["customer", "tag"], name="wecomwithheld_customer")]

    def __str__(self) -> str:
        return f"{self.userid} → {self.external_userid} · {self.tag_id}"


class CallbackStatus(models.TextChoices):
    RECEIVED = "received", _("received")
    PROCESSING = "processing", _("processing")
    DONE = "done", _("applied")
    IGNORED = "ignored", _("ignored")
    FAILED = "failed", _("failed")


class WecomCallbackEvent(models.Model):
    """A decrypted callback from WeCom, recorded before it is applied (by a task)."""

    dedupe_key = models.CharField(max_length=64, unique=True, editable=False)
    received_at = models.DateTimeField(_("received"), default=timezone.now, db_index=True)
    event = models.CharField(_("event"), max_length=64, blank=True)
    change_type = models.CharField(_("change type"), max_length=64, blank=True)
    payload = models.JSONField(_("payload"), default=dict)
    status = models.CharField(
        _("status"), max_length=16, choices=CallbackStatus.choices, default=CallbackStatus.RECEIVED
    )
    error = models.CharField(_("error"), max_length=255, blank=True)
    processed_at = models.DateTimeField(_("processed"), null=True, blank=True)

    class Meta:
        verbose_name = _("WeCom callback")
        verbose_name_plural = _("WeCom callbacks")
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event}/{self.change_type}"


class WecomSyncIssue(models.Model):
    """Something the sync skipped, with the reason (a name over 30 characters, an unknown
    userid…). One row per (kind, WeCom id, code), updated when seen again."""

    kind = models.CharField(_("kind"), max_length=32)
    wecom_id = models.CharField(_("WeCom id"), max_length=128, blank=True)
    code = models.CharField(_("code"), max_length=64)
    message = models.CharField(_("reason"), max_length=255)
    first_seen = models.DateTimeField(_("first seen"), default=timezone.now)
    last_seen = models.DateTimeField(_("last seen"), default=timezone.now, db_index=True)
    count = models.PositiveIntegerField(_("times"), default=1)

    class Meta:
        verbose_name = _("WeCom sync issue")
        verbose_name_plural = _("WeCom sync issues")
        ordering = ["-last_seen", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind", "wecom_id", "code"], name="wecomsyncissue_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.message


class SyncRunStatus(models.TextChoices):
    RUNNING = "running", _("running")
    DONE = "done", _("done")
    FAILED = "failed", _("failed")


class WecomSyncRun(models.Model):
    """One sync or drift check (command, nightly job or admin), with its counts."""

    kind = models.CharField(_("kind"), max_length=32)
    started_at = models.DateTimeField(_("started"), default=timezone.now, db_index=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=SyncRunStatus.choices, default=SyncRunStatus.RUNNING
    )
    summary = models.JSONField(_("summary"), default=dict, blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)

    class Meta:
        verbose_name = _("WeCom sync run")
        verbose_name_plural = _("WeCom sync runs")
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind} {self.started_at:%Y-%m-%d %H:%M}"


class GroupChat(models.Model):
    """A WeCom customer group chat (客户群), kept by sync and change_external_chat callbacks."""

    chat_id = models.CharField(_("chat id"), max_length=64, unique=True)
    name = models.CharField(_("name"), max_length=128, blank=True)
    owner_userid = models.CharField(_("owner userid"), max_length=64, blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("owner"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="wecom_group_chats",
    )
    notice = models.TextField(_("notice"), blank=True)
    created_at = models.DateTimeField(_("created"), null=True, blank=True)
    dismissed = models.BooleanField(_("dismissed"), default=False)
    synced_at = models.DateTimeField(_("synced"), default=timezone.now)

    class Meta:
        verbose_name = _("group chat")
        verbose_name_plural = _("group chats")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name or self.chat_id


class GroupChatMember(models.Model):
    class Kind(models.IntegerChoices):
        EMPLOYEE = 1, _("employee")
        EXTERNAL = 2, _("external contact")

    chat = models.ForeignKey(GroupChat, on_delete=models.CASCADE, related_name="members")
    userid = models.CharField(_("userid"), max_length=64)
    kind = models.PositiveSmallIntegerField(_("kind"), choices=Kind.choices)
    name = models.CharField(_("name"), max_length=128, blank=True)
    join_time = models.DateTimeField(_("joined"), null=True, blank=True)
    join_scene = models.PositiveSmallIntegerField(_("join scene"), default=0)
    customer = models.ForeignKey(
        "customers.Customer",
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="group_chat_memberships",
    )
    employee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("employee"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("group chat member")
        verbose_name_plural = _("group chat members")
        constraints = [
            models.UniqueConstraint(fields=["chat", "userid"], name="groupchatmember_unique"),
        ]

    def __str__(self) -> str:
        return self.name or self.userid


class MassMessageStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SENT = "sent", _("created in WeCom")
    PARTLY_FAILED = "partly_failed", _("partly failed")
    FAILED = "failed", _("failed")


class WecomMassMessage(models.Model):
    """群发 to a saved segment: one WeCom mass message (add_msg_template) per follower, for
    that follower's customers in the segment; each employee confirms it in WeCom."""

    segment = models.ForeignKey(
        "tagging.Segment",
        verbose_name=_("segment"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    segment_name = models.CharField(_("segment"), max_length=100, editable=False)
    text = models.TextField(_("text"), max_length=4000)
    link_title = models.CharField(_("link title"), max_length=128, blank=True)
    link_url = models.URLField(_("link URL"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("created by"),
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=MassMessageStatus.choices,
        default=MassMessageStatus.PENDING,
    )
    customers = models.PositiveIntegerField(_("customers"), default=0)
    results = models.JSONField(_("results"), default=dict, blank=True)
    results_at = models.DateTimeField(_("results fetched"), null=True, blank=True)

    class Meta:
        verbose_name = _("WeCom mass message")
        verbose_name_plural = _("WeCom mass messages")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.segment_name} · {self.created_at:%Y-%m-%d %H:%M}"


class WecomMassMessagePart(models.Model):
    """One add_msg_template call: one sender, at most WeCom's 10,000 customers."""

    message = models.ForeignKey(WecomMassMessage, on_delete=models.CASCADE, related_name="parts")
    sender = models.CharField(_("sender userid"), max_length=64)
    external_userids = models.JSONField(default=list)
    msgid = models.CharField(_("msgid"), max_length=128, blank=True)
    errcode = models.IntegerField(_("WeCom errcode"), null=True, blank=True)
    error = models.CharField(_("error"), max_length=255, blank=True)
    fail_list = models.JSONField(_("refused by WeCom"), default=list, blank=True)

    class Meta:
        verbose_name = _("mass message part")
        verbose_name_plural = _("mass message parts")

    def __str__(self) -> str:
        return f"{self.sender} ({len(self.external_userids)})"


class WecomChannelState(models.Model):
    """A 渠道活码 (contact way) ``state``: the source channel it stands for and the tags a customer
    added through it receives (docs/wecom.md#what-syncs--同步内容). A state WeCom sends that nobody
    configured is recorded here too, without tags (``configured`` False), so the admin shows it."""

    STATE_LIMIT = 30  # WeCom's limit on a contact way's state

    state = models.CharField(_("state"), max_length=STATE_LIMIT, unique=True)
    channel = models.CharField(_("source channel"), max_length=64, blank=True)
    tags = models.ManyToManyField(
        "tagging.Tag", verbose_name=_("tags"), blank=True, related_name="+"
    )
    configured = models.BooleanField(_("configured"), default=True)
    contacts_added = models.PositiveIntegerField(_("contacts added"), default=0)
    last_added_at = models.DateTimeField(_("last added"), null=True, blank=True)
    updated_at = models.DateTimeField(_("changed"), default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("changed by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("channel state (渠道活码)")
        verbose_name_plural = _("channel states (渠道活码)")
        ordering = ["state"]

    def __str__(self) -> str:
        return self.state

    @property
    def label(self) -> str:
        """The source channel shown on the customer: the configured one, else the state."""
        return self.channel or self.state


class WecomStrategyGroupLink(WecomLink):
    """A TagDesk auto group and its WeCom rule-group (strategy) tag group in the 规则组
    ``strategy_id`` (``WECOM_STRATEGY_ID``). TagDesk owns auto tags (rules make them), so these
    are pushed only, never pulled; ``group`` is NULL once the group was deleted and the deletion
    is not yet pushed."""

    group = models.OneToOneField(
        "tagging.TagGroup",
        verbose_name=_("tag group"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="wecom_strategy_link",
    )
    strategy_id = models.PositiveIntegerField(_("rule group id"))

    class Meta:
        verbose_name = _("WeCom strategy tag group link")
        verbose_name_plural = _("WeCom strategy tag group links")


class WecomStrategyTagLink(WecomLink):
    """A TagDesk auto tag and its WeCom strategy tag (see :class:`WecomStrategyGroupLink`)."""

    tag = models.OneToOneField(
        "tagging.Tag",
        verbose_name=_("tag"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="wecom_strategy_link",
    )
    group_link = models.ForeignKey(
        WecomStrategyGroupLink, on_delete=models.CASCADE, related_name="tag_links"
    )

    class Meta:
        verbose_name = _("WeCom strategy tag link")
        verbose_name_plural = _("WeCom strategy tag links")


# The CRM webhook, outbound names and the protection lock live in a module of their own.
from wecom.models_webhook import DeliveryStatus as DeliveryStatus  # noqa: E402
from wecom.models_webhook import OutboundName as OutboundName  # noqa: E402
from wecom.models_webhook import ProtectionLock as ProtectionLock  # noqa: E402
from wecom.models_webhook import WebhookDelivery as WebhookDelivery  # noqa: E402
from wecom.models_webhook import WebhookEndpoint as WebhookEndpoint  # noqa: E402
