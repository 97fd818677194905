"""Customer identity while importing (docs/import-export.md#identity)."""

from __future__ import annotations

import pytest

from customers.models import Customer
from tagging.models import TagAssignment
from tests.factories import CustomerFactory
from tests.imports.conftest import codes, run

pytestmark = pytest.mark.django_db
HEADER = "external_userid,phone,name,tags\n"


def test_same_customer_twice_is_merged(importer, intent_group, source_group):
    report = run(
        HEADER + "wm1,,张三,意向:高\nwm1,13800138000,,客户来源:官网;意向:高\nwm1,,张三丰,\n",
        importer,
    )
    assert not report.errors
    customer = Customer.objects.get()
    assert (customer.name, customer.phone) == ("张三丰", "+8613800138000")  # last non-empty name
    assert sorted(customer.assignments.values_list("tag__name", flat=True)) == ["官网", "高"]
    assert (report.customers_created, report.assignments_added) == (1, 2)


def test_phone_only_customer_gains_its_external_userid_and_keeps_tags(importer, intent_group):
    run(HEADER + ",13800138000,张三,意向:高\n", importer)
    report = run(HEADER + "wmX,+86 138-0013-8000,,\n", importer)
    assert not report.errors and report.customers_updated == 1 and report.customers_created == 0
    customer = Customer.objects.get()
    assert customer.external_userid == "wmX"
    assert customer.assignments.count() == 1


def test_phone_only_row_resolves_to_customer_known_by_external_userid(importer, intent_group):
    CustomerFactory(external_userid="wmA", phone="+8613800138000", name="张三")
    report = run(HEADER + ",8613800138000,,意向:中\n", importer)
    assert not report.errors and report.customers_created == 0
    assert TagAssignment.objects.get().customer.external_userid == "wmA"


def test_external_userids_differing_in_case_are_different_customers(importer):
    report = run(HEADER + "wmAbc,,一,\nwmabc,,二,\n", importer)
    assert not report.errors and report.customers_created == 2
    assert set(Customer.objects.values_list("external_userid", flat=True)) == {"wmAbc", "wmabc"}


@pytest.mark.parametrize("dry_run", [True, False])
def test_identifier_conflict_caused_by_an_earlier_row(importer, dry_run):
    report = run(HEADER + "wmA,13800138000,甲,\nwmB,13800138000,乙,\n", importer, dry_run=dry_run)
    assert codes(report) == [(3, "identifier_conflict")]
    assert report.errors[0].column == "phone"
    assert Customer.objects.count() == 0


def test_a_rejected_row_does_not_count_as_an_earlier_good_row(importer):
    report = run(
        HEADER + "wm 1,13800138000,坏,\nwmB,13800138000,乙,\n", importer, skip_invalid=True
    )
    assert codes(report) == [(2, "invalid_external_userid")]
    assert Customer.objects.get().external_userid == "wmB"
