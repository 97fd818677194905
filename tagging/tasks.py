from celery import shared_task

from tagging.services import remove_expired_assignments


@shared_task(name="tagging.remove_expired_assignments")
def remove_expired_assignments_task() -> int:
    """Nightly: drop assignments past their expiry (scheduled in settings.CELERY_BEAT_SCHEDULE)."""
    return remove_expired_assignments()


@shared_task(name="tagging.hygiene_monthly_report")
def hygiene_monthly_report_task() -> dict:
    """Monthly: store the tag-hygiene suggestions (tagging.hygiene); returns the counts."""
    from tagging.hygiene import store_monthly_report

    return store_monthly_report().summary


@shared_task(name="tagging.compact_segment_index")
def compact_segment_index_task() -> int:
    """Every minute: fold the segment index's change log into its bitmaps (tagging.bitmaps)."""
    from tagging.bitmaps import compact_index

    return compact_index()


@shared_task(name="tagging.list_stale_personal_tags")
def list_stale_personal_tags_task() -> int:
    """Monthly: list personal tags unused for TAGDESK_PERSONAL_TAG_STALE_DAYS for their owners."""
    from tagging.services import list_stale_personal_tags

    return list_stale_personal_tags()


@shared_task(name="tagging.compute_tag_suggestions")
def compute_tag_suggestions_task(report_id: int | None = None) -> dict:
    """Nightly (beat entry of tagging.schedule) or on demand from the admin (``report_id`` of
    the report it queued): compute the tag combination suggestions (tagging.suggestions)."""
    from tagging import suggestions

    if report_id is None:
        report_id = suggestions.request_report().pk
    report = suggestions.run_report(report_id)
    if report is None:  # already claimed by another delivery of this task
        return {"report": report_id, "claimed": False}
    return {
        "report": report.pk,
        "customers": report.customers,
        "pairs_counted": report.pairs_counted,
        "triples_counted": report.triples_counted,
        "suggestions": report.suggestions,
        "seconds": report.seconds,
    }


def queue_suggestion_report(actor=None):
    """The admin's "recompute now": a queued report, and its task once that row is committed.
    A broker that refuses the message fails the report at once with the reason (no worker would
    ever claim it). Without a broker the task runs inline. Returns the report."""
    from django.db import transaction
    from django.utils import timezone

    from tagging import suggestions
    from tagging.models import SuggestionReport

    report = suggestions.request_report(actor=actor)

    def send() -> None:
        try:
            compute_tag_suggestions_task.delay(report.pk)
        except Exception as exc:
            if compute_tag_suggestions_task.app.conf.task_always_eager:
                return  # inline: the run itself failed and recorded why on the report
            SuggestionReport.objects.filter(
                pk=report.pk, status=SuggestionReport.Status.QUEUED
            ).update(
                status=SuggestionReport.Status.FAILED,
                finished_at=timezone.now(),
                error=f"could not be queued: {exc}"[:2000],
            )

    transaction.on_commit(send)
    return report
