"""Background imports (docs/import-export.md#background-jobs-and-progress): a Celery task per
ImportJob, ids only, idempotent.

``acks_late`` and ``reject_on_worker_lost`` are set globally (config/settings.py), so a worker
killed mid-way does not lose the task: it is delivered again and resumes. Each batch of
``BATCH_ROWS`` records is validated and applied in ONE transaction together with the job's
progress (``rows_done``, ``errors_so_far``, ``result``), written by a conditional update on the
``rows_done`` the batch started from. So a batch the job reports is entirely applied, a batch it
does not report left nothing, and a second worker running the same job cannot apply a batch twice
(its conditional update matches no row and its transaction rolls back).

Strict jobs first validate the whole file without committing (``Importer.run_stream`` in a
transaction rolled back: nothing is applied if any row is bad); lenient jobs apply the good rows
batch by batch in file order. Dry runs only validate. Every pass (count, validate, apply) streams
the stored file, so a job holds one batch of records at a time.

Leases heal lost jobs. Claiming a job (a conditional update) takes its lease; every batch renews
it in the batch's transaction. A worker killed with SIGKILL renews nothing: once the lease has
expired, ``reap_import_jobs`` (beat, every minute) releases it and queues the job again, and the
next worker resumes after the last committed batch. A worker that finds another's live lease
leaves the job alone (the same task delivered again may take over its own lease at once); a worker
that lost its lease to another gets ``Superseded`` at its next batch and applies nothing more.
"""

from __future__ import annotations

import contextlib
import io
import logging
import uuid
from collections.abc import Iterator
from itertools import islice

from celery import shared_task
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import F, Q
from django.db.models.functions import Coalesce, Now
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from customers.exporting import rejected_rows_csv
from customers.import_plan import chunks
from customers.import_readers import Record, UnreadableFile
from customers.importing import (
    HeaderError,
    Importer,
    ImportReport,
    RowError,
    read_records,
)
from customers.models import ImportJob, job_lease_expiry

logger = logging.getLogger(__name__)

BATCH_ROWS = settings.TAGDESK_IMPORT_BATCH_ROWS
VALIDATE_ROWS = 10_000  # strict jobs validate this many rows at once (about 20 MB of rows)
S = ImportJob.Status
ACTIVE = [S.QUEUED, S.VALIDATING, S.RUNNING]


class Superseded(Exception):
    """Another worker moved the job on; this batch must not be applied."""


@shared_task(name="customers.run_import_job", bind=True, ignore_result=True)
def run_import_job(self, job_id: int) -> str:
    """Run (or resume) an import job. Safe to call any number of times."""
    return process_job(job_id, task_id=self.request.id or "")


QUEUE_DOWN_MESSAGE = gettext_lazy(
    "The import could not be queued: the task queue is unavailable (%(error)s). Nothing was "
    "imported; upload the file again in a few minutes."
)


def enqueue(job: ImportJob) -> None:
    """Queue the job's task once the job row is committed (its lease, set when the row was made,
    is the deadline for a worker to claim it; the reaper queues it again after that)."""
    transaction.on_commit(lambda: send(job.pk))


def send(job_id: int) -> bool:
    """Hand the job to the broker. A broker that refuses fails the job with the reason at once
    (nothing was applied), so no job waits for a worker that will never come."""
    try:
        run_import_job.delay(job_id)
    except Exception as exc:
        if ImportJob.objects.filter(pk=job_id, status__in=ACTIVE, lease_owner="").exists():
            logger.exception("import job %s could not be queued", job_id)
            ImportJob.objects.filter(pk=job_id, status__in=ACTIVE, lease_owner="").update(
                status=S.FAILED,
                finished_at=Now(),
                lease_expires_at=None,
                error_message=QUEUE_DOWN_MESSAGE % {"error": str(exc)[:500]},
            )
            return False
        raise  # eager mode: the job itself failed (and says so); let the caller see it
    return True


def process_job(job_id: int, task_id: str = "") -> str:
    """Claim the job (a conditional update: queued, running after a lost worker, or failed) and
    run or resume it. A finished job, or one whose lease another worker holds, is left alone, so
    duplicate deliveries are harmless."""
    ImportJob.objects.filter(pk=job_id, status=S.FAILED).update(
        status=S.QUEUED, finished_at=None, error_message=""
    )
    now = timezone.now()
    token = uuid.uuid4().hex
    free = Q(lease_owner="") | Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now)
    if task_id:  # the same message delivered again (worker lost): take over its lease at once
        free |= Q(task_id=task_id[:64])
    claimed = (
        ImportJob.objects.filter(pk=job_id, status__in=ACTIVE)
        .filter(free)
        .update(
            started_at=Coalesce(F("started_at"), Now()),
            task_id=task_id[:64],
            lease_owner=token,
            lease_expires_at=job_lease_expiry(),
            heartbeat_at=now,
            attempts=F("attempts") + 1,
        )
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
        # Superseded: another worker owns the job now; this failure is not its outcome.
        with contextlib.suppress(Superseded):
            _finish(job, S.FAILED, message=str(exc)[:2000])
        raise


def _renew(job: ImportJob) -> None:
    """Renew the lease between batches; a job whose lease another worker took is not ours."""
    renewed = ImportJob.objects.filter(
        pk=job.pk, lease_owner=job.lease_owner, status__in=ACTIVE
    ).update(lease_expires_at=job_lease_expiry(), heartbeat_at=Now())
    if not renewed:
        raise Superseded


@shared_task(name="customers.reap_import_jobs", ignore_result=True)
def reap_import_jobs() -> dict:
    """Beat, every minute: queue again every unfinished job whose lease expired (its worker
    or its message was lost), releasing the lease with a conditional update so that two reapers
    never queue one job twice; a job that lost TAGDESK_JOB_MAX_ATTEMPTS workers fails."""
    now = timezone.now()
    expired = ImportJob.objects.filter(status__in=ACTIVE).filter(
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
    )
    requeued, failed = [], []
    for pk, attempts in expired.values_list("pk", "attempts"):
        still_expired = ImportJob.objects.filter(pk=pk, status__in=ACTIVE).filter(
            Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
        )
        if attempts >= settings.TAGDESK_JOB_MAX_ATTEMPTS:
            if still_expired.update(
                status=S.FAILED,
                finished_at=now,
                lease_owner="",
                lease_expires_at=None,
                error_message=_("The import lost its worker %(count)d times; it was stopped.")
                % {"count": attempts},
            ):
                failed.append(pk)
        elif still_expired.update(lease_owner="", lease_expires_at=job_lease_expiry()):
            requeued.append(pk)
    for pk in requeued:
        logger.warning("import job %s lost its worker: queued again", pk)
        send(pk)
    return {"requeued": requeued, "failed": failed}


def resume_job(job_id: int) -> bool:
    """Admin "resume": queue again a failed job, or an unfinished one whose lease expired. It
    resumes after its last committed batch, with a fresh count of attempts. Jobs that finished,
    or whose worker is alive, are left alone (False)."""
    now = timezone.now()
    resumable = Q(status=S.FAILED) | Q(status__in=ACTIVE) & (
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
    )
    updated = (
        ImportJob.objects.filter(pk=job_id)
        .filter(resumable)
        .update(
            status=S.QUEUED,
            finished_at=None,
            error_message="",
            lease_owner="",
            lease_expires_at=job_lease_expiry(),
            attempts=0,
        )
    )
    if updated:
        transaction.on_commit(lambda: send(job_id))
    return bool(updated)


@contextlib.contextmanager
def _records(job: ImportJob) -> Iterator[tuple[str, Iterator[Record]]]:
    """``(format, records)`` of the job's file (header first), streamed from storage: each pass
    over the file (count, validate, apply) opens it afresh and holds one record at a time."""
    with job.file.storage.open(job.file.name or "", "rb") as handle:
        fmt, records = read_records(getattr(handle, "file", handle), job.original_name)
        try:
            yield fmt, records
        finally:
            records.close()  # type: ignore[attr-defined]  # a generator: before the file closes


def _process(job: ImportJob) -> str:
    importer = Importer(user=job.user, mode=job.mode, skip_invalid=job.skip_invalid)
    header = None
    try:
        with _records(job) as (fmt, records):
            header = next(records, None)
            if header is None:
                raise UnreadableFile(_("The file is empty."), code="empty_file")
            importer.read_header(header, fmt)
            rows_total = sum(1 for _record in records)  # a counting pass keeps nothing
    except UnreadableFile as exc:
        return _finish(job, S.REJECTED, report=_file_error(exc.code, str(exc)))
    except HeaderError as exc:
        report = ImportReport(file_error=True, header=header.values if header else [])
        report.errors = exc.errors
        return _finish(job, S.REJECTED, report=report)
    ImportJob.objects.filter(pk=job.pk).update(rows_total=rows_total)
    job.rows_total = rows_total

    if job.dry_run or (not job.skip_invalid and job.rows_done == 0):
        _set_status(job, S.VALIDATING)
        with _records(job) as (_fmt, records):
            next(records)  # the header, read above
            # A file of up to VALIDATE_ROWS records is validated in memory in one pass (no
            # writes, no row locks); a longer one chunk by chunk in one transaction that is
            # rolled back (Importer.run_stream), which waits for customers others hold locked.
            report = importer.run_stream(
                records, dry_run=True, chunk_rows=max(BATCH_ROWS, VALIDATE_ROWS)
            )
        if job.dry_run:
            return _finish(job, S.DONE, report=report, rows_done=rows_total)
        if report.errors:
            report.customers_created = report.customers_updated = report.assignments_added = 0
            return _finish(job, S.REJECTED, report=report)
    _set_status(job, S.RUNNING)
    start = job.rows_done
    with _records(job) as (_fmt, records):
        next(records)
        # Resume after the last committed batch: its records are read past, not kept.
        for batch in chunks(islice(records, start, None), BATCH_ROWS):
            _renew(job)
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
        if (
            current.rows_done != start
            or current.status != S.RUNNING
            or current.lease_owner != job.lease_owner
        ):
            raise Superseded
        result = _merged(current, report).summary()
        result["rejected"] = current.result.get("rejected", []) + [
            [line, values, reason] for line, values, reason in report.rejected
        ]
        result["header"] = header
        updated = ImportJob.objects.filter(
            pk=job.pk, rows_done=start, status=S.RUNNING, lease_owner=job.lease_owner
        ).update(
            rows_done=start + size,
            errors_so_far=F("errors_so_far") + len(report.errors),
            result=result,
            lease_expires_at=job_lease_expiry(),  # the heartbeat, committed with the batch
            heartbeat_at=Now(),
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
    if not ImportJob.objects.filter(
        pk=job.pk, status__in=ACTIVE, lease_owner=job.lease_owner
    ).update(status=status, lease_expires_at=job_lease_expiry(), heartbeat_at=Now()):
        raise Superseded
    job.status = status


def _finish(
    job: ImportJob,
    status: str,
    *,
    report: ImportReport | None = None,
    message: str = "",
    rows_done: int | None = None,
) -> str:
    fields = {
        "status": status,
        "finished_at": timezone.now(),
        "error_message": message,
        "lease_owner": "",
        "lease_expires_at": None,
    }
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
    if not ImportJob.objects.filter(pk=job.pk, lease_owner=job.lease_owner).update(**fields):
        raise Superseded  # another worker took the job over; it reports the outcome
    for key, value in fields.items():
        if key != "error_report":
            setattr(job, key, value)
    return status
