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
    assert "修改密码" in page  # Django's own catalogue
    for ours in ["自动标签规则", "标签组", "客户"]:  # TagDesk's catalogue
        assert ours in page, ours
    assert "Change password" not in page


def test_browser_language_switches_to_english(admin_client_zh):
    response = admin_client_zh.get("/admin/", headers={"accept-language": "en-US,en;q=0.9"})
    page = response.content.decode()
    assert response.headers["Content-Language"] == "en"
    assert "Change password" in page
    assert "Tag groups" in page and "Auto-tag rules" in page
    assert "修改密码" not in page


def test_language_switch_view_sets_english_then_back(admin_client_zh):
    response = admin_client_zh.post("/i18n/setlang/", {"language": "en", "next": "/admin/"})
    assert response.status_code == 302
    assert "Change password" in admin_client_zh.get("/admin/").content.decode()
    admin_client_zh.post("/i18n/setlang/", {"language": "zh-hans", "next": "/admin/"})
    assert "修改密码" in admin_client_zh.get("/admin/").content.decode()


def test_header_has_tagdesk_branding_and_a_language_switch(admin_client_zh):
    page = admin_client_zh.get("/admin/tagging/tag/").content.decode()
    assert "Django" not in page.split("<body", 1)[1].split("</header>")[0]
    assert "<title>选择标签查看 | TagDesk 客户标签管理</title>" in page
    assert '<a href="/admin/">TagDesk 客户标签</a>' in page
    assert '<form id="td-language"' in page and 'action="/i18n/setlang/"' in page
    assert 'name="next" value="/admin/tagging/tag/"' in page
    # the current language is shown, not offered; the other one is a button
    assert (
        'value="zh-hans" lang="zh-hans" class="td-language-current" aria-current="true" disabled'
        in page
    )
    assert '<button type="submit" name="language" value="en" lang="en">English</button>' in page
    english = admin_client_zh.get("/admin/", headers={"accept-language": "en"}).content.decode()
    assert "TagDesk home | TagDesk admin" in english and "TagDesk home" in english


def test_login_page_offers_the_language_switch(client):
    page = client.get("/admin/login/").content.decode()
    assert '<form id="td-language"' in page and "TagDesk 客户标签" in page


def test_permission_denied_page_is_chinese(client, sales_operator):
    client.force_login(sales_operator)
    response = client.get("/admin/permissions/departmentgrant/")
    assert response.status_code == 403
    page = response.content.decode()
    assert "您没有权限打开此页面。" in page and "返回 TagDesk 首页" in page
    assert "Forbidden" not in page


def test_durations_read_like_people_say_them():
    import datetime as dt

    from tagging.templatetags.tagdesk import duration

    assert duration(dt.timedelta(seconds=0.14)) == "0.14 秒"
    assert duration(dt.timedelta(seconds=-1)) == "0.00 秒"
    assert duration(9.994) == "9.99 秒"
    assert duration(10) == "10 秒"
    assert duration(59.9) == "59 秒"
    assert duration(60) == "1 分 0 秒"
    assert duration(3599) == "59 分 59 秒"
    assert duration(3600) == "1 小时 0 分"
    assert duration(None) == ""
    with translation.override("en"):
        assert duration(125) == "2 min 5 s"


def test_words_with_two_meanings_have_two_translations():
    from customers.models import Customer
    from permissions.models import CustomerShare
    from rules.models import RuleRun
    from tagging.models import Segment, Tag, TagAssignment, TagGroup

    def label(model, field):
        return str(model._meta.get_field(field).verbose_name)

    assert label(RuleRun, "added") == "新增"  # a count
    assert label(TagAssignment, "created_at") == "添加时间"  # a time
    assert label(Segment, "shared") == "共享"  # a yes/no box
    assert label(CustomerShare, "created_at") == "共享时间"
    assert label(Customer, "name") == "姓名"  # a person's name
    for model in (Tag, TagGroup, Segment):
        assert label(model, "name") == "名称", model


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
