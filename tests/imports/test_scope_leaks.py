"""Import rows naming customers outside the importer's scope, and customers shared with the
importer read-only (issue 11 items 1 and 5): no error is an oracle for who holds an identifier,
and a view share never lets an import change a customer."""

from __future__ import annotations

import pytest

from customers.models import Customer
from permissions import services as grants
from tagging.models import TagAssignment
from tests.factories import CustomerFactory
from tests.imports.conftest import run

pytestmark = pytest.mark.django_db
HEADER = "external_userid,phone,name,tags\n"


def errors(report):
    return [(e.line, e.column, e.code, e.message) for e in report.errors]


@pytest.mark.parametrize("dry_run", [False, True])
def test_phone_of_an_invisible_customer_is_the_same_conflict_as_a_visible_one(
    sales_importer, departments, dry_run
):
    CustomerFactory(
        external_userid="wmSECRET", phone="+8613800138000", department=departments["财务部"]
    )
    CustomerFactory(
        external_userid="wmMINE", phone="+8613800138001", department=departments["销售部"]
    )
    hidden = run(HEADER + "wmNEW1,13800138000,张三,\n", sales_importer, dry_run=dry_run)
    visible = run(HEADER + "wmNEW2,13800138001,李四,\n", sales_importer, dry_run=dry_run)
    assert (
        errors(hidden)
        == errors(visible)
        == [(2, "phone", "identifier_conflict", "This phone belongs to another customer.")]
    )
    text = repr(hidden.errors) + repr(hidden.rejected)
    assert "wmSECRET" not in text
    assert "wmMINE" not in repr(visible.errors)
    assert Customer.objects.count() == 2


def test_phone_only_invisible_customer_is_refused_without_a_hint(sales_importer, departments):
    CustomerFactory(external_userid=None, phone="+8613800138000", department=departments["财务部"])
    report = run(HEADER + "wmNEW,13800138000,张三,意向:高\n", sales_importer)
    assert errors(report) == [
        (2, "phone", "identifier_conflict", "This phone belongs to another customer.")
    ]
    # the invisible customer did not gain the external userid nor the tag
    assert Customer.objects.get().external_userid is None
    assert TagAssignment.objects.count() == 0


def test_external_userid_of_an_invisible_customer_names_no_scope(sales_importer, departments):
    CustomerFactory(external_userid="wmF", department=departments["财务部"])
    report = run(HEADER + "wmF,,改名,\n", sales_importer)
    assert errors(report) == [
        (
            2,
            "external_userid",
            "identifier_conflict",
            "This external userid belongs to another customer.",
        )
    ]
    assert "outside" not in report.errors[0].message


def test_view_share_is_read_only_for_imports(sales_importer, departments, superuser):
    grants.share_customers(
        departments["财务部"], with_department=departments["销售部"], actor=superuser
    )
    customer = CustomerFactory(
        external_userid="wmF", name="财务客户", department=departments["财务部"]
    )
    report = run(HEADER + "wmF,,改名,意向:高\n", sales_importer)
    assert [(e.code, e.column) for e in report.errors] == [("permission_denied", "external_userid")]
    customer.refresh_from_db()
    assert customer.name == "财务客户" and TagAssignment.objects.count() == 0


def test_edit_share_lets_the_import_change_the_customer(sales_importer, departments, superuser):
    grants.share_customers(
        departments["财务部"],
        with_department=departments["销售部"],
        actor=superuser,
        level=grants.ShareLevel.EDIT,
    )
    customer = CustomerFactory(
        external_userid="wmF", name="财务客户", department=departments["财务部"]
    )
    report = run(HEADER + "wmF,,改名,意向:高\n", sales_importer)
    assert not report.errors
    customer.refresh_from_db()
    assert customer.name == "改名" and TagAssignment.objects.filter(customer=customer).count() == 1
