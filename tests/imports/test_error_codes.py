"""Every error code of docs/import-export.md#error-codes, with its line and column; nothing written
in strict mode."""

from __future__ import annotations

import pytest
from django.test import override_settings

from customers.models import Customer
from tagging import services
from tagging.models import TagAssignment
from tests.conftest import tag
from tests.factories import CustomerFactory
from tests.imports.conftest import codes, run

pytestmark = pytest.mark.django_db

HEADER = "external_userid,phone,name,tags\n"


def only_error(report):
    assert len(report.errors) == 1, report.errors
    return report.errors[0]


def test_wrong_field_count_is_a_row_error_not_a_file_error(importer, intent_group):
    report = run(HEADER + "wm1,13800138000,张三\nwm2,13800138001,李四,意向:高\n", importer)
    error = only_error(report)
    assert (error.line, error.column, error.code) == (2, None, "wrong_field_count")
    assert report.rows == 2 and report.valid == 1 and report.invalid == 1
    assert Customer.objects.count() == 0  # strict: nothing written


def test_missing_identifier(importer):
    error = only_error(run(HEADER + ",,无名氏,\n", importer))
    assert (error.line, error.code) == (2, "missing_identifier")


def test_invalid_external_userid(importer):
    error = only_error(run(HEADER + "wm 1!,,张三,\n", importer))
    assert (error.line, error.column, error.code) == (
        2,
        "external_userid",
        "invalid_external_userid",
    )


@pytest.mark.parametrize("phone", ["12345", "010-62345678", "abc"])
def test_invalid_phone_including_landlines(importer, phone):
    error = only_error(run(HEADER + f"wm1,{phone},张三,\n", importer))
    assert (error.line, error.column, error.code) == (2, "phone", "invalid_phone")


def test_identifier_conflict_against_the_database(importer):
    CustomerFactory(external_userid="wmA", phone="+8613800138000")
    error = only_error(run(HEADER + "wmB,138 0013 8000,张三,\n", importer))
    assert (error.line, error.column, error.code) == (2, "phone", "identifier_conflict")


@pytest.mark.parametrize(
    "cell",
    ["高", "意向:高:中", ":高", "意向:"],
    ids=["no-group", "two-colons", "no-group-name", "no-tag"],
)
def test_malformed_tag(importer, intent_group, cell):
    error = only_error(run(HEADER + f"wm1,,张三,{cell}\n", importer))
    assert (error.line, error.column, error.code) == (2, "tags", "malformed_tag")


def test_tag_name_too_long(importer, intent_group):
    error = only_error(run(HEADER + f"wm1,,张三,意向:{'长' * 31}\n", importer))
    assert (error.code, error.column) == ("tag_name_too_long", "tags")


def test_a_30_character_tag_name_is_read(importer, superuser, intent_group):
    long_name = services.create_tag(intent_group, "长" * 30, actor=superuser)
    report = run(HEADER + f"wm1,,张三,意向:{'长' * 30}\n", importer)
    assert report.errors == []
    assert TagAssignment.objects.filter(tag=long_name, customer__external_userid="wm1").exists()


@pytest.mark.parametrize("length, allowed", [(128, True), (129, False)])
def test_customer_name_length_boundary(importer, length, allowed):
    report = run(HEADER + f"wm1,,{'名' * length},\n", importer)
    if allowed:
        assert report.errors == []
        assert Customer.objects.get(external_userid="wm1").name == "名" * length
    else:
        error = only_error(report)
        assert (error.line, error.column, error.code) == (2, "name", "name_too_long")
        assert "at most 128" in error.message
        assert not Customer.objects.exists()


def test_unknown_tag_group_and_unknown_tag_never_created(importer, intent_group):
    report = run(HEADER + "wm1,,张三,没有的组:高;意向:没有的标签\n", importer)
    assert [e.code for e in report.errors] == ["unknown_tag_group", "unknown_tag"]
    assert intent_group.tags.count() == 4


def test_archived_tag_is_not_usable(importer, intent_group):
    services.archive_tag(tag(intent_group, "沉睡"), actor=importer)
    error = only_error(run(HEADER + "wm1,,张三,意向:沉睡\n", importer))
    assert error.code == "unknown_tag"


def test_rule_tag_not_assignable(importer, auto_group):
    error = only_error(run(HEADER + "wm1,,张三,自动:活跃\n", importer))
    assert (error.code, error.column) == ("rule_tag_not_assignable", "tags")


def test_exclusive_conflict_within_a_row(importer, intent_group):
    error = only_error(run(HEADER + "wm1,,张三,意向:高;意向:中\n", importer))
    assert error.code == "exclusive_conflict"


def test_exclusive_conflict_with_a_held_tag_import_never_removes(importer, intent_group):
    customer = CustomerFactory(external_userid="wm1")
    services.assign_tags([customer], [tag(intent_group, "高")], actor=importer, source="manual")
    error = only_error(run(HEADER + "wm1,,张三,意向:中\n", importer))
    assert error.code == "exclusive_conflict"
    assert list(customer.assignments.values_list("tag__name", flat=True)) == ["高"]


def test_exclusive_conflict_with_an_earlier_row_of_the_file(importer, intent_group):
    report = run(HEADER + "wm1,,张三,意向:高\nwm1,,张三,意向:中\n", importer)
    assert codes(report) == [(3, "exclusive_conflict")]


def test_permission_denied_for_a_group_viewed_but_not_editable(sales_importer, source_group):
    error = only_error(run(HEADER + "wm1,,张三,客户来源:官网\n", sales_importer))
    assert (error.code, error.column) == ("permission_denied", "tags")


@override_settings(TAGDESK_MAX_CORPORATE_TAGS_PER_CUSTOMER=2)
def test_limit_exceeded(importer, source_group):
    report = run(HEADER + "wm1,,张三,客户来源:官网;客户来源:展会;客户来源:转介绍\n", importer)
    assert codes(report) == [(2, "limit_exceeded")]
    assert TagAssignment.objects.count() == 0


def test_every_error_is_reported_with_physical_lines(importer, intent_group):
    text = HEADER + "\n" + 'wm1,,"多行\n名字",意向:无\n' + ",,,\n" + "wm 2,,x,\n"
    report = run(text, importer)
    # header 1, blank 2, the multi-line record starts at 3, ",,," at 5 is skipped, then 6.
    assert codes(report) == [(3, "unknown_tag"), (6, "invalid_external_userid")]
    assert report.rows == 2


def test_unknown_header_is_reported_as_unknown_group(importer):
    report = run("external_userid,颜色\nwm1,红\n", importer)
    assert [(e.line, e.column, e.code) for e in report.errors] == [(1, "颜色", "unknown_tag_group")]
    assert report.rejected_work and Customer.objects.count() == 0


def test_header_without_identifier_column(importer):
    report = run("name,tags\n张三,\n", importer)
    assert [(e.line, e.code) for e in report.errors] == [(1, "missing_identifier")]
