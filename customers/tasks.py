"""Background imports (docs/import-export.md#background-jobs-and-progress): a Celery task per
ImportJob, ids only, idempotent.

``acks_late`` and ``reject_on_worker_lost`` are set globally (config/settings.py), so a worker
killed mid-way does not lose the task: it is delivered again and resumes. Each batch of
``BATCH_ROWS`` records is validated and applied in ONE transaction together with the job's
progress (``rows_done``, ``errors_so_far``, ``result``), written by a conditional update on the
``rows_done`` the batch started from. So a batch the job reports is entirely applied, a batch it
does not report left nothing, and a second worker running the same job cannot apply a batch twice
(its conditional update matches no row and its transaction rolls back).

Strict jobs first validate the whole file without writing (nothing is applied if any row is
bad); lenient jobs apply the good rows batch by batch in file order. Dry runs only validate.
"""

from __future__ import annotations

import io
import logging

from celery import shared_task
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from django.utils.translation import gettext as _

from customers.import_readers import UnreadableFile
from customers.importing import (
    HeaderError,
    Importer,
    ImportReport,
    RowError,
    read_records,
    rejected_rows_csv,
)
from customers.models import ImportJob

logger = logging.getLogger(__name__)

BATCH_ROWS = 5000
S = ImportJob.Status
ACTIVE = [S.QUEUED, S.VALIDATING, S.RUNNING]


class Superseded(Exception):
    """Another worker moved the job on; this batch must not be applied."""


@shared_task(name="customers.run_import_job", bind=True, ignore_result=True)
def run_import_job(self, job_id: int) -> str:
    """Run (or resume) an import job. Safe to call any number of times."""
    return process_job(job_id, task_id=self.request.id or "")


def enqueue(job: ImportJob) -> None:
    """Queue the job's task once the job row is committed."""
    transaction.on_commit(lambda: run_import_job.delay(job.pk))


def process_job(job_id: int, task_id: str = "") -> str:
    """Claim the job (a conditional update: queued, running after a lost worker, or failed) and
    run or resume it. A finished job is left alone, so duplicate deliveries are harmless."""
    ImportJob.objects.filter(pk=job_id, status=S.FAILED).update(
        status=S.QUEUED, finished_at=None, error_message=""
    )
    claimed = ImportJob.objects.filter(pk=job_id, status__in=ACTIVE).update(
        started_at=Coalesce(F("started_at"), Now()), task_id=task_id[:64]
    )
    if not claimed:
        return ImportJob.objects.filter(pk=job_id).values_list("status", flat=True).first() or ""
    job = ImportJob.objects.select_related("user").get(pk=job_id)
    try:
        return _process(job)
    except Superseded:
        return S.RUNNING
    except Exception as exc:
        logger.exception("import job %s failed", job_id)
        _finish(job, S.FAILED, message=str(exc)[:2000])
        raise


def _process(job: ImportJob) -> str:
    importer = Importer(user=job.user, mode=job.mode, skip_invalid=job.skip_invalid)
    with job.file.open("rb") as handle:
        data = handle.read()
    try:
        fmt, records = read_records(data, job.original_name)
        header = next(records, None)
        if header is None:
            raise UnreadableFile(_("The file is empty."), code="empty_file")
        importer.read_header(header, fmt)
        rows = list(records)
    except UnreadableFile as exc:
        return _finish(job, S.REJECTED, report=_file_error(exc.code, str(exc)))
    except HeaderError as exc:
        report = ImportReport(file_error=True, header=header.values)
        report.errors = exc.errors
        return _finish(job, S.REJECTED, report=report)
    ImportJob.objects.filter(pk=job.pk).update(rows_total=len(rows))
    job.rows_total = len(rows)

    if job.dry_run or (not job.skip_invalid and job.rows_done == 0):
        _set_status(job, S.VALIDATING)
        report = importer.run(rows, dry_run=True)
        if job.dry_run:
            return _finish(job, S.DONE, report=report, rows_done=len(rows))
        if report.errors:
            report.customers_created = report.customers_updated = report.assignments_added = 0
            return _finish(job, S.REJECTED, report=report)
    _set_status(job, S.RUNNING)
    start = job.rows_done
    while start < len(rows):
        batch = rows[start : start + BATCH_ROWS]
        report = importer.run(
            batch, atomic_callback=_progress(job, start, len(batch), importer.header)
        )
        if not report.applied:  # strict, and the database changed since validation
            return _finish(job, S.REJECTED, report=_merged(job, report))
        start += len(batch)
    job.refresh_from_db()
    return _finish(job, S.DONE, report=_report_from_result(job))


def _progress(job: ImportJob, start: int, size: int, header: list[str]):
    """Record the batch in the job row inside the batch's transaction, conditionally."""

    def record(report: ImportReport) -> None:
        current = ImportJob.objects.select_for_update().get(pk=job.pk)
        if current.rows_done != start or current.status != S.RUNNING:
            raise Superseded
        result = _merged(current, report).summary()
        result["rejected"] = current.result.get("rejected", []) + [
            [line, values, reason] for line, values, reason in report.rejected
        ]
        result["header"] = header
        updated = ImportJob.objects.filter(pk=job.pk, rows_done=start, status=S.RUNNING).update(
            rows_done=start + size,
            errors_so_far=F("errors_so_far") + len(report.errors),
            result=result,
        )
        if updated != 1:
            raise Superseded

    return record


def _merged(job: ImportJob, report: ImportReport) -> ImportReport:
    total = _report_from_result(job)
    total.merge(report)
    return total


def _report_from_result(job: ImportJob) -> ImportReport:
    result = job.result or {}
    report = ImportReport(
        rows=result.get("rows", 0),
        valid=result.get("valid", 0),
        invalid=result.get("invalid", 0),
        customers_created=result.get("customers_created", 0),
        customers_updated=result.get("customers_updated", 0),
        assignments_added=result.get("assignments_added", 0),
        errors=[RowError(**e) for e in result.get("errors", [])],
        rejected=[tuple(r) for r in result.get("rejected", [])],
    )
    report.applied = True
    return report


def _file_error(code: str, message: str) -> ImportReport:
    report = ImportReport(file_error=True)
    report.errors.append(RowError(None, None, code, message))
    return report


def _set_status(job: ImportJob, status: str) -> None:
    ImportJob.objects.filter(pk=job.pk, status__in=ACTIVE).update(status=status)
    job.status = status


def _finish(
    job: ImportJob,
    status: str,
    *,
    report: ImportReport | None = None,
    message: str = "",
    rows_done: int | None = None,
) -> str:
    fields = {"status": status, "finished_at": timezone.now(), "error_message": message}
    if report is not None:
        result = report.summary()
        result["rejected"] = [[line, values, reason] for line, values, reason in report.rejected]
        result["header"] = report.header or (job.result or {}).get("header", [])
        fields["result"] = result
        fields["errors_so_far"] = len(report.errors)
        if rows_done is not None:
            fields["rows_done"] = rows_done
        if report.rejected:
            out = io.StringIO()
            report.header = result["header"]
            rejected_rows_csv(report, out)
            job.error_report.save(
                f"rejected-{job.pk}.csv",
                ContentFile(out.getvalue().encode("utf-8-sig")),
                save=False,
            )
            fields["error_report"] = job.error_report.name
    ImportJob.objects.filter(pk=job.pk).update(**fields)
    for key, value in fields.items():
        if key != "error_report":
            setattr(job, key, value)
    return status
