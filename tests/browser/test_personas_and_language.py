"""Three demo personas log in and each sees their own admin; the header switches language."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_three_personas_see_their_own_admin(browser):
    browser.login("admin")
    home = browser.text()
    assert "TagDesk 客户标签" in home and "Django" not in home
    assert "自动标签规则" in home and "部门授权" in home
    browser.logout()

    browser.login("sales_wang")
    home = browser.text()
    assert "客户" in home and "部门授权" not in home and "自动标签规则" not in home
    browser.go("/admin/tagging/taggroup/")
    groups = browser.text("#result_list")
    assert "意向" in groups and "付款方式" not in groups
    browser.logout()

    browser.login("finance_sun")
    browser.go("/admin/customers/customer/")
    rows = browser.all("#result_list tbody tr")
    assert rows, "财务部 sees the sales customers it bills"
    browser.go("/admin/tagging/taggroup/")
    groups = browser.text("#result_list")
    assert "付款方式" in groups and "消费等级" in groups and "意向" not in groups
    # what finance may not use is not offered: no matrix link, no 403 on a click
    browser.click("#result_list tbody tr a")
    assert "部门权限矩阵" not in browser.text()


def test_switch_language_and_back(browser):
    browser.login("sales_wang")
    browser.go("/admin/customers/customer/")
    assert "注销" in browser.text("#user-tools")
    browser.click('#td-language button[value="en"]')
    # (#user-tools is upper-cased by the admin's CSS; Selenium reads the rendered text)
    browser.wait_for(lambda: "LOG OUT" in browser.text("#user-tools").upper(), "English")
    assert browser.driver.current_url.endswith("/admin/customers/customer/")  # same page
    assert "Select customer to change" in browser.text("#content")
    browser.go("/admin/")  # the choice sticks
    assert "LOG OUT" in browser.text("#user-tools").upper()
    browser.click('#td-language button[value="zh-hans"]')
    browser.wait_for(lambda: "注销" in browser.text("#user-tools"), "the Chinese page")
