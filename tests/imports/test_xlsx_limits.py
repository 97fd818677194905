"""Broken and hostile XLSX files (issue 11 §9): one clear file-level error each; a
decompression bomb never pins the upload request (it is counted and refused on a worker, by
size, row and time caps)."""

from __future__ import annotations

import io
import time
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from customers import tasks
from customers.models import Customer, ImportJob
from tests.imports.conftest import codes, run, xlsx_bytes

pytestmark = pytest.mark.django_db

SHEET = "xl/worksheets/sheet1.xml"
HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
    b'<row r="1"><c r="A1" t="inlineStr"><is><t>external_userid</t></is></c></row>'
    b'<row r="2"><c r="A2" t="inlineStr"><is><t>wm1</t></is></c></row>'
)
TAIL = b"</sheetData></worksheet>"


def with_sheet(sheet_xml: bytes, *, compression=zipfile.ZIP_DEFLATED) -> bytes:
    """A real workbook whose first sheet's XML is ``sheet_xml``."""
    source = zipfile.ZipFile(io.BytesIO(xlsx_bytes([["external_userid"], ["wm0"]])))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            if info.filename == SHEET:
                target.writestr(SHEET, sheet_xml, compress_type=compression)
            else:
                target.writestr(info, source.read(info.filename))
    return out.getvalue()


def bomb(rows: int) -> bytes:
    """A small file whose sheet expands to ``rows`` empty rows (6 bytes each)."""
    body = b"<row/>" * rows
    return with_sheet(HEAD + body + TAIL)


def file_error(report):
    assert report.file_error, report.errors
    assert len(report.errors) == 1, report.errors
    return report.errors[0]


def test_truncated_workbook_is_one_file_error(importer):
    data = xlsx_bytes([["external_userid", "name"], ["wm1", "张三"]])
    error = file_error(run(data[: len(data) * 2 // 3], importer, filename="t.xlsx"))
    assert error.code == "unreadable_file"
    assert "not a readable XLSX" in error.message


def test_truncated_sheet_xml_is_one_file_error(importer):
    xml = HEAD + b'<row r="3"><c r="A3" t="inlineStr"><is><t>wm2'
    error = file_error(run(with_sheet(xml), importer, filename="t.xlsx"))
    assert error.code == "unreadable_file"
    assert "damaged or truncated" in error.message
    assert Customer.objects.count() == 0


def test_sheet_with_a_bad_checksum_is_one_file_error(importer):
    data = bytearray(with_sheet(HEAD + TAIL, compression=zipfile.ZIP_STORED))
    at = bytes(data).index(b"wm1")
    data[at : at + 3] = b"wmX"  # stored bytes changed: the CRC no longer matches
    error = file_error(run(bytes(data), importer, filename="t.xlsx"))
    assert error.code == "unreadable_file"
    assert "damaged or truncated" in error.message


def test_workbook_expanding_beyond_the_size_cap(importer, settings):
    settings.TAGDESK_IMPORT_MAX_SHEET_MB = 1
    data = bomb(500_000)
    assert len(data) < 20_000  # small on disk, 3 MB of XML
    started = time.monotonic()
    error = file_error(run(data, importer, filename="b.xlsx"))
    assert time.monotonic() - started < 1  # refused from the zip directory, nothing inflated
    assert error.code == "file_too_large"
    assert "expands to 3 MB when opened; the limit is 1 MB" in error.message


def test_reading_time_cap(importer, settings):
    settings.TAGDESK_IMPORT_MAX_SECONDS = 1
    error = file_error(run(bomb(1_500_000), importer, filename="b.xlsx"))
    assert error.code == "file_too_large"
    assert "longer than 1 seconds" in error.message


@pytest.mark.parametrize("filename", ["r.csv", "r.xlsx"])
def test_row_cap(importer, settings, filename):
    settings.TAGDESK_IMPORT_MAX_ROWS = 3
    rows = [["external_userid"], *[[f"wm{n}"] for n in range(4)]]
    data = xlsx_bytes(rows) if filename.endswith("xlsx") else "\n".join(r[0] for r in rows).encode()
    error = file_error(run(data, importer, filename=filename))
    assert error.code == "file_too_large"
    assert "more than 3 data rows" in error.message
    rows.pop()
    data = xlsx_bytes(rows) if filename.endswith("xlsx") else "\n".join(r[0] for r in rows).encode()
    assert run(data, importer, filename=filename).errors == []


def test_upload_of_a_bomb_returns_at_once_and_the_worker_refuses_it(
    importer, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    settings.TAGDESK_IMPORT_MAX_SECONDS = 1
    data = bomb(1_500_000)
    client = Client()
    client.force_login(importer)
    started = time.monotonic()
    with django_capture_on_commit_callbacks() as queued:
        response = client.post(
            reverse("admin:customers_customer_import"),
            {"file": SimpleUploadedFile("bomb.xlsx", data), "mode": "customers"},
        )
    assert time.monotonic() - started < 2
    assert response.status_code == 302
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.QUEUED and job.rows_total is None
    assert len(queued) == 1  # counted and validated on a worker, not in the request
    tasks.process_job(job.pk)  # what the worker runs
    job.refresh_from_db()
    assert job.status == ImportJob.Status.REJECTED
    assert [e["code"] for e in job.result["errors"]] == ["file_too_large"]


def test_small_files_still_run_inline(importer, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client = Client()
    client.force_login(importer)
    data = xlsx_bytes([["external_userid", "name"], ["wm1", "张三"]])
    client.post(
        reverse("admin:customers_customer_import"),
        {"file": SimpleUploadedFile("s.xlsx", data), "mode": "customers"},
    )
    job = ImportJob.objects.get()
    assert job.status == ImportJob.Status.DONE and job.rows_total == 1


def test_error_codes_of_file_errors(importer):
    report = run(
        with_sheet(HEAD + b"<row", compression=zipfile.ZIP_DEFLATED), importer, filename="x.xlsx"
    )
    assert codes(report) == [(None, "unreadable_file")]
