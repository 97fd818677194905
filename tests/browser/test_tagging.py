"""Bulk add and remove tags from the customer list; propose a tag and approve it."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from permissions import policy
from tagging.models import Tag, TagAssignment, TagStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_bulk_add_then_remove_tags(browser):
    sales = get_user_model().objects.get(username="sales_wang")
    tag = Tag.objects.filter(group__name="职位", status=TagStatus.ACTIVE).order_by("pk").first()
    browser.login("sales_wang")
    browser.go("/admin/customers/customer/?o=1")
    ids = [
        int(box.get_attribute("value"))
        for box in browser.all("#result_list input.action-select")[:2]
    ]
    TagAssignment.objects.filter(customer_id__in=ids, tag=tag).delete()
    browser.run_action("add_tags", ids)
    browser.wait_for(lambda: "已选择 2 位客户" in browser.text("#content-main"), "the bulk page")
    browser.select("#id_tags", values=[tag.pk])
    browser.find("#id_reason").send_keys("展会名单")
    browser.click(".submit-row input[type=submit]")
    browser.wait_for(lambda: "已为" in browser.messages(), "the success message")
    assert set(TagAssignment.objects.filter(tag=tag).values_list("customer_id", flat=True)) >= set(
        ids
    )
    assert policy.visible_customers(sales).filter(pk__in=ids).count() == 2
    # the chips show on the list
    assert tag.name in browser.text("#result_list")

    browser.go("/admin/customers/customer/?o=1")
    browser.run_action("remove_tags", ids)
    browser.select("#id_tags", values=[tag.pk])
    browser.click(".submit-row input[type=submit]")
    browser.wait_for(lambda: "已从" in browser.messages(), "the removal message")
    assert not TagAssignment.objects.filter(customer_id__in=ids, tag=tag).exists()


def test_propose_then_approve(browser):
    browser.login("sales_chen")  # 华东销售组: creates 商品偏好 tags that need approval
    browser.go("/admin/tagging/tag/add/")
    browser.select("#id_group", texts=["商品偏好"])
    browser.find("#id_name").send_keys("露营装备")
    browser.click("input[name=_save]")
    browser.wait_for(lambda: "已提议“商品偏好:露营装备”" in browser.messages(), "one message")
    assert "成功" not in browser.messages()  # no "added successfully" beside it
    assert "/admin/permissions/tagproposal/" in browser.driver.current_url
    assert "露营装备" in browser.text("#result_list")
    tag = Tag.objects.get(name="露营装备")
    assert tag.status == TagStatus.PENDING
    browser.logout()

    browser.login("tagadmin")
    browser.go("/admin/permissions/tagproposal/")
    row = next(r for r in browser.all("#result_list tbody tr") if "露营装备" in r.text)
    row.find_element("css selector", "input.action-select").click()
    browser.select("select[name=action]", values=["approve"])
    browser.click("button[name=index]")
    browser.wait_for(lambda: "已批准 1 个标签" in browser.messages(), "the approval")
    tag.refresh_from_db()
    assert tag.status == TagStatus.ACTIVE and tag.reviewed_by.username == "tagadmin"
