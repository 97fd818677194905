from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class WecomConfig(AppConfig):
    name = "wecom"
    verbose_name = _("WeCom")

    def ready(self) -> None:
        from tagging import hooks
        from wecom.schedule import ensure_after_migrate
        from wecom.services.library import on_taxonomy_changed
        from wecom.services.outbox import on_assignments_changed

        # tagging calls these inside its own transactions; it never imports wecom.
        hooks.register_assignment_listener(on_assignments_changed)
        hooks.register_taxonomy_listener(on_taxonomy_changed)
        post_migrate.connect(
            ensure_after_migrate, sender=self, dispatch_uid="wecom_nightly_schedule"
        )
