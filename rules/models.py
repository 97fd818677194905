"""Auto-tag rules (docs/rules.md). A rule owns one auto tag and a versioned JSON condition tree;
every evaluation is recorded as a RuleRun (the status row the admin shows)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext, pgettext_lazy
from django.utils.translation import gettext_lazy as _

from rules import dsl
from rules.describe import describe_tree
from tagging.models import Tag, TagKind


class RuleMode(models.TextChoices):
    NIGHTLY = "nightly", _("nightly only")
    REALTIME = "realtime", _("real time + nightly")


class Rule(models.Model):
    name = models.CharField(_("name"), max_length=128)
    tag = models.ForeignKey(
        "tagging.Tag",
        verbose_name=_("auto tag"),
        on_delete=models.PROTECT,
        related_name="rules",
        help_text=_("The auto tag this rule adds and removes; each auto tag has one rule."),
    )
    tree = models.JSONField(_("conditions"), default=dict)
    tree_version = models.PositiveSmallIntegerField(_("condition format version"), default=1)
    enabled = models.BooleanField(
        _("enabled"), default=True, help_text=_("Enabled rules run every night at 00:00.")
    )
    mode = models.CharField(
        _("mode"),
        max_length=16,
        choices=RuleMode.choices,
        default=RuleMode.NIGHTLY,
        help_text=_(
            "Real time: customers are re-evaluated within seconds of an event or a change to "
            "what the rule reads; the nightly run still reconciles everyone."
        ),
    )
    description = models.TextField(_("description"), blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("rule")
        verbose_name_plural = _("rules")
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["tag"],
                name="rule_unique_tag",
                violation_error_message=_("This auto tag already has a rule."),
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        """The same validation as the admin form and the API: the target is an auto tag, the
        tree parses, referenced tags exist and no cycle through tags appears."""
        errors: dict[str, list] = {}
        if self.tag_id is not None and self.tag.group.kind != TagKind.AUTO:
            errors["tag"] = [_("Choose a tag from an auto-tag group.")]
        try:
            node = dsl.parse_tree(self.tree, self.tree_version)
            check_references(node, tag_id=self.tag_id, rule_id=self.pk)
        except dsl.RuleSyntaxError as exc:
            errors["tree"] = exc.messages()
        if errors:
            raise ValidationError(errors)

    @property
    def summary(self) -> str:
        return describe_tree(self.tree, self.tree_version)


def check_references(node: dsl.Node, *, tag_id: int | None, rule_id: int | None = None) -> None:
    """Database checks: referenced tags exist; the rule's own tag is not reachable from the
    tags it reads (directly or through other rules' tags), so rules never feed on themselves."""
    refs = dsl.referenced_tags(node)
    errors: list[tuple[str, str]] = []
    if refs:
        found = set(Tag.objects.filter(pk__in=refs).values_list("pk", flat=True))
        for missing in sorted(refs - found):
            errors.append(("", gettext("Tag %(id)s does not exist.") % {"id": missing}))
    if tag_id is not None and refs:
        graph: dict[int, set[int]] = {}
        rules = Rule.objects.all() if rule_id is None else Rule.objects.exclude(pk=rule_id)
        others = rules.values_list("tag_id", "tree", "tree_version")
        for other_tag, tree, version in others:
            try:
                graph.setdefault(other_tag, set()).update(
                    dsl.referenced_tags(dsl.parse_tree(tree, version))
                )
            except dsl.RuleSyntaxError:
                continue
        seen, stack = set(), list(refs)
        while stack:
            current = stack.pop()
            if current == tag_id:
                errors.append(
                    (
                        "",
                        gettext(
                            "The rule reads its own tag (directly or through other rules): a cycle."
                        ),
                    )
                )
                break
            if current not in seen:
                seen.add(current)
                stack.extend(graph.get(current, ()))
    if errors:
        raise dsl.RuleSyntaxError(errors)


class RunTrigger(models.TextChoices):
    SCHEDULE = "schedule", _("nightly schedule")
    MANUAL = "manual", _("run now (admin)")
    COMMAND = "command", _("command")
    API = "api", _("API")


class RunStatus(models.TextChoices):
    RUNNING = "running", _("running")
    SUCCEEDED = "succeeded", _("succeeded")
    FAILED = "failed", _("failed")
    REJECTED = "rejected", _("rejected (invalid rule)")
    SKIPPED = "skipped", _("skipped (already running)")


class RuleRun(models.Model):
    """One evaluation of a rule. At most one ``running`` row per rule (a partial unique
    constraint): inserting it is how a run claims its rule, so runs never overlap.

    A running row holds a lease (``lease_expires_at``) that its worker renews while it works; a
    run whose lease expired lost its worker, and ``rules.reap_rule_runs`` fails it and queues a
    new run of the rule (``attempt`` + 1). The evaluation is one transaction, so the lost run left
    nothing behind and the new one starts over."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="runs")
    trigger = models.CharField(_("trigger"), max_length=16, choices=RunTrigger.choices)
    dry_run = models.BooleanField(_("dry run"), default=False)
    status = models.CharField(_("status"), max_length=16, choices=RunStatus.choices)
    started_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    matched = models.PositiveIntegerField(_("matched"), null=True, blank=True)
    added = models.PositiveIntegerField(pgettext_lazy("count", "added"), null=True, blank=True)
    removed = models.PositiveIntegerField(_("removed"), null=True, blank=True)
    missed = models.PositiveIntegerField(
        _("missed by real time"),
        null=True,
        blank=True,
        help_text=_(
            "Real-time rules, nightly runs: changes made for customers with no pending "
            "real-time mark (rules.realtime explains the definition)."
        ),
    )
    error = models.TextField(_("error"), blank=True)
    timings = models.JSONField(_("timings (s)"), default=dict, blank=True)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("triggered by"),
    )
    task_id = models.CharField(_("task id"), max_length=64, blank=True, db_index=True)
    attempt = models.PositiveSmallIntegerField(_("attempt"), default=1)
    lease_expires_at = models.DateTimeField(_("lease expires"), null=True, blank=True)

    class Meta:
        verbose_name = _("rule run")
        verbose_name_plural = _("rule runs")
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["rule"],
                condition=models.Q(status="running"),
                name="rulerun_one_running_per_rule",
            )
        ]
        indexes = [models.Index(fields=["rule", "-started_at"], name="rulerun_rule_time")]

    def __str__(self) -> str:
        return f"{self.rule} · {timezone.localtime(self.started_at):%Y-%m-%d %H:%M} · {self.get_status_display()}"

    @property
    def duration(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class DirtyCustomer(models.Model):
    """A customer whose rule inputs changed and who awaits real-time evaluation (rules.realtime).

    Written in the same transaction as the change, so a crash loses no mark. ``keys`` lists
    what changed (",event:purchase,attr:total_spend,tag:12," or "*" for everything). A worker
    claims a row (``claim``/``claimed_at``) and deletes it after evaluating; a change arriving
    meanwhile sets ``remarked_at``, and the row is released instead of deleted."""

    customer = models.OneToOneField(
        "customers.Customer", primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    since = models.DateTimeField(_("dirty since"))
    keys = models.TextField(default="", blank=True)
    claim = models.CharField(max_length=32, blank=True, default="")
    claimed_at = models.DateTimeField(null=True, blank=True)
    remarked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = _("customer awaiting real-time evaluation")
        verbose_name_plural = _("customers awaiting real-time evaluation")
        indexes = [models.Index(fields=["since"], name="dirtycustomer_since")]

    def __str__(self) -> str:
        return f"{self.customer_id} · {self.since:%Y-%m-%d %H:%M:%S}"


class RealtimeBatch(models.Model):
    """One real-time evaluation batch: its customers, the rules evaluated and their changes.
    ``latency_ms``: from the oldest dirty mark of the batch to its commit."""

    started_at = models.DateTimeField(_("started"))
    finished_at = models.DateTimeField(_("finished"))
    customers = models.PositiveIntegerField(_("customers evaluated"))
    rules = models.PositiveIntegerField(_("rules evaluated"))
    added = models.PositiveIntegerField(pgettext_lazy("count", "added"))
    removed = models.PositiveIntegerField(_("removed"))
    latency_ms = models.PositiveIntegerField(_("latency (ms)"))
    per_rule = models.JSONField(_("changes per rule"), default=dict, blank=True)

    class Meta:
        verbose_name = _("real-time batch")
        verbose_name_plural = _("real-time batches")
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["-started_at"], name="realtimebatch_time")]

    def __str__(self) -> str:
        return f"{self.started_at:%Y-%m-%d %H:%M:%S} · {self.customers}"
