"""Characters that are digits to ``str.isdigit`` but not to ``int`` (superscripts: "²") or not
to a URL's ``<int:…>`` (other scripts' digits: "١") in the admin's ids, filters and page
numbers: a 4xx page or an ignored parameter, never a 500."""

from __future__ import annotations

import pytest
from django.test import Client

from tagging import accuracy, services
from tests.conftest import tag
from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db

ODD = ["²", "¹²", "١٢", "１２", "9" * 30]

PAGES = [
    "/admin/customers/customer/?tag={v}",
    "/admin/tagging/tag/?group={v}",
    "/admin/tagging/auditentry/?p={v}",
    "/admin/customers/customerevent/?p={v}",
    "/admin/wecom/wecomheldchange/?group={v}",
    "/admin/tagging/accuracycheck/{v}/change/",
    "/admin/tagging/segment/{v}/change/",
]


@pytest.fixture
def root(superuser):
    client = Client(raise_request_exception=False)
    client.force_login(superuser)
    return client


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("value", ODD)
def test_odd_digits_never_answer_500(root, page, value):
    response = root.get(page.format(v=value))
    assert response.status_code < 500, (page, value)


@pytest.fixture
def check(superuser, intent_group):
    people = CustomerFactory.create_batch(10)
    services.assign_tags(people, [tag(intent_group, "高")], actor=superuser, source="manual")
    return accuracy.start_check(
        name="抽检", group=intent_group, percent=50, seed=7, actor=superuser
    )


@pytest.mark.parametrize("value", ODD)
def test_odd_digits_in_an_accuracy_review_post_never_answer_500(root, check, value):
    item = check.items.order_by("position").first()
    response = root.post(
        f"/admin/tagging/accuracycheck/{check.pk}/change/",
        {"item": str(item.pk), f"tag_{value}": "wrong", "missing": value},
    )
    assert response.status_code < 500
    response = root.post(f"/admin/tagging/accuracycheck/{check.pk}/change/", {"item": value})
    assert response.status_code < 500
