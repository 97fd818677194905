"""Tag combination suggestions (docs/suggestions.md): the stored report, its pair and triple
candidates with their decisions, the co-occurrence counts the per-customer suggestions read,
and operators' per-customer dismissals.

Imported by ``tagging.models`` (so Django registers them in the ``tagging`` app); references to
other tagging models are by name, so this module imports none of them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy


class SuggestionStatus(models.TextChoices):
    NEW = "new", pgettext_lazy("suggestion status", "new")
    ACCEPTED = "accepted", pgettext_lazy("suggestion status", "accepted")
    DISMISSED = "dismissed", pgettext_lazy("suggestion status", "dismissed")


class SuggestionReport(models.Model):
    """One computation of the suggestions (``tagging.suggestions.run_report``): nightly by beat,
    or on demand from the admin. The newest finished one is what the pages and the API read."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("queued")
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    created_at = models.DateTimeField(_("created"), default=timezone.now, db_index=True)
    started_at = models.DateTimeField(_("started"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.QUEUED
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("requested by"),
    )
    min_support = models.PositiveIntegerField(_("minimum support"))
    min_lift = models.FloatField(_("minimum lift"))
    customers = models.PositiveIntegerField(_("customers"), default=0)
    tags_considered = models.PositiveIntegerField(_("tags considered"), default=0)
    pairs_counted = models.PositiveIntegerField(_("pairs counted"), default=0)
    triples_counted = models.PositiveIntegerField(_("triples counted"), default=0)
    suggestions = models.PositiveIntegerField(_("suggestions"), default=0)
    seconds = models.FloatField(_("seconds"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("suggestion report")
        verbose_name_plural = _("suggestion reports")
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{timezone.localtime(self.created_at):%Y-%m-%d %H:%M} · {self.get_status_display()}"


class CombinationSuggestion(models.Model):
    """A pair or triple of tags held together far more often than independence predicts.

    ``key`` is the sorted tag ids ("3,9,12"): a recompute updates the figures of the row with
    the same key and leaves its decision alone, so a dismissed combination never comes back as
    new, and an accepted one keeps pointing at the segment it became."""

    key = models.CharField(_("tags (ids)"), max_length=64, unique=True)
    tag_ids = models.JSONField(_("tags"))
    size = models.PositiveSmallIntegerField(_("size"))
    support = models.PositiveIntegerField(
        _("support"), help_text=_("Customers holding all the tags.")
    )
    support_ratio = models.FloatField(_("share of customers"))
    confidence = models.FloatField(
        _("confidence"),
        help_text=_("The highest share of holders of the other tags who also hold one of them."),
    )
    lift = models.FloatField(
        _("lift"), help_text=_("How many times more often than if the tags were independent.")
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=SuggestionStatus.choices,
        default=SuggestionStatus.NEW,
        db_index=True,
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("decided by"),
    )
    decided_at = models.DateTimeField(_("decided"), null=True, blank=True)
    segment = models.ForeignKey(
        "tagging.Segment",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("segment"),
    )
    report = models.ForeignKey(
        SuggestionReport,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="combinations",
        verbose_name=_("last computed in"),
    )

    class Meta:
        verbose_name = _("tag combination suggestion")
        verbose_name_plural = _("tag combination suggestions")
        ordering = ["-lift", "-support", "key"]

    def __str__(self) -> str:
        return self.key


class TagCooccurrence(models.Model):
    """Customers holding both ``tag_id`` and ``other_id`` (``tag_id == other_id``: holding the
    tag), as of the newest report; both directions are stored, so one customer's suggestions
    are one index range per tag it holds. Only pairs with at least the report's minimum support."""

    tag_id = models.IntegerField()
    other_id = models.IntegerField()
    customers = models.PositiveIntegerField()

    class Meta:
        verbose_name = _("tag co-occurrence")
        verbose_name_plural = _("tag co-occurrences")
        constraints = [
            models.UniqueConstraint(fields=["tag_id", "other_id"], name="tagcooccurrence_pair")
        ]

    def __str__(self) -> str:
        return f"{self.tag_id}+{self.other_id}: {self.customers}"


class CustomerTagSuggestionDismissal(models.Model):
    """An operator said a suggested tag does not fit this customer: it is not suggested again
    for this customer (to anyone)."""

    customer = models.ForeignKey(
        "customers.Customer",
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("customer"),
    )
    tag = models.ForeignKey(
        "tagging.Tag", on_delete=models.CASCADE, related_name="+", verbose_name=_("tag")
    )
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("dismissed by"),
    )
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        verbose_name = _("dismissed tag suggestion")
        verbose_name_plural = _("dismissed tag suggestions")
        constraints = [
            models.UniqueConstraint(
                fields=["customer", "tag"], name="tagsuggestiondismissal_customer_tag"
            )
        ]

    def __str__(self) -> str:
        return f"{self.customer_id}/{self.tag_id}"
