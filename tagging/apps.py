from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


class TaggingConfig(AppConfig):
    name = "tagging"
    verbose_name = _("Tags")

    def ready(self) -> None:
        from tagging import hooks
        from tagging.schedule import ensure_after_migrate
        from tagging.segments import rewrite_segments_for_merge

        # A merge rewrites saved segments that name a merged tag (tagging.hooks says why).
        hooks.on_tags_merged(rewrite_segments_for_merge)
        post_migrate.connect(
            ensure_after_migrate, sender=self, dispatch_uid="tagging_nightly_suggestions"
        )
