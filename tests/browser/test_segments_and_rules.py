"""Build a segment in the customer list's filter; create a rule from a template and preview it."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model

from permissions import policy
from rules.models import Rule
from tagging.models import Tag, TagAssignment

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_build_a_segment(browser):
    sales = get_user_model().objects.get(username="sales_wang")
    high, medium = (Tag.objects.get(group__name="意向", name=n) for n in ("高", "中"))
    browser.login("sales_wang")
    browser.go("/admin/customers/customer/")
    browser.select("form.segment-filter select[name=seg_any]", values=[high.pk, medium.pk])
    browser.click("form.segment-filter input[type=submit]")
    count_text = browser.text(".segment-live-count")
    expected = (
        policy.visible_customers(sales)
        .filter(pk__in=TagAssignment.objects.filter(tag__in=[high, medium]).values("customer_id"))
        .count()
    )
    assert re.search(rf"\b{expected} 位客户符合", count_text), count_text
    assert len(browser.all("#result_list tbody tr")) == min(expected, 50)


def test_rule_from_a_template_then_preview(browser):
    browser.login("tagadmin")
    browser.go("/admin/rules/rule/")
    browser.go("/admin/rules/rule/from-template/")
    link = next(a for a in browser.all(".rule-templates a") if "推荐能力" in a.text)
    link.click()
    browser.select("#id_rule-tag", texts=["价值分层:推荐达人"])
    name = browser.find("#id_rule-name")
    name.clear()
    name.send_keys("一年内邀请至少3人")
    browser.click(".submit-row input[type=submit]")
    browser.wait_for(lambda: "/change/" in browser.driver.current_url, "the rule editor")
    rule = Rule.objects.get(name="一年内邀请至少3人")
    assert rule.tag.name == "推荐达人"
    browser.click("#rule-preview-button")
    result = browser.wait_for(
        lambda: (
            "匹配数" in browser.text("#rule-preview-result")
            and browser.text("#rule-preview-result")
        ),
        "the preview",
    )
    assert re.search(r"匹配数: \d+", result), result
