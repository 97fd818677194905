"""Every admin page a user can reach: the registry's views, the model admins' own views and
the links found on the pages (tests/admin/test_every_page_zh.py, test_local_times.py)."""

from __future__ import annotations

import re
from collections.abc import Callable

from django.contrib import admin
from django.urls import NoReverseMatch, reverse


def _first_pk(model_admin, request):
    obj = model_admin.get_queryset(request).order_by("pk").first()
    return None if obj is None else obj.pk


def admin_pages(user, *, custom: bool) -> list[str]:
    """Every GET-able admin URL for ``user``: the registry's standard views, each model admin's
    own views (URL arguments filled with an object of the kind the view takes), the site's."""
    from django.test import RequestFactory

    from customers.models import ImportJob
    from permissions.models import PermissionTemplate
    from rules.templates import TEMPLATES
    from tagging.models import Segment, TagGroup, TagKind

    request = RequestFactory().get("/admin/")
    request.user = user
    urls = [reverse("admin:index"), reverse("admin:password_change")]
    apps = set()
    for model, model_admin in admin.site._registry.items():
        if not model_admin.has_module_permission(request):
            continue
        info = (model._meta.app_label, model._meta.model_name)
        apps.add(model._meta.app_label)
        if model_admin.has_view_or_change_permission(request):
            urls.append(reverse("admin:{}_{}_changelist".format(*info)))
            pk = _first_pk(model_admin, request)
            if pk is not None:
                urls.append(reverse("admin:{}_{}_change".format(*info), args=[pk]))
                urls.append(reverse("admin:{}_{}_history".format(*info), args=[pk]))
                obj = model_admin.get_object(request, str(pk))
                if model_admin.has_delete_permission(request, obj):
                    urls.append(reverse("admin:{}_{}_delete".format(*info), args=[pk]))
        if model_admin.has_add_permission(request):
            urls.append(reverse("admin:{}_{}_add".format(*info)))
    urls += [reverse("admin:app_list", args=[app]) for app in sorted(apps)]
    arguments = {
        "group_id": TagGroup.objects.exclude(kind=TagKind.PERSONAL).order_by("pk").first(),
        "template_id": PermissionTemplate.objects.order_by("pk").first(),
        "pk": Segment.objects.order_by("pk").first(),
        "job_id": ImportJob.objects.order_by("pk").first(),
        "key": next(iter(TEMPLATES)),
    }
    custom_views = [
        ("permissions_group_matrix", ["group_id"]),
        ("permissions_template_apply", ["template_id"]),
        ("tagging_segment_customers", ["pk"]),
        ("customers_customer_import", []),
        ("customers_customer_import_job", ["job_id"]),
        ("customers_customer_export", []),
        ("rules_rule_templates", []),
        ("rules_rule_template", ["key"]),
    ]
    for name, params in custom_views if custom else []:
        values = [arguments[p] for p in params]
        if any(v is None for v in values):
            continue
        try:
            urls.append(reverse(f"admin:{name}", args=[getattr(v, "pk", v) for v in values]))
        except NoReverseMatch:
            continue
    return urls


# django-celery-beat's pages (superusers only) are checked for answering, not for English: some
# of its labels are not marked for translation upstream (``verbose_name='Task Name'``).
# django-axes's pages likewise: its log entries are named in English ("Access Log for admin @ …").
UPSTREAM_ONLY = ("/admin/django_celery_beat/", "/admin/axes/")
LINK = re.compile(r'href="(/admin/[^"#]*)"')
NOT_PAGES = ("/logout/", ".csv", "/export/", "/template/", "/rejected")
MAX_PAGES = 400


def crawl(client, start: list[str], check: Callable[[str], list[str]]) -> tuple[dict, dict]:
    """Visit ``start`` and every admin link found on the pages (one URL per path), in zh-hans.
    Returns ({url: status} of pages that did not answer 200, {url: what ``check(html)`` found})."""
    queue, seen_paths = list(start), set[str]()
    broken: dict[str, int] = {}
    leftovers: dict[str, list[str]] = {}
    while queue and len(seen_paths) < MAX_PAGES:
        url = queue.pop(0)
        path = re.sub(r"/\d+/", "/N/", url.split("?")[0])  # one page per kind of page
        if path in seen_paths or any(part in url for part in NOT_PAGES):
            continue
        seen_paths.add(path)
        response = client.get(url, headers={"accept-language": "zh-hans"}, follow=True)
        if response.status_code != 200:
            broken[url] = response.status_code
            continue
        if "html" not in response.headers.get("Content-Type", ""):
            continue
        html = response.content.decode()
        runs = check(html)
        if runs and not path.startswith(UPSTREAM_ONLY):
            leftovers[url] = sorted(set(runs))
        queue.extend(u.replace("&amp;", "&") for u in LINK.findall(html))
    return broken, leftovers
