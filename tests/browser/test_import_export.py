"""Import a file with errors, then confirm the good rows; export and re-import unchanged."""

from __future__ import annotations

import pytest

from customers.models import Customer
from tagging.models import TagAssignment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FILE = (
    "客户ID,手机号,姓名,标签\r\n"
    "wmBrowser01,13800138101,浏览器一号,意向:高\r\n"
    "wmBrowser02,13800138102,浏览器二号,意向:中;客户来源:官网\r\n"
    "坏的编号!,13800138103,错误行,意向:高\r\n"
)


def upload(browser, path, *, skip_invalid: bool) -> None:
    browser.go("/admin/customers/customer/import/")
    browser.find("#id_file").send_keys(str(path))
    if skip_invalid:
        browser.click("#id_skip_invalid")
    browser.submit(".submit-row input[type=submit]")
    browser.wait_for(
        lambda: browser.find("#import-status").get_attribute("data-status") in ("done", "failed"),
        "the dry run",
    )


def test_import_with_errors_then_confirm(browser, tmp_path):
    path = tmp_path / "客户名单.csv"
    path.write_text(FILE, encoding="utf-8-sig")
    browser.login("admin")

    upload(browser, path, skip_invalid=False)  # strict: the error, nothing to confirm
    errors = browser.text("#import-errors")
    assert "invalid_external_userid" in errors and "4" in errors
    assert not browser.all("input[name=job]")
    assert "秒" in browser.text("#import-status")  # elapsed time in words

    upload(browser, path, skip_invalid=True)
    assert not Customer.objects.filter(external_userid__startswith="wmBrowser").exists()
    browser.submit(".submit-row input[type=submit]")  # 导入有效行，跳过无效行
    browser.wait_for(
        lambda: browser.find("#import-status").get_attribute("data-status") == "done",
        "the import",
    )
    assert Customer.objects.filter(external_userid__startswith="wmBrowser").count() == 2
    assert TagAssignment.objects.filter(customer__external_userid="wmBrowser02").count() == 2


def test_export_then_reimport_changes_nothing(browser):
    browser.login("sales_wang")
    browser.go("/admin/customers/customer/export/")
    browser.click("#content-main li a")  # CSV
    exported = browser.downloaded(r"\.csv$")
    text = exported.read_text(encoding="utf-8-sig")
    assert text.startswith("external_userid,phone,name,tags")
    assert "'+86" not in text  # mainland mobiles in the national form
    before = sorted(TagAssignment.objects.values_list("customer_id", "tag_id"))
    upload(browser, exported, skip_invalid=False)
    status = browser.text("#content-main")
    assert not browser.all("#import-errors")
    rows = len(text.strip().splitlines()) - 1
    assert f"行数\n{rows}" in status.replace(" ", "\n") or str(rows) in status
    table = {
        row.find_element("css selector", "th").text: row.find_element("css selector", "td").text
        for row in browser.all("#content-main table tr")
    }
    assert table["将被添加的标签"] == "0" and table["将被修改的客户"] == "0"
    assert table["新客户（将被创建）"] == "0" and table["无效"] == "0"
    assert sorted(TagAssignment.objects.values_list("customer_id", "tag_id")) == before
