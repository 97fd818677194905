"""The import task: batches applied all-or-nothing with their progress; resumable; idempotent."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile

from customers import tasks
from customers.importing import Importer
from customers.models import Customer, ImportJob
from tagging.models import TagAssignment

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def make_job(user, text: str, **fields) -> ImportJob:
    job = ImportJob(user=user, original_name="c.csv", **fields)
    job.file.save("c.csv", ContentFile(text.encode("utf-8")), save=False)
    job.save()
    return job


def rows(n: int, bad_at: int | None = None) -> str:
    lines = ["external_userid,phone,name,tags"]
    for i in range(n):
        ext = "bad id" if i == bad_at else f"wm{i}"
        lines.append(f"{ext},1380013{i:04d},客户{i},意向:高")
    return "\n".join(lines) + "\n"


def test_batches_report_progress_and_finish(importer, intent_group, monkeypatch):
    monkeypatch.setattr(tasks, "BATCH_ROWS", 4)
    job = make_job(importer, rows(10))
    assert tasks.process_job(job.pk) == "done"
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_total) == ("done", 10, 10)
    assert job.result["customers_created"] == 10 and job.result["assignments_added"] == 10
    assert Customer.objects.count() == 10
    # idempotent: running the finished job again does nothing
    assert tasks.process_job(job.pk) == "done"
    assert Customer.objects.count() == 10


def test_strict_job_with_an_error_applies_nothing(importer, intent_group, monkeypatch):
    monkeypatch.setattr(tasks, "BATCH_ROWS", 4)
    job = make_job(importer, rows(10, bad_at=8))
    assert tasks.process_job(job.pk) == "rejected"
    job.refresh_from_db()
    assert job.result["errors"][0]["line"] == 10 and Customer.objects.count() == 0


def test_lenient_job_applies_good_rows_and_stores_rejected_rows(
    importer, intent_group, monkeypatch
):
    monkeypatch.setattr(tasks, "BATCH_ROWS", 4)
    job = make_job(importer, rows(10, bad_at=8), skip_invalid=True)
    assert tasks.process_job(job.pk) == "done"
    job.refresh_from_db()
    assert Customer.objects.count() == 9 and job.errors_so_far == 1
    assert job.error_report.read().decode("utf-8-sig").splitlines()[1].startswith("10,")


def test_crash_mid_way_leaves_whole_batches_and_a_rerun_completes(
    importer, intent_group, monkeypatch
):
    monkeypatch.setattr(tasks, "BATCH_ROWS", 4)
    job = make_job(importer, rows(10))
    original = Importer.apply
    calls = []

    def crash_in_second_batch(self, plan):
        calls.append(len(plan.new))
        original(self, plan)  # the writes happen ...
        if len(calls) == 2:
            raise SystemExit("worker killed")  # ... and then the worker dies before commit

    monkeypatch.setattr(Importer, "apply", crash_in_second_batch)
    with pytest.raises(SystemExit):
        tasks.process_job(job.pk, task_id="task-1")
    job.refresh_from_db()
    assert job.rows_done == 4 and Customer.objects.count() == 4  # batch 1 only, batch 2 gone
    assert TagAssignment.objects.count() == 4
    monkeypatch.setattr(Importer, "apply", original)
    # the same task redelivered (reject_on_worker_lost) takes over its lease and resumes
    assert tasks.process_job(job.pk, task_id="task-1") == "done"
    job.refresh_from_db()
    assert job.rows_done == 10 and Customer.objects.count() == 10
    assert job.result["customers_created"] == 10


def test_a_second_worker_cannot_apply_a_batch_twice(importer, intent_group, monkeypatch):
    job = make_job(importer, rows(3), status=ImportJob.Status.RUNNING)
    record = tasks._progress(job, start=0, size=3, header=[])
    ImportJob.objects.filter(pk=job.pk).update(rows_done=3)  # the other worker got there first
    with pytest.raises(tasks.Superseded):
        from customers.importing import ImportReport

        record(ImportReport())


def test_dry_run_job(importer, intent_group):
    job = make_job(importer, rows(3), dry_run=True)
    assert tasks.process_job(job.pk) == "done"
    job.refresh_from_db()
    assert job.result["customers_created"] == 3 and Customer.objects.count() == 0


def test_unreadable_file_is_rejected(importer):
    job = ImportJob(user=importer, original_name="x.csv")
    job.file.save("x.csv", ContentFile(b"\xff\xfe\x00bad"), save=False)
    job.save()
    assert tasks.process_job(job.pk) == "rejected"
    job.refresh_from_db()
    assert job.result["errors"][0]["code"] == "unreadable_file"


def test_a_failed_job_resumes_when_run_again(importer, intent_group, monkeypatch):
    monkeypatch.setattr(tasks, "BATCH_ROWS", 4)
    job = make_job(importer, rows(10))
    original = Importer.apply
    calls = []

    def fail_in_third_batch(self, plan):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("database went away")
        original(self, plan)

    monkeypatch.setattr(Importer, "apply", fail_in_third_batch)
    with pytest.raises(RuntimeError):
        tasks.process_job(job.pk)
    job.refresh_from_db()
    assert (job.status, job.rows_done) == ("failed", 8) and "went away" in job.error_message
    monkeypatch.setattr(Importer, "apply", original)
    assert tasks.process_job(job.pk) == "done"
    assert Customer.objects.count() == 10
