"""Encodings, line numbers and spreadsheet quirks (docs/import-export.md#file-formats)."""

from __future__ import annotations

import time

import pytest

from customers.models import Customer
from tests.imports.conftest import codes, run, xlsx_bytes

pytestmark = pytest.mark.django_db


def test_gb18030_with_characters_outside_gbk(importer, intent_group):
    text = "客户ID,手机号,姓名,标签\r\nwm1,13800138000,𠮷野家䶮,意向:高\r\n"
    data = text.encode("gb18030")
    with pytest.raises(UnicodeEncodeError):
        text.encode("gbk")  # the point: these characters exist only in GB18030
    report = run(data, importer)
    assert not report.errors
    assert Customer.objects.get().name == "𠮷野家䶮"


def test_utf8_with_bom_and_crlf(importer, intent_group):
    data = (
        "\ufeffexternal_userid,phone,name,tags\r\nwm1,13800138000,张三,意向:高\r\n\r\nwm 2,,x,\r\n"
    )
    report = run(data.encode("utf-8"), importer, skip_invalid=True)
    assert codes(report) == [(4, "invalid_external_userid")]
    assert Customer.objects.get().external_userid == "wm1"


def test_quoted_field_with_newline_and_comma_is_stored_verbatim(importer):
    name = '王 "小二",\n第二行 😀'
    data = 'external_userid,name\nwm1,"王 ""小二"",\n第二行 😀"\nwm 2,x\n'
    report = run(data, importer, skip_invalid=True)
    assert codes(report) == [(4, "invalid_external_userid")]  # the record above spans 2 lines
    assert Customer.objects.get().name == name


def test_unicode_whitespace_is_trimmed(importer):
    report = run(
        "external_userid,phone,name\n\u3000wm1\u00a0,\u200b１３８ ００１３ ８０００,\u3000张三\u3000\n",
        importer,
    )
    assert not report.errors
    customer = Customer.objects.get()
    assert (customer.external_userid, customer.phone, customer.name) == (
        "wm1",
        "+8613800138000",
        "张三",
    )


def test_undecodable_file_is_one_file_error_and_nothing_stored(importer):
    data = "external_userid,name\nwm1,café\n".encode("latin-1") + bytes([0x80, 0xFF])
    report = run(data, importer)
    assert [(e.line, e.code) for e in report.errors] == [(None, "unreadable_file")]
    assert report.rejected_work and Customer.objects.count() == 0


def test_xlsx_numeric_phones_and_phantom_rows(importer, intent_group):
    data = xlsx_bytes(
        [
            ["手机号", "姓名", "标签"],
            [13800138002, "张三", "意向:高"],
            [13800138003.0, "李四", None],
            [None, None, None],
            ["12", "坏", None],
        ],
        phantom_row=1_048_576,
    )
    start = time.monotonic()
    report = run(data, importer, filename="customers.xlsx", skip_invalid=True)
    assert time.monotonic() - start < 30  # phantom rows are not materialised (usually < 1 s)
    assert codes(report) == [(5, "invalid_phone")]  # line = sheet row
    assert sorted(Customer.objects.values_list("phone", flat=True)) == [
        "+8613800138002",
        "+8613800138003",
    ]


def test_xlsx_formula_cells_use_cached_values(importer, tmp_path):
    from openpyxl import load_workbook

    data = xlsx_bytes([["external_userid", "name"], ["wm1", '=CONCAT("a","b")']])
    # openpyxl writes no cached value; a formula without one reads as empty, never as its text.
    report = run(data, importer, filename="f.xlsx")
    assert not report.errors
    assert Customer.objects.get().name in ("", "ab")
    assert load_workbook  # imported for clarity of what produced the file


def test_file_named_xlsx_that_is_not_one(importer):
    report = run(b"external_userid\nwm1\n", importer, filename="x.xlsx")
    assert report.errors[0].code == "unreadable_file"


def test_empty_file(importer):
    report = run(b"", importer)
    assert report.errors[0].code == "empty_file"
