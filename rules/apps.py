from django.apps import AppConfig
from django.db.models.signals import post_delete, post_migrate, post_save
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
        # Real-time auto tags: the domain apps call these inside their transactions.
        from customers.hooks import register_customers_listener
        from rules import realtime
        from rules.models import Rule
        from tagging.hooks import on_assignments_changed

        self.wire_enqueue()

        register_customers_listener(realtime.on_customers_changed)
        on_assignments_changed(realtime.on_assignments_changed)
        post_save.connect(realtime.on_rule_changed, sender=Rule, dispatch_uid="rules_rt_index_save")
        post_delete.connect(
            realtime.on_rule_changed, sender=Rule, dispatch_uid="rules_rt_index_delete"
        )

    @staticmethod
    def wire_enqueue() -> None:
        """rules.realtime wakes its worker through the Celery task (an adapter it may not
        import itself)."""
        from rules import realtime
        from rules.tasks import realtime_batch_task

        realtime.set_enqueue(lambda countdown: realtime_batch_task.apply_async(countdown=countdown))
