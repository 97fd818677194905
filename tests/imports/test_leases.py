"""Import jobs that heal: a lease renewed with every batch, a reaper that queues a job whose
worker was lost, an admin "resume", and no job orphaned before its task is queued."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from customers import tasks
from customers.importing import Importer
from customers.models import Customer, ImportJob
from tagging.models import TagAssignment
from tests.imports.test_tasks import make_job, rows

pytestmark = pytest.mark.django_db
S = ImportJob.Status


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path


def past(seconds: int = 1):
    return timezone.now() - dt.timedelta(seconds=seconds)


def crash_in_second_batch(monkeypatch):
    """The worker dies (SIGKILL-like: no cleanup runs) after batch 1 committed."""
    original = Importer.apply
    calls = []

    def apply(self, plan):
        calls.append(1)
        original(self, plan)
        if len(calls) == 2:
            raise SystemExit("worker killed")

    monkeypatch.setattr(Importer, "apply", apply)
    return lambda: monkeypatch.setattr(Importer, "apply", original)


def test_a_new_job_has_a_pickup_deadline(importer, settings):
    settings.TAGDESK_JOB_LEASE_SECONDS = 120
    job = make_job(importer, rows(1))
    assert job.lease_owner == "" and job.attempts == 0
    left = (job.lease_expires_at - timezone.now()).total_seconds()
    assert 110 < left <= 120


def test_each_batch_renews_the_lease_in_its_transaction(importer, intent_group, monkeypatch):
    monkeypatch.setattr(tasks, "BATCH_ROWS", 4)
    job = make_job(importer, rows(10))
    restore = crash_in_second_batch(monkeypatch)
    with pytest.raises(SystemExit):
        tasks.process_job(job.pk, task_id="task-1")
    restore()
    job.refresh_from_db()
    # batch 1 committed with its heartbeat; the job still holds the dead worker's lease
    assert (job.status, job.rows_done, job.attempts) == (S.RUNNING, 4, 1)
    assert job.lease_owner and job.lease_expires_at > timezone.now() and job.heartbeat_at
    # another task finds a live lease and leaves the job alone: nothing applied twice
    assert tasks.process_job(job.pk, task_id="task-2") == S.RUNNING
    assert Customer.objects.count() == 4
    assert tasks.reap_import_jobs() == {"requeued": [], "failed": []}  # not expired yet


def test_the_reaper_resumes_an_expired_job_after_its_last_batch(
    importer, intent_group, monkeypatch
):
    monkeypatch.setattr(tasks, "BATCH_ROWS", 4)
    job = make_job(importer, rows(10))
    restore = crash_in_second_batch(monkeypatch)
    with pytest.raises(SystemExit):
        tasks.process_job(job.pk, task_id="task-1")
    restore()
    ImportJob.objects.filter(pk=job.pk).update(lease_expires_at=past())  # the lease ran out
    assert tasks.reap_import_jobs() == {"requeued": [job.pk], "failed": []}  # ran inline
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_total, job.attempts) == (S.DONE, 10, 10, 2)
    assert job.lease_owner == "" and job.lease_expires_at is None
    assert Customer.objects.count() == 10 and TagAssignment.objects.count() == 10
    assert job.result["customers_created"] == 10
    assert tasks.reap_import_jobs() == {"requeued": [], "failed": []}  # finished: left alone


def test_a_queued_job_whose_message_was_lost_is_queued_again(importer, intent_group):
    job = make_job(importer, rows(3))  # created, but its task never reached a worker
    assert tasks.reap_import_jobs()["requeued"] == []
    ImportJob.objects.filter(pk=job.pk).update(lease_expires_at=past())
    assert tasks.reap_import_jobs()["requeued"] == [job.pk]
    assert ImportJob.objects.get(pk=job.pk).status == S.DONE
    assert Customer.objects.count() == 3


def test_a_job_that_keeps_losing_its_worker_fails(importer, settings):
    settings.TAGDESK_JOB_MAX_ATTEMPTS = 3
    job = make_job(importer, rows(3), status=S.RUNNING, attempts=3, lease_owner="dead")
    ImportJob.objects.filter(pk=job.pk).update(lease_expires_at=past())
    assert tasks.reap_import_jobs() == {"requeued": [], "failed": [job.pk]}
    job.refresh_from_db()
    assert job.status == S.FAILED and "3 times" in job.error_message
    assert job.finished_at and job.lease_expires_at is None


def test_a_worker_that_lost_its_lease_applies_nothing_more(importer, intent_group, monkeypatch):
    monkeypatch.setattr(tasks, "BATCH_ROWS", 4)
    job = make_job(importer, rows(10))
    original = Importer.apply
    calls = []

    def taken_over_after_first_batch(self, plan):
        calls.append(1)
        if len(calls) == 2:  # meanwhile the reaper gave the job to another worker
            ImportJob.objects.filter(pk=job.pk).update(lease_owner="someone-else")
        original(self, plan)

    monkeypatch.setattr(Importer, "apply", taken_over_after_first_batch)
    assert tasks.process_job(job.pk, task_id="slow") == S.RUNNING  # superseded, not done
    assert Customer.objects.count() == 4  # batch 2 rolled back
    assert ImportJob.objects.get(pk=job.pk).rows_done == 4


def test_a_broker_that_refuses_fails_the_job_instead_of_orphaning_it(
    importer, intent_group, monkeypatch, django_capture_on_commit_callbacks
):
    from config.celery import app

    def refuse(*args, **kwargs):
        raise ConnectionError("Error 111 connecting to redis")

    app.conf.task_always_eager = False  # a real broker (restored by the autouse fixture)
    monkeypatch.setattr(tasks.run_import_job, "delay", refuse)
    job = make_job(importer, rows(3))
    with django_capture_on_commit_callbacks(execute=True) as queued:
        tasks.enqueue(job)
    assert len(queued) == 1  # queued only once the job row is committed
    job.refresh_from_db()
    assert job.status == S.FAILED and "could not be queued" in job.error_message
    assert "111" in job.error_message and Customer.objects.count() == 0


def test_admin_resume_action(
    client, importer, intent_group, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr(tasks, "BATCH_ROWS", 4)
    failed = make_job(importer, rows(10))
    original = Importer.apply
    calls = []

    def fail_in_second_batch(self, plan):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("database went away")
        original(self, plan)

    monkeypatch.setattr(Importer, "apply", fail_in_second_batch)
    with pytest.raises(RuntimeError):
        tasks.process_job(failed.pk)
    monkeypatch.setattr(Importer, "apply", original)
    alive = make_job(importer, rows(2), status=S.RUNNING, lease_owner="alive-worker")
    client.force_login(importer)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:customers_importjob_changelist"),
            {"action": "resume_jobs", "_selected_action": [failed.pk, alive.pk]},
            follow=True,
        )
    assert response.status_code == 200
    text = response.content.decode()
    assert "1 import resumed" in text and "1 import was left alone" in text
    failed.refresh_from_db()
    assert (failed.status, failed.rows_done, failed.attempts) == (S.DONE, 10, 1)
    assert Customer.objects.count() == 10
    assert ImportJob.objects.get(pk=alive.pk).status == S.RUNNING  # its worker is alive


def test_resume_refuses_finished_jobs(importer, intent_group):
    job = make_job(importer, rows(2))
    assert tasks.process_job(job.pk) == S.DONE
    assert tasks.resume_job(job.pk) is False
    assert ImportJob.objects.get(pk=job.pk).status == S.DONE


def test_the_reapers_are_scheduled_through_django_celery_beat(settings):
    from django_celery_beat.models import PeriodicTask
    from django_celery_beat.schedulers import ModelEntry

    from config.celery import app

    reapers = {"customers.reap_import_jobs", "rules.reap_rule_runs"}
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
        if entry["task"] in reapers:  # what beat's DatabaseScheduler does at start
            ModelEntry.from_entry(name, app=app, **entry)
    installed = PeriodicTask.objects.filter(task__in=reapers)
    assert {(t.task, t.crontab.minute, t.enabled) for t in installed} == {
        (task, "*", True) for task in reapers
    }
    assert "rules.reap_rule_runs" in app.tasks and "customers.reap_import_jobs" in app.tasks


def test_broker_redelivery_settings(settings):
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST
    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert timeout >= settings.TAGDESK_JOB_LEASE_SECONDS
