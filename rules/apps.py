from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class RulesConfig(AppConfig):
    name = "rules"
    verbose_name = _("Auto-tag rules")

    def ready(self) -> None:
        from rules.schedule import ensure_after_migrate

        # Keeps the nightly beat entry present after migrate/flush (it is setup, not logic).
        post_migrate.connect(
            ensure_after_migrate, sender=self, dispatch_uid="rules_nightly_schedule"
        )
