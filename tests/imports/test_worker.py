"""A real Celery worker (Redis broker) runs a big import as the admin would queue it.
Needs REDIS_URL (CI sets it; locally REDIS_URL=redis://127.0.0.1:6379/2)."""

from __future__ import annotations

import os
import time

import pytest
from django.conf import settings
from django.core.files.base import ContentFile

from customers.models import Customer, ImportJob
from tagging.models import TagAssignment
from tests.conftest import wait_for

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
