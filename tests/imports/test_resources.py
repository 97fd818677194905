"""django-import-export resources with the TagDesk service behind them; wide layout."""

from __future__ import annotations

import pytest
import tablib

from customers.models import Customer
from customers.resources import CustomerResource, TagAssignmentResource
from tagging.models import TagAssignment
from tests.factories import CustomerFactory
from tests.imports.conftest import codes, run

pytestmark = pytest.mark.django_db


def test_wide_layout_import_a_column_per_group(importer, intent_group, source_group):
    report = run("客户ID,姓名,意向,客户来源\nwm1,张三,高,官网；展会\nwm2,李四,,\n", importer)
    assert not report.errors
    assert sorted(TagAssignment.objects.values_list("tag__name", flat=True)) == [
        "官网",
        "展会",
        "高",
    ]


def test_wide_layout_cell_with_a_colon_is_malformed(importer, intent_group):
    report = run("external_userid,意向\nwm1,意向:高\n", importer)
    assert codes(report) == [(2, "malformed_tag")]


def test_resource_export_long_and_wide_with_neutralised_cells(importer, intent_group, source_group):
    run("external_userid,name,tags\nwm1,=cmd,意向:高;客户来源:官网\n", importer)
    long = CustomerResource(user=importer).export()
    assert long.headers == ["external_userid", "phone", "name", "tags"]
    assert list(long[0]) == ["wm1", "", "'=cmd", "意向:高;客户来源:官网"]
    wide = CustomerResource(user=importer, language="zh", layout="wide").export()
    assert wide.headers[:3] == ["客户ID", "手机号", "姓名"] and "意向" in wide.headers
    row = dict(zip(wide.headers, wide[0], strict=True))
    assert (row["意向"], row["客户来源"]) == ("高", "官网")
    tags_only = TagAssignmentResource(user=importer).export()
    assert tags_only.headers == ["external_userid", "phone", "tags"]


def test_resource_import_data_is_strict_additive_and_reports_unknown_tags(importer, intent_group):
    customer = CustomerFactory(external_userid="wm1")
    from tagging import services
    from tests.conftest import tag

    services.assign_tags([customer], [tag(intent_group, "高")], actor=importer, source="manual")
    dataset = tablib.Dataset(headers=["external_userid", "tags"])
    dataset.append(["wm1", "意向:高;意向:不存在"])
    dataset.append(["wm2", ""])
    result = CustomerResource(user=importer).import_data(dataset, dry_run=False)
    assert result.has_validation_errors()
    assert result.invalid_rows[0].number == 2
    assert "unknown_tag" in str(result.invalid_rows[0].error_dict)
    assert Customer.objects.count() == 1  # strict: nothing written
    result = CustomerResource(user=importer).import_data(dataset, skip_invalid=True)
    assert Customer.objects.count() == 2
    # the library's M2M widget would have replaced the tag set; ours never removes
    assert list(customer.assignments.values_list("tag__name", flat=True)) == ["高"]


def test_tag_assignment_resource_never_creates_customers(importer, intent_group):
    dataset = tablib.Dataset(headers=["external_userid", "tags"])
    dataset.append(["wm9", "意向:高"])
    result = TagAssignmentResource(user=importer).import_data(dataset)
    assert result.has_validation_errors() and Customer.objects.count() == 0
