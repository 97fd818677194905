"""Auto-tag rules (SPEC §6). A rule owns one auto tag and a versioned JSON condition tree."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Rule(models.Model):
    name = models.CharField(_("name"), max_length=128)
    tag = models.ForeignKey(
        "tagging.Tag",
        verbose_name=_("auto tag"),
        on_delete=models.PROTECT,
        related_name="rules",
    )
    tree = models.JSONField(_("conditions"), default=dict)
    tree_version = models.PositiveSmallIntegerField(_("condition format version"), default=1)
    enabled = models.BooleanField(_("enabled"), default=True)
    description = models.TextField(_("description"), blank=True)
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

    class Meta:
        verbose_name = _("rule")
        verbose_name_plural = _("rules")
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name
