"""Simplified Chinese by default, English on request (docs/README.md#languages-and-time-zone):
Django's own strings and ours."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings
from django.utils import translation

pytestmark = pytest.mark.django_db

LOCALE = Path(settings.BASE_DIR) / "locale" / "zh_Hans" / "LC_MESSAGES"


@pytest.fixture(autouse=True)
def _product_default_language(settings):
    """The suite runs in English (tests/conftest.py); these tests check the real default."""
    settings.LANGUAGE_CODE = "zh-hans"
    with translation.override("zh-hans"):
        yield


@pytest.fixture
def admin_client_zh(client, superuser):
    client.force_login(superuser)
    return client


def test_admin_index_is_chinese_by_default(admin_client_zh):
    response = admin_client_zh.get("/admin/")
    assert response.status_code == 200
    page = response.content.decode()
    assert response.headers["Content-Language"] == "zh-hans"
    assert "站点管理" in page  # Django's own catalogue
    for ours in ["自动标签规则", "标签组", "客户"]:  # TagDesk's catalogue
        assert ours in page, ours
    assert "Site administration" not in page


def test_browser_language_switches_to_english(admin_client_zh):
    response = admin_client_zh.get("/admin/", headers={"accept-language": "en-US,en;q=0.9"})
    page = response.content.decode()
    assert response.headers["Content-Language"] == "en"
    assert "Site administration" in page
    assert "Tag groups" in page and "Auto-tag rules" in page
    assert "站点管理" not in page


def test_language_switch_view_sets_english_then_back(admin_client_zh):
    response = admin_client_zh.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})
    assert response.status_code == 302
    assert "Site administration" in admin_client_zh.get("/admin/").content.decode()
    admin_client_zh.post("/i18n/setlang/", {"language": "zh-hans", "next": "/admin/"})
    assert "站点管理" in admin_client_zh.get("/admin/").content.decode()


def po_entries(path: Path) -> list[dict[str, str]]:
    """Entries of a .po file as {"msgid": ..., "msgstr": ... (plural forms joined), "flags"}."""
    entries: list[dict[str, str]] = []
    current: dict[str, str] = {}
    key = ""
    for line in path.read_text(encoding="utf-8").splitlines() + [""]:
        line = line.strip()
        if not line:
            if current:
                entries.append(current)
            current, key = {}, ""
        elif line.startswith("#,"):
            current["flags"] = line
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            current[key] += line[1:-1]
        else:
            keyword, _space, value = line.partition(" ")
            key = "msgstr" if keyword.startswith("msgstr") else keyword
            current[key] = current.get(key, "") + (
                "|" if key == "msgstr" and key in current else ""
            )
            current[key] += value[1:-1]
    return entries


def test_catalogue_is_compiled_and_complete():
    po, mo = LOCALE / "django.po", LOCALE / "django.mo"
    assert po.is_file() and mo.is_file()
    entries = [e for e in po_entries(po) if e.get("msgid")]
    assert len(entries) > 300
    missing = [
        e["msgid"]
        for e in entries
        if "fuzzy" in e.get("flags", "") or not e.get("msgstr", "").replace("|", "").strip()
    ]
    assert not missing, missing[:10]


def test_model_names_translate():
    from customers.models import Customer
    from tagging.models import Tag

    with translation.override("zh-hans"):
        assert str(Customer._meta.verbose_name) == "客户"
        assert str(Tag._meta.verbose_name) == "标签"
    with translation.override("en"):
        assert str(Customer._meta.verbose_name) == "customer"
