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
from django.urls import reverse
from django.utils import translation

from tests.admin.pages import admin_pages, crawl
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
    "HTTP",
    "CRM",
    "HMAC",
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
NUMBER_UNIT = re.compile(r"(?<![A-Za-z0-9_#])\d+(?:\.\d+)?[ \u00a0]*([a-z]{2,})(?![A-Za-z0-9_*])")
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
    broken, leftovers = crawl(client, start, lambda html: english_runs(html, allowed))
    assert not broken, broken  # a link the user cannot use is not shown
    assert not leftovers, leftovers


def test_detector_finds_english_and_ignores_code_and_names():
    html = (
        "<p>共 3 位客户 · Created by: 王</p><script>var a = 'not visible';</script>"
        '<input type="submit" value="Save and continue"><code>wm ab</code>'
        "<p>TagDesk WeCom 标签</p><span title='Select all'>全选</span>"
    )
    assert english_runs(html, ALLOWED) == ["Created by", "Save and continue", "Select all"]
