"""Export: round trip through the importer, formula neutralisation, visibility, queries."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from customers.exporting import export_customers, neutralise
from customers.models import Customer
from tagging.models import TagAssignment
from tests.imports.conftest import run

pytestmark = pytest.mark.django_db

FILE = (
    "external_userid,phone,name,tags\n"
    "wm1,13800138000,张三,意向:高;客户来源:官网\n"
    ",13800138001,=1+2,客户来源:展会\n"
    "wm3,,'-负数,\n"
    'wm4,,"@SUM(A1)\n第二行",意向:低\n'
    "wm5,,,\n"
)


def customers_now():
    return sorted(Customer.objects.values_list("external_userid", "phone", "name"), key=str)


def export_text(user, fmt="csv", **kwargs) -> str:
    return b"".join(export_customers(user, fmt, **kwargs)).decode("utf-8-sig")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+2", "'=1+2"),
        ("+86138", "'+86138"),
        ("-1", "'-1"),
        ("@x", "'@x"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("'=x", "''=x"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
    ],
)
def test_neutralise(value, expected):
    assert neutralise(value) == expected


def test_export_reads_back_unchanged(importer, intent_group, source_group):
    first = run(FILE, importer)
    assert not first.errors
    before = customers_now()
    pairs = sorted(TagAssignment.objects.values_list("customer__name", "tag__name"))
    exported = export_text(importer)
    report = run(exported.encode("utf-8"), importer)
    assert not report.errors
    assert (report.customers_created, report.customers_updated, report.assignments_added) == (
        0,
        0,
        0,
    )
    assert customers_now() == before
    assert sorted(TagAssignment.objects.values_list("customer__name", "tag__name")) == pairs
    # and into an empty database, the same customers come back
    Customer.objects.all().delete()
    run(exported.encode("utf-8"), importer)
    assert customers_now() == before
    assert sorted(TagAssignment.objects.values_list("customer__name", "tag__name")) == pairs


def test_export_cells_are_neutralised_and_empty_cells_stay_empty(
    importer, intent_group, source_group
):
    run(FILE, importer)
    rows = list(csv.reader(io.StringIO(export_text(importer))))
    assert rows[0] == ["external_userid", "phone", "name", "tags"]
    by_name = {r[2]: r for r in rows[1:]}
    assert "'=1+2" in by_name and by_name["'=1+2"][1] == "13800138001"  # national form
    # "'-负数" in a file is read as a neutralised "-负数", and written back the same way
    assert Customer.objects.filter(name="-负数").exists() and "'-负数" in by_name
    assert by_name[""][3] == "" and by_name[""][0] == "wm5"


def test_xlsx_export_reads_back(importer, intent_group, source_group):
    run(FILE, importer)
    data = b"".join(export_customers(importer, "xlsx"))
    report = run(data, importer, filename="export.xlsx")
    assert not report.errors and report.assignments_added == 0 and report.customers_updated == 0


def test_export_shows_only_what_the_user_may_see(
    sales_importer, importer, departments, intent_group, source_group, level_group
):
    run(
        "external_userid,tags\nwm1,意向:高;客户等级:VIP\n",
        importer,
    )
    Customer.objects.update(department=departments["销售部"])
    run("external_userid,tags\nwm2,意向:中\n", importer)  # no department: not in sales' scope
    Customer.objects.filter(external_userid="wm2").update(department=departments["财务部"])
    rows = list(csv.reader(io.StringIO(export_text(sales_importer))))
    assert rows[1:] == [["wm1", "", "", "意向:高"]]  # 客户等级 is not granted to 销售部


def test_group_export(importer, intent_group, source_group):
    from customers.exporting import group_queryset

    run(FILE, importer)
    queryset, group_ids = group_queryset(importer, intent_group.pk)
    rows = list(
        csv.reader(io.StringIO(export_text(importer, queryset=queryset, group_ids=group_ids)))
    )
    assert sorted(r[3] for r in rows[1:]) == ["意向:低", "意向:高"]


def test_group_export_of_an_invisible_group_is_not_found(sales_importer, level_group):
    from customers.exporting import group_queryset
    from permissions import policy

    with pytest.raises(policy.NotVisible):
        group_queryset(sales_importer, level_group.pk)


def test_export_query_count_does_not_grow_with_rows(importer, intent_group, source_group):
    run(FILE, importer)
    with CaptureQueriesContext(connection) as small:
        export_text(importer)
    lines = "".join(f"x{i},,n{i},意向:高;客户来源:官网\n" for i in range(60))
    run("external_userid,phone,name,tags\n" + lines, importer)
    with CaptureQueriesContext(connection) as large:
        export_text(importer)
    assert len(small.captured_queries) == len(large.captured_queries) <= 6
