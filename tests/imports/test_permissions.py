"""Import permissions through permissions.policy (docs/permissions.md,
docs/import-export.md#tags-cell)."""

from __future__ import annotations

import pytest

from customers.models import Customer
from tagging.models import TagAssignment, TagKind
from tests.factories import CustomerFactory, TagFactory, TagGroupFactory
from tests.imports.conftest import codes, run

pytestmark = pytest.mark.django_db
HEADER = "external_userid,tags\n"


def test_edit_level_group_is_importable(sales_importer, departments):
    report = run(HEADER + "wm1,意向:高\n", sales_importer)
    assert not report.errors
    # the new customer joins the importer's department, so they keep seeing it
    assert Customer.objects.get().department == departments["销售部"]


def test_invisible_group_is_reported_exactly_like_an_unknown_group(sales_importer, level_group):
    invisible = run(HEADER + "wm1,客户等级:VIP\n", sales_importer)
    unknown = run(HEADER + "wm1,客户等级X:VIP\n", sales_importer)
    assert (
        [e.code for e in invisible.errors]
        == [e.code for e in unknown.errors]
        == ["unknown_tag_group"]
    )
    assert invisible.errors[0].message.replace("客户等级", "") == unknown.errors[0].message.replace(
        "客户等级X", ""
    )


def test_invisible_group_as_a_wide_column_is_reported_like_an_unknown_one(
    sales_importer, level_group
):
    report = run("external_userid,客户等级\nwm1,VIP\n", sales_importer)
    assert [(e.line, e.column, e.code) for e in report.errors] == [
        (1, "客户等级", "unknown_tag_group")
    ]


def test_view_only_group_is_permission_denied(sales_importer, source_group):
    report = run(HEADER + "wm1,客户来源:官网\n", sales_importer)
    assert codes(report) == [(2, "permission_denied")]


def test_someone_elses_personal_group_is_unknown(sales_importer, outsider):
    group = TagGroupFactory(name="私人", kind=TagKind.PERSONAL, owner=outsider)
    TagFactory(group=group, name="重点")
    report = run(HEADER + "wm1,私人:重点\n", sales_importer)
    assert codes(report) == [(2, "unknown_tag_group")]


def test_own_personal_group_is_importable(sales_importer):
    group = TagGroupFactory(name="我的", kind=TagKind.PERSONAL, owner=sales_importer)
    TagFactory(group=group, name="重点")
    report = run(HEADER + "wm1,我的:重点\n", sales_importer)
    assert not report.errors and TagAssignment.objects.count() == 1


def test_customer_outside_the_importers_scope_is_not_touched(sales_importer, departments):
    CustomerFactory(external_userid="wmF", name="财务客户", department=departments["财务部"])
    report = run("external_userid,name,tags\nwmF,改名,意向:高\n", sales_importer)
    # Refused like an identifier held by another customer (see tests/imports/test_scope_leaks.py).
    assert codes(report) == [(2, "identifier_conflict")]
    assert Customer.objects.get().name == "财务客户" and TagAssignment.objects.count() == 0


def test_outsider_sees_no_group(outsider, intent_group):
    report = run(HEADER + "wm1,意向:高\n", outsider)
    assert codes(report) == [(2, "unknown_tag_group")]
