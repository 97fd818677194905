"""The customer list at 1400 px (issue 13 §10): no column clipped, names on one line, rows of
bounded height even for a customer with many tags."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from customers.models import Customer
from tagging.models import AssignmentSource, Tag, TagStatus
from tagging.services import assign_tags

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

MEASURE = """
const results = document.querySelector('#changelist .results');
const rows = [...document.querySelectorAll('#result_list tbody tr')];
const names = [...document.querySelectorAll('#result_list th.field-__str__ a')];
return {
  overflow: results.scrollWidth - results.clientWidth,
  tallest: Math.max(...rows.map(r => r.getBoundingClientRect().height)),
  nameLines: Math.max(...names.map(a => a.getClientRects().length)),
  width: window.innerWidth,
};
"""


def test_customer_list_fits_1400_pixels(browser):
    admin = get_user_model().objects.get(username="admin")
    busy = Customer.objects.order_by("pk").first()
    many = list(
        Tag.objects.filter(
            group__kind="corporate", group__exclusive=False, status=TagStatus.ACTIVE
        )[:20]
    )
    assign_tags([busy], many, actor=admin, source=AssignmentSource.MANUAL, replace_exclusive=True)
    Customer.objects.filter(pk=busy.pk).update(name="欧阳诗涵")  # a long name
    browser.login("admin")
    browser.driver.set_window_size(1400, 1000)
    browser.go("/admin/customers/customer/")
    measured = browser.driver.execute_script(MEASURE)
    assert measured["overflow"] <= 1, measured  # every column visible, nothing cut off
    assert measured["nameLines"] == 1, measured  # no name wrapping a character a line
    assert measured["tallest"] < 110, measured  # six chips at most, then "+N"
    assert "另有" in browser.text("#result_list")
