"""Admin import/export pages: upload → dry-run preview → confirm; async progress; downloads."""

from __future__ import annotations

import csv
import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from customers.models import Customer, ImportJob
from tagging.models import TagAssignment

pytestmark = pytest.mark.django_db

GOOD = "external_userid,phone,name,tags\nwm1,13800138000,张三,意向:高\n"
BAD = GOOD + "wm2,,<script>alert(1)</script>,意向:<b>无</b>\n"


@pytest.fixture
def client_for(client):
    def login(user):
        client.force_login(user)
        return client

    return login


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.LANGUAGE_CODE = "en"  # assertions read English words


CONFIRM = 'name="job"'  # the confirm form


def upload(client, text, **data):
    return client.post(
        reverse("admin:customers_customer_import"),
        {"file": SimpleUploadedFile("c.csv", text.encode("utf-8")), "mode": "customers", **data},
        follow=True,
    )


def test_dry_run_preview_then_confirm(client_for, importer, intent_group):
    client = client_for(importer)
    assert client.get(reverse("admin:customers_customer_import")).status_code == 200
    preview = upload(client, GOOD)
    job = ImportJob.objects.get()
    assert job.dry_run and job.status == "done" and Customer.objects.count() == 0
    assert CONFIRM in preview.content.decode()
    done = client.post(
        reverse("admin:customers_customer_process_import"), {"job": job.pk}, follow=True
    )
    assert done.status_code == 200
    assert Customer.objects.count() == 1 and TagAssignment.objects.count() == 1
    applied = ImportJob.objects.get(dry_run=False)
    assert applied.status == "done" and applied.result["assignments_added"] == 1


def test_errors_are_listed_escaped_and_strict_cannot_confirm(client_for, importer, intent_group):
    client = client_for(importer)
    body = upload(client, BAD).content.decode()
    assert "&lt;script&gt;" not in body or "<script>alert" not in body
    assert "<b>无</b>" not in body and "&lt;b&gt;无&lt;/b&gt;" in body
    assert "unknown_tag" in body and CONFIRM not in body
    job = ImportJob.objects.get()
    response = client.post(reverse("admin:customers_customer_process_import"), {"job": job.pk})
    assert response.status_code == 302 and Customer.objects.count() == 0


def test_lenient_confirm_and_rejected_rows_download(client_for, importer, intent_group):
    client = client_for(importer)
    upload(client, BAD, skip_invalid="on")
    job = ImportJob.objects.get()
    client.post(reverse("admin:customers_customer_process_import"), {"job": job.pk})
    assert Customer.objects.count() == 1
    applied = ImportJob.objects.get(dry_run=False)
    response = client.get(reverse("admin:customers_customer_import_rejected", args=[applied.pk]))
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[0][-1] == "reason" and rows[1][0] == "3" and "无" in rows[1][-1]


def test_someone_elses_job_is_not_found(client_for, importer, sales_importer, intent_group):
    upload(client_for(importer), GOOD)
    job = ImportJob.objects.get()
    client = client_for(sales_importer)
    assert (
        client.get(reverse("admin:customers_customer_import_job", args=[job.pk])).status_code == 404
    )


def test_big_file_goes_to_the_task_and_shows_progress(
    client_for, importer, intent_group, settings, monkeypatch
):
    from customers import admin_import

    queued = []
    monkeypatch.setattr(admin_import.tasks, "enqueue", queued.append)
    settings.TAGDESK_IMPORT_ASYNC_THRESHOLD = 1
    client = client_for(importer)
    page = upload(client, GOOD + "wm3,,李四,\n")
    job = ImportJob.objects.get()
    assert queued == [job] and job.status == "queued"
    body = page.content.decode()
    assert 'http-equiv="refresh"' in body and "0 of 2 rows done" in body


def test_templates_download(client_for, importer, intent_group):
    client = client_for(importer)
    url = reverse("admin:customers_customer_import_template")
    long = client.get(url, {"layout": "long", "language": "zh", "format": "csv"})
    assert long.content.decode("utf-8-sig").splitlines()[0] == "客户ID,手机号,姓名,标签"
    wide = client.get(url, {"layout": "wide", "language": "en", "format": "xlsx"})
    assert wide.status_code == 200 and wide.content[:2] == b"PK"
    assert client.get(url, {"layout": "odd"}).status_code == 404


def test_changelist_export_respects_filters_and_scope(client_for, importer, intent_group):
    from tests.imports.conftest import run

    run("external_userid,name,tags\nwm1,张三,意向:高\nwm2,李四,\n", importer)
    client = client_for(importer)
    changelist = client.get(reverse("admin:customers_customer_changelist"))
    assert reverse("admin:customers_customer_export") in changelist.content.decode()
    url = reverse("admin:customers_customer_export")
    assert client.get(url).status_code == 200
    response = client.get(url, {"q": "张三", "_format": "csv"})
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[1:] == [["wm1", "", "张三", "意向:高"]]


def test_group_export_hides_invisible_groups(client_for, sales_importer, level_group):
    client = client_for(sales_importer)
    url = reverse("admin:customers_customer_export_group", args=[level_group.pk])
    assert client.get(url).status_code == 404
