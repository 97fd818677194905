"""The customer changelist finds customers by name, external_userid and phone in any spelling."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import CustomerFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def known(db):
    target = CustomerFactory(name="张三", phone="+8613800138000", external_userid="wmZhang3")
    CustomerFactory(name="李四", phone="+8613900139000", external_userid="wmLi4")
    return target


def found(client, term):
    response = client.get(reverse("admin:customers_customer_changelist"), {"q": term})
    assert response.status_code == 200
    return [c.pk for c in response.context["cl"].result_list]


@pytest.mark.parametrize(
    "term",
    [
        "138 0013 8000",
        "+86 138-0013-8000",
        "8613800138000",
        "13800138000",
        "１３８００１３８０００",
        "(138) 0013.8000",
        "张三",
        "wmZhang3",
        "0013 8000",
    ],
)
def test_search_spellings(root_client, known, term):
    assert found(root_client, term) == [known.pk]


def test_nothing_found(root_client, known):
    assert found(root_client, "13700000000") == []
    assert found(root_client, "wmzhang3") == []  # external_userid is case-sensitive


def test_counts_are_capped_on_large_lists(root_client, settings, known):
    from customers.admin import CappedCountPaginator

    CappedCountPaginator.cap, previous = 1, CappedCountPaginator.cap
    try:
        response = root_client.get(reverse("admin:customers_customer_changelist"))
    finally:
        CappedCountPaginator.cap = previous
    assert response.context["cl"].result_count == 2
    assert "more than 1" in response.content.decode()
