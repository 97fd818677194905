"""Every admin page, rendered in zh-hans, shows no untranslated English (issue 13 §3).

The pages come from ``admin.site``'s registry (changelist, add, change, history and delete
confirmation of every registered model, each model admin's own URLs) plus the site's own
views, rendered over the demo data set as the superuser and as a sales operator. Visible text
is the page's text nodes (not scripts, styles, code or the rules' JSON) plus the attributes a
user reads (``title``, ``placeholder``, ``alt``, ``aria-label``, button values). A run of two or
more English words in it is a leftover, unless it is one of the product names and codes below.
"""

from __future__ import annotations

import re
import zoneinfo
from html.parser import HTMLParser

import pytest
from django.contrib import admin
from django.urls import NoReverseMatch, reverse
from django.utils import translation

from tests.seeded import seeded_demo

pytestmark = pytest.mark.django_db

_seeded = seeded_demo(30, "--events-per-customer", "4")

# Product names, file formats and codes that stay as they are in Chinese text.
ALLOWED = {
    "TagDesk",
    "WeCom",
    "RFM",
    "CSV",
    "XLSX",
    "Excel",
    "JSON",
    "API",
    "UTF-8",
    "BOM",
    "GB18030",
    "VIP",
    "ID",
    "English",
    "E.164",
    "Celery",
    "Redis",
    "SQL",
    "URL",
    "OK",
    "GBK",
    "UTF",
    # the segment expression language's keywords
    "AND",
    "OR",
    "NOT",
}
TIME_ZONE_WORDS = {
    word for zone in zoneinfo.available_timezones() for word in re.split(r"[/_\-]", zone)
}
SKIPPED_TAGS = {"script", "style", "code", "pre", "textarea", "noscript"}
READ_ATTRIBUTES = {"title", "placeholder", "alt", "aria-label"}
ENGLISH_RUN = re.compile(r"[A-Za-z][A-Za-z'’]*(?:[ \t\u00a0]+[A-Za-z][A-Za-z'’]*)+")
# "30 days", "RULE": a number with an English unit, a shouted English word.
NUMBER_UNIT = re.compile(r"(?<![A-Za-z0-9_#])\d+(?:\.\d+)?[ \u00a0]*([a-z]{2,})(?![A-Za-z0-9_])")
SHOUTED = re.compile(r"(?<![A-Za-z0-9_#])([A-Z]{3,})(?![A-Za-z0-9_])")


class _VisibleText(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in SKIPPED_TAGS:
            self._skip += 1
        attributes = dict(attrs)
        for name in READ_ATTRIBUTES:
            if attributes.get(name):
                self.chunks.append(attributes[name])
        if tag == "input" and attributes.get("type") in ("submit", "button", "reset"):
            self.chunks.append(attributes.get("value") or "")

    def handle_endtag(self, tag):
        if tag in SKIPPED_TAGS and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.chunks.append(data)


def english_runs(html: str, allowed: set[str]) -> list[str]:
    parser = _VisibleText()
    parser.feed(html)
    found = []
    for chunk in parser.chunks:
        for run in ENGLISH_RUN.findall(chunk):
            words = [w for w in re.split(r"[ \t\u00a0]+", run) if w not in allowed]
            if len(words) >= 2:
                found.append(run)
        for pattern in (NUMBER_UNIT, SHOUTED):
            for match in pattern.finditer(chunk):
                if match.group(1) not in allowed:
                    found.append(match.group(0))
    return found


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


@pytest.fixture
def zh(settings):
    settings.LANGUAGE_CODE = "zh-hans"
    with translation.override("zh-hans"):
        yield


@pytest.fixture
def import_job(_seeded, db, client, settings, tmp_path):
    """One finished dry-run import with errors, so the job page has every part to show."""
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.MEDIA_ROOT = tmp_path
    client.force_login(get_user_model().objects.get(username="admin"))
    data = "external_userid,phone,name,tags\r\nwm_ok_1,,新客户,意向:高\r\n错误的编号!,,,\r\n"
    client.post(
        reverse("admin:customers_customer_import"),
        {"file": SimpleUploadedFile("客户.csv", data.encode()), "mode": "customers"},
    )
    client.logout()


# django-celery-beat's pages (superusers only) are checked for answering, not for English: some
# of its labels are not marked for translation upstream (``verbose_name='Task Name'``).
UPSTREAM_ONLY = ("/admin/django_celery_beat/",)
LINK = re.compile(r'href="(/admin/[^"#]*)"')
NOT_PAGES = ("/logout/", ".csv", "/export/", "/template/", "/rejected")
MAX_PAGES = 400


def crawl(client, start: list[str], allowed: set[str]) -> tuple[dict, dict]:
    """Visit ``start`` and every admin link found on the pages (one URL per path), in zh-hans.
    Returns ({url: status} of pages that did not answer 200, {url: English runs})."""
    queue, seen_paths = list(start), set()
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
        runs = english_runs(html, allowed)
        if runs and not path.startswith(UPSTREAM_ONLY):
            leftovers[url] = sorted(set(runs))
        queue.extend(u.replace("&amp;", "&") for u in LINK.findall(html))
    return broken, leftovers


@pytest.mark.parametrize("username", ["admin", "tagadmin", "sales_wang", "finance_sun"])
def test_every_admin_page_is_chinese_and_every_link_opens(
    _seeded, zh, client, username, import_job
):
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.get(username=username)
    client.force_login(user)
    allowed = (
        ALLOWED | TIME_ZONE_WORDS | set(get_user_model().objects.values_list("username", flat=True))
    )  # login names are codes; time-zone names are data
    start = admin_pages(user, custom=user.is_superuser)
    if user.is_superuser:
        assert len(start) > 60
    broken, leftovers = crawl(client, start, allowed)
    assert not broken, broken  # a link the user cannot use is not shown
    assert not leftovers, leftovers


def test_detector_finds_english_and_ignores_code_and_names():
    html = (
        "<p>共 3 位客户 · Created by: 王</p><script>var a = 'not visible';</script>"
        '<input type="submit" value="Save and continue"><code>wm ab</code>'
        "<p>TagDesk WeCom 标签</p><span title='Select all'>全选</span>"
    )
    assert english_runs(html, ALLOWED) == ["Created by", "Save and continue", "Select all"]
