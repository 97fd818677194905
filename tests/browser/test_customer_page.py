"""Tag one customer from its own change page (the picker) and untag it again."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from permissions import policy
from tagging.models import AssignmentSource, Tag, TagAssignment, TagStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_tag_and_untag_from_the_customer_page(browser):
    sales = get_user_model().objects.get(username="sales_wang")
    customer = policy.editable_customers(sales).order_by("pk").first()
    tag = Tag.objects.filter(group__name="职位", status=TagStatus.ACTIVE).order_by("pk").first()
    TagAssignment.objects.filter(customer=customer, tag=tag).delete()
    box = f"#td-tag-form input[name=group_{tag.group_id}][value='{tag.pk}']"

    browser.login("sales_wang")
    browser.go(f"/admin/customers/customer/{customer.pk}/change/")
    assert not browser.find(box).is_selected()
    browser.click(box)
    browser.find("#td-tag-form input[name=reason]").send_keys("电话回访")
    browser.submit("#td-tag-form .submit-row input[type=submit]")
    browser.wait_for(lambda: "已添加 1 个标签" in browser.messages(), "the success message")
    assignment = TagAssignment.objects.get(customer=customer, tag=tag)
    assert assignment.source == AssignmentSource.MANUAL and assignment.actor_id == sales.pk
    assert tag.name in browser.text("#td-current-tags")

    assert browser.find(box).is_selected()  # the picker shows the customer as it is now
    browser.click(box)
    browser.submit("#td-tag-form .submit-row input[type=submit]")
    browser.wait_for(lambda: "已移除 1 个标签" in browser.messages(), "the removal message")
    assert not TagAssignment.objects.filter(customer=customer, tag=tag).exists()
