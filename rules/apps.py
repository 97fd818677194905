from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class RulesConfig(AppConfig):
    name = "rules"
    verbose_name = _("Auto-tag rules")

    def ready(self) -> None:
        from rules.schedule import ensure_after_migrate
        from rules.services import rewrite_rules_for_merge
        from tagging import hooks

        # A merge rewrites rules that read a merged tag, inside the merge's transaction.
        hooks.on_tags_merged(rewrite_rules_for_merge)

        # Keeps the nightly beat entry present after migrate/flush (it is setup, not logic).
        post_migrate.connect(
            ensure_after_migrate, sender=self, dispatch_uid="rules_nightly_schedule"
        )
