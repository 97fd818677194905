"""A real Celery worker (Redis broker) runs a big import as the admin would queue it.
Needs REDIS_URL (CI sets it; locally REDIS_URL=redis://127.0.0.1:6379/2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import connection, transaction
from django.utils import timezone

from customers.models import Customer, ImportJob
from tagging.models import TagAssignment
from tests.conftest import wait_for
from tests.factories import CustomerFactory

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("REDIS_URL"),
        reason="REDIS_URL is not set: the worker test needs a Redis broker (CI sets it).",
    ),
]


def test_worker_runs_an_import_job_in_batches(celery_worker, importer, intent_group, monkeypatch):
    from customers import tasks

    monkeypatch.setattr(tasks, "BATCH_ROWS", 50)
    lines = ["external_userid,phone,name,tags"] + [
        f"wm{i},1380013{i:04d},客户{i},意向:高" for i in range(120)
    ]
    job = ImportJob(user=importer, original_name="big.csv")
    job.file.save("big.csv", ContentFile("\n".join(lines).encode("utf-8")), save=False)
    job.save()
    tasks.run_import_job.delay(job.pk)
    assert wait_for(lambda: ImportJob.objects.get(pk=job.pk).is_finished)
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_total) == ("done", 120, 120), job.error_message
    assert job.task_id  # the worker recorded which task ran it
    assert Customer.objects.count() == 120 and TagAssignment.objects.count() == 120
    # a duplicate delivery of the same task finds the job finished and changes nothing
    tasks.run_import_job.delay(job.pk)
    time.sleep(1)
    assert Customer.objects.count() == 120
    assert settings.CELERY_TASK_ACKS_LATE and settings.CELERY_TASK_REJECT_ON_WORKER_LOST


@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="a worker process needs a database it can share"
)
def test_a_worker_killed_mid_import_is_reaped_and_the_job_resumes(
    importer, intent_group, monkeypatch, settings, tmp_path
):
    """SIGKILL the worker process while it applies batch 2 (of 3): batch 1 stays, batch 2 is
    rolled back, the job's lease runs out, the reaper queues it, a new worker resumes it after
    batch 1 and the file ends up imported exactly once."""
    from celery.contrib.testing.worker import start_worker

    from config.celery import app
    from customers import tasks

    settings.MEDIA_ROOT = tmp_path
    monkeypatch.setattr(tasks, "BATCH_ROWS", 50)
    CustomerFactory(external_userid="wm60", phone="+8613800130060", name="旧名")  # in batch 2
    lines = ["external_userid,phone,name,tags"] + [
        f"wm{i},1380013{i:04d},客户{i},意向:高" for i in range(120)
    ]
    job = ImportJob(user=importer, original_name="big.csv")
    job.file.save("big.csv", ContentFile("\n".join(lines).encode("utf-8")), save=False)
    job.save()

    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:"
        f"{db['PORT'] or 5432}/{db['NAME']}",
        "MEDIA_ROOT": str(tmp_path),
        "TAGDESK_IMPORT_BATCH_ROWS": "50",
        "TAGDESK_JOB_LEASE_SECONDS": "2",
    }
    command = [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool", "solo"]
    command += ["--without-mingle", "--without-gossip", "--loglevel", "WARNING"]
    command += ["--hostname", f"doomed-{job.pk}@%h"]
    worker = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env)
    app.conf.task_always_eager = False  # restored by the autouse fixture
    try:
        with transaction.atomic():
            # Hold customer wm60: batch 2 waits for it, so the kill lands mid-batch.
            Customer.objects.select_for_update().get(external_userid="wm60")
            tasks.run_import_job.delay(job.pk)
            assert wait_for(lambda: ImportJob.objects.get(pk=job.pk).rows_done == 50, 60)
            assert wait_for(_a_backend_waits_for_a_lock, 30)
            worker.send_signal(signal.SIGKILL)
            assert worker.wait(timeout=10) == -signal.SIGKILL
    finally:
        if worker.poll() is None:
            worker.kill()
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.attempts) == ("running", 50, 1)  # stuck, for now
    assert Customer.objects.count() == 51  # batch 1 and wm60; nothing of batch 2
    assert wait_for(lambda: ImportJob.objects.get(pk=job.pk).lease_expires_at < timezone.now())
    assert tasks.reap_import_jobs() == {"requeued": [job.pk], "failed": []}
    try:
        with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=30):
            assert wait_for(lambda: ImportJob.objects.get(pk=job.pk).is_finished, 60)
    finally:
        _forget_unacknowledged_messages()  # the dead worker's delivery: its job is done
    job.refresh_from_db()
    assert (job.status, job.rows_done, job.rows_total, job.attempts) == ("done", 120, 120, 2)
    assert (job.result["customers_created"], job.result["customers_updated"]) == (119, 1)
    assert Customer.objects.count() == 120 and TagAssignment.objects.count() == 120
    assert Customer.objects.get(external_userid="wm60").name == "客户60"
    assert job.lease_owner == "" and job.lease_expires_at is None


def _a_backend_waits_for_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return cursor.fetchone()[0] > 0


def _forget_unacknowledged_messages() -> None:
    import redis

    redis.Redis.from_url(settings.CELERY_BROKER_URL).delete(
        "unacked", "unacked_index", "unacked_mutex"
    )
