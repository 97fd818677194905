from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class WecomConfig(AppConfig):
    name = "wecom"
    verbose_name = _("WeCom")

    def ready(self) -> None:
        from customers.hooks import register_erasure_listener
        from tagging import audit_view, hooks
        from tagging.models import AuditAction
        from wecom.schedule import ensure_after_migrate
        from wecom.services.erasure import on_customers_erased
        from wecom.services.protection import lock_audit_display
        from wecom.tasks import (
            assignments_listener,
            deletion_listener,
            rule_assignments_listener,
            taxonomy_listener,
            webhook_listener,
        )

        # tagging calls these inside its own transactions; it never imports wecom.
        hooks.on_assignments_changed(assignments_listener)
        hooks.on_assignments_changed(webhook_listener)
        hooks.on_taxonomy_changed(taxonomy_listener)
        hooks.on_taxonomy_deleting(deletion_listener)
        hooks.on_rule_assignments_written(rule_assignments_listener)
        # customers calls this inside erase_customers; it never imports wecom either.
        register_erasure_listener(on_customers_erased)
        # The audit log shows the lock's field keys as labels in the reader's language.
        audit_view.register_display(AuditAction.WECOM_LOCK_CHANGED, lock_audit_display)
        post_migrate.connect(
            ensure_after_migrate, sender=self, dispatch_uid="wecom_nightly_schedule"
        )
