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
