from django.apps import AppConfig
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def create_level_permissions(using: str = "default", **kwargs) -> None:
    """The grant levels are permissions on tagging.TagGroup, but tagging's models don't declare
    them (the policy owns their meaning), so they are created here after every migrate/flush."""
    from django.apps import apps as global_apps

    from permissions.models import LEVEL_CODENAMES, LEVEL_PERMISSION_NAMES

    app_registry = kwargs.get("apps") or global_apps
    try:
        Permission = app_registry.get_model("auth", "Permission")
        ContentType = app_registry.get_model("contenttypes", "ContentType")
    except LookupError:
        return
    content_type, _created = ContentType.objects.using(using).get_or_create(
        app_label="tagging", model="taggroup"
    )
    for level, codename in LEVEL_CODENAMES.items():
        Permission.objects.using(using).get_or_create(
            content_type=content_type,
            codename=codename,
            defaults={"name": str(LEVEL_PERMISSION_NAMES[level])[:255]},
        )


class PermissionsConfig(AppConfig):
    name = "permissions"
    verbose_name = _("People and permissions")

    def ready(self) -> None:
        post_migrate.connect(
            create_level_permissions, dispatch_uid="permissions.create_level_permissions"
        )
